"""Keyset paging for the connections: page sizes, ``PageInfo``, and each connection's cursors.

A cursor carries the sort key of the last row a page held, never an offset: the next page is
"rows after this key" (``adapters/store/reads.py``), so it costs the same however deep it is,
and rows added or removed before it do not shift it. Each connection has its own cursor kind
(a video cursor also names its order), so a cursor only fits the connection that made it.
Pages are forward-only (``first``/``after``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gql_media.adapters.store.reads import DescendantKey, EntryKey, FolderRow, VideoOrderKey, VideoRow, VideoSort
from gql_media.api.errors import ApiError
from gql_media.api.ids import decode_cursor, encode_cursor

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(first: int | None) -> int:
    """How many rows a page holds: ``first``, within 0..``MAX_PAGE_SIZE``."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise ApiError(f"first must be between 0 and {MAX_PAGE_SIZE}", "BAD_PAGE_SIZE")
    return first


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def page_info(cursors: list[str], has_next: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        # Forward-only pages: there is something before exactly when a cursor was given.
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


# A cursor's values must have their columns' types: PostgreSQL rejects any other in a parameter
# (a str for a BIGINT, a NUL in text, an int past 64 bits), where SQLite would compare anyway.
_BIGINT = range(-(2**63), 2**63)


def _fits_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in _BIGINT


def _fits_text(value: object) -> bool:
    return isinstance(value, str) and "\x00" not in value


def _fits_sort_value(key: VideoOrderKey, value: object) -> bool:
    if key is VideoOrderKey.NAME:
        return _fits_text(value)
    if key is VideoOrderKey.DURATION and isinstance(value, float):
        return math.isfinite(value)
    return _fits_id(value)


def _bad_cursor(after: str) -> ApiError:
    return ApiError(f"invalid cursor {after!r}", "BAD_CURSOR")


# Folder.entries: folders first, then videos, each by name.
_ENTRY = "entry"


def entry_cursor(row: FolderRow | VideoRow) -> str:
    return encode_cursor(_ENTRY, [0 if isinstance(row, FolderRow) else 1, row.name, row.id])


def entry_key(after: str | None) -> EntryKey | None:
    if after is None:
        return None
    kind, name, row_id = decode_cursor(after, _ENTRY, 3)
    if kind not in (0, 1) or not _fits_text(name) or not _fits_id(row_id):
        raise _bad_cursor(after)
    return EntryKey(kind=kind, name=name, id=row_id)


# Folder.descendants: depth-first (a folder, its videos, its sub-folders), below one folder (its id
# is in the cursor kind); the last entry's path and kind (0 a folder, 1 a video).
def descendant_cursor(folder_id: int, row: FolderRow | VideoRow) -> str:
    return encode_cursor(f"descendant:{folder_id}", [row.path, 0 if isinstance(row, FolderRow) else 1])


def descendant_key(folder_id: int, after: str | None) -> DescendantKey | None:
    if after is None:
        return None
    path, kind = decode_cursor(after, f"descendant:{folder_id}", 2)
    if not _fits_text(path) or kind not in (0, 1):
        raise _bad_cursor(after)
    return DescendantKey(path=path, is_video=kind == 1)


# Video connections: by the order's key, then id; the cursor kind names the order.
def _video_kind(sort: VideoSort) -> str:
    return f"video:{sort.key.value}:{'d' if sort.descending else 'a'}"


def video_cursor(sort: VideoSort, row: VideoRow) -> str:
    return encode_cursor(_video_kind(sort), [sort.value_of(row), row.id])


def video_key(sort: VideoSort, after: str | None) -> tuple[str | int | float, int] | None:
    if after is None:
        return None
    value, row_id = decode_cursor(after, _video_kind(sort), 2)
    if not _fits_sort_value(sort.key, value) or not _fits_id(row_id):
        raise _bad_cursor(after)
    return (value, row_id)


def selects(selections: Iterable[Selection], path: tuple[str, ...]) -> bool:
    """Whether ``path`` (field names, fragments looked through) is asked for below ``selections``:
    a page prefetches what its nodes will be asked for (their folders) in one read."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == path[0] and (len(path) == 1 or selects(selection.selections, path[1:])):
                return True
        elif isinstance(selection, FragmentSpread | InlineFragment) and selects(selection.selections, path):
            return True
    return False
