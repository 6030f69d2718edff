"""Where thumbnail files live: the one place that turns a key or a placeholder size into a path.

Standard library only. The media work writes thumbnails, the HTTP layer serves them and the media
adapter draws the placeholder; all three ask here, so the layout is written once.

Layout: one flat folder (settings.thumbnails_dir). A video's image is ``<key>``, a name made by
the media work (``<video id>-<size>-<mtime_ns>[-<regeneration>]<suffix>``); the image shown for a
video without one is ``placeholder-<width><suffix>``.
"""

from __future__ import annotations

import os

__all__ = ["placeholder_path", "thumbnail_path", "thumbnail_suffix"]


def thumbnail_suffix(image_format: str) -> str:
    """The file suffix of a thumbnail format ("jpeg" or "webp")."""
    return ".webp" if image_format.lower() == "webp" else ".jpg"


def thumbnail_path(directory: str, key: str) -> str:
    """The file of a thumbnail key.

    Keys are made by the media work, but one read back from the index must not escape the folder.

    Raises:
        ValueError: ``key`` is not a thumbnail key (empty, a path, a hidden name).
    """
    if not key or "/" in key or "\\" in key or key.startswith("."):
        raise ValueError(f"not a thumbnail key: {key!r}")
    return os.path.join(directory, key)


def placeholder_path(directory: str, width_px: int, image_format: str) -> str:
    """The image served for a video without a thumbnail, at this width and format."""
    return os.path.join(directory, f"placeholder-{width_px}{thumbnail_suffix(image_format)}")
