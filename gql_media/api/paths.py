"""Path arguments: relative to the only root, or absolute inside a root; nothing outside."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from gql_media.api.errors import ApiError
from gql_media.core.models import Root


def _clean_relative(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ApiError(f"path {path!r} must not contain '..'", "BAD_PATH")
    return "/".join(parts)


def find_root(roots: Sequence[Root], root_path: str) -> Root:
    wanted = posixpath.normpath(root_path)
    for root in roots:
        if posixpath.normpath(root.path) == wanted:
            return root
    raise ApiError(f"{root_path!r} is not a library root", "BAD_PATH")


def resolve_path(roots: Sequence[Root], path: str, root_path: str | None = None) -> tuple[Root, str]:
    """The root and the relative path a path argument names.

    ``path`` is relative to ``root_path`` (or to the only root when there is one), or absolute
    inside one of the roots. Raises ``ApiError`` for anything outside every root.
    """
    if path.startswith("/"):
        if ".." in path.split("/"):
            raise ApiError(f"path {path!r} must not contain '..'", "BAD_PATH")
        absolute = posixpath.normpath(path)
        candidates = roots if root_path is None else [find_root(roots, root_path)]
        # The longest root first: a root may lie inside another one.
        for root in sorted(candidates, key=lambda r: len(r.path), reverse=True):
            base = posixpath.normpath(root.path)
            if absolute == base:
                return root, ""
            if absolute.startswith(base.rstrip("/") + "/"):
                return root, absolute[len(base.rstrip("/")) + 1 :]
        raise ApiError(f"{path!r} is outside every library root", "OUTSIDE_ROOTS")
    relative = _clean_relative(path)
    if root_path is not None:
        return find_root(roots, root_path), relative
    if len(roots) == 1:
        return roots[0], relative
    if not roots:
        raise ApiError("the library has no roots", "OUTSIDE_ROOTS")
    raise ApiError(f"there are {len(roots)} roots: give rootPath, or an absolute path", "BAD_PATH")
