"""HLS downloads: which folders are one, whether they are merged, where the merged mp4 goes.

Standard library only; these functions touch the disk, so async callers run them in a thread.
The playlist syntax is ``m3u8``; which files a download consists of, and whether they are all
there, is ``hls_layout`` (its names are re-exported here).

Rules:
- An HLS download is a folder holding a recognised playlist: a media playlist (``#EXTINF``
  entries) naming at least one local file, or a master playlist naming at least one local variant
  playlist. A playlist of remote URLs none of which was saved beside it is a bookmark of a stream,
  not a download. A folder whose playlist is a variant (or rendition) of a master playlist up to
  ``_MASTER_LEVELS`` folders above belongs to that master's download.
- The output is ``<folder name>.mp4`` beside the folder; when that name is taken, ``<folder name>
  (2).mp4``, ``(3)``... An existing file is never overwritten.
- "Already merged": after a verified merge a marker file ``.gqlmedia-merged.json`` is written into
  the source folder, naming the output and fingerprinting the playlist (size, mtime_ns). A folder
  whose marker matches its playlist is merged (sync skips it, even when the user moved or deleted
  the mp4 since: we never resurrect a file the user removed). A changed playlist (a download
  resumed) invalidates the marker. Deleting the marker asks for a new merge.
- Temp files (the merge's output before it is verified, thumbnails before their rename) start
  with ``TEMP_PREFIX``; ``remove_stale_temp_files`` deletes what a killed process left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator

from gql_media.core.hls_layout import (
    HlsError,
    HlsIncomplete,
    HlsPlaylist,
    HlsSegment,
    HlsTrack,
    parse_playlist,
    playlist_files,
    read_playlist,
    resolve_uri,
)
from gql_media.core.m3u8 import MasterPlaylist, MediaPlaylist, is_remote

logger = logging.getLogger(__name__)

__all__ = [
    "MARKER_NAME",
    "MERGE_DURATION_TOLERANCE_S",
    "TEMP_PREFIX",
    "HlsError",
    "HlsIncomplete",
    "HlsPlaylist",
    "HlsSegment",
    "HlsTrack",
    "download_folder_of",
    "downloads_among",
    "find_hls_downloads",
    "find_playlist",
    "free_output_path",
    "is_hls_download",
    "list_hls_downloads",
    "merged_output",
    "owned_files",
    "parse_playlist",
    "playlist_files",
    "read_marker",
    "remove_source",
    "remove_stale_temp_files",
    "temp_path_beside",
    "write_marker",
]

TEMP_PREFIX = ".gqlmedia-tmp-"
MARKER_NAME = ".gqlmedia-merged.json"
PLAYLIST_SUFFIX = ".m3u8"
# A merged file may last this much more or less than its playlist's #EXTINF total and still be it.
MERGE_DURATION_TOLERANCE_S = 1.0
_MAX_FREE_NAME_TRIES = 1000


# A variant's playlist lies at most this many folders below its master's (``720p/``, ``audio/en/``).
_MASTER_LEVELS = 2
# Preferred names when a folder holds several playlists of the same kind.
_USUAL_NAMES = ("master.m3u8", "index.m3u8", "playlist.m3u8")


def _playlist_names(folder: str) -> list[str]:
    try:
        names = [
            entry.name
            for entry in os.scandir(folder)
            if entry.name.lower().endswith(PLAYLIST_SUFFIX) and not entry.name.startswith(".") and entry.is_file()
        ]
    except OSError:
        return []
    return sorted(names, key=lambda name: (name.lower() not in _USUAL_NAMES, name))


def _playlist_kind(path: str) -> str | None:
    """ "master" or "media" for a recognised download playlist (a local file named), else None."""
    try:
        playlist = read_playlist(path)
    except (OSError, HlsError):
        return None
    folder = os.path.dirname(path)
    if isinstance(playlist, MasterPlaylist):
        uris = [variant.uri for variant in playlist.variants]
        return "master" if any(_names_a_file(uri, folder) for uri in uris) else None
    assert isinstance(playlist, MediaPlaylist)
    uris = [segment.uri for segment in playlist.segments]
    if not uris:
        return None
    # Local paths: a download (maybe still in progress); URLs: only when some were saved here.
    if any(not is_remote(uri) for uri in uris) or any(_names_a_file(uri, folder) for uri in uris):
        return "media"
    return None


def _names_a_file(uri: str, folder: str) -> bool:
    try:
        return os.path.isfile(resolve_uri(uri, folder, folder))
    except HlsError:
        return False


def find_playlist(folder: str) -> str | None:
    """The folder's download playlist: a master first, then a media playlist (usual names first); None if none."""
    kinds = [(name, _playlist_kind(os.path.join(folder, name))) for name in _playlist_names(folder)]
    for wanted in ("master", "media"):
        for name, kind in kinds:
            if kind == wanted:
                return os.path.join(folder, name)
    return None


def is_hls_download(folder: str) -> bool:
    """Whether ``folder`` holds a recognised download playlist (merged or not)."""
    return find_playlist(folder) is not None


def download_folder_of(folder: str) -> str | None:
    """The download ``folder`` belongs to: a master's folder above whose playlists name this one's, else itself.

    None when ``folder`` holds no download playlist.
    """
    playlist = find_playlist(folder)
    if playlist is None:
        return None
    own = os.path.normpath(os.path.abspath(playlist))
    above = os.path.abspath(folder)
    for _ in range(_MASTER_LEVELS):
        parent = os.path.dirname(above)
        if parent == above:
            break
        above = parent
        master = find_playlist(above)
        if master is not None and own in playlist_files(master):
            return above
    return folder


def list_hls_downloads(folders: Iterable[str], recursive: bool = True) -> list[str]:
    """Every HLS download folder among ``folders`` and below them (or their direct children), merged or not.

    A variant's folder gives its master's download instead (also when that lies above ``folders``).
    """
    return downloads_among(folder for top in folders for folder in _walk_folders(top, recursive))


def downloads_among(folders: Iterable[str]) -> list[str]:
    """The HLS download folders that ``folders`` hold (a variant's folder: its master's), each once, in order.

    A sync job's merging step gives the folders its walk found naming a playlist
    (``ScanResult.playlist_folders``): the same downloads as ``list_hls_downloads`` of its scope,
    without listing the scope's tree a second time.
    """
    found: dict[str, None] = {}
    for folder in folders:
        download = download_folder_of(folder)
        if download is not None:
            found[download] = None
    return list(found)


def find_hls_downloads(folders: Iterable[str], recursive: bool = True) -> list[str]:
    """HLS download folders among ``folders`` and below them (or their direct children), not merged yet."""
    found: list[str] = []
    for folder in list_hls_downloads(folders, recursive):
        playlist = find_playlist(folder)
        if playlist is not None and merged_output(playlist) is None:
            found.append(folder)
    return found


def owned_files(folder: str) -> set[str]:
    """The files the recognised playlists in ``folder`` name (normalised absolute paths): never videos of their own."""
    files: set[str] = set()
    for name in _playlist_names(folder):
        path = os.path.join(folder, name)
        if _playlist_kind(path) is not None:
            files |= playlist_files(path)
    return files


def _walk_folders(top: str, recursive: bool) -> Iterator[str]:
    if not os.path.isdir(top):
        return
    yield top
    if recursive:
        for current, dirs, _files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in dirs:
                yield os.path.join(current, name)
        return
    try:
        children = sorted(e.path for e in os.scandir(top) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return
    yield from children


def free_output_path(folder: str, stem: str, suffix: str = ".mp4") -> str:
    """``<parent>/<stem>.mp4``, or ``<stem> (2).mp4``... the first name not taken (checked, not reserved)."""
    parent = os.path.dirname(os.path.abspath(folder).rstrip(os.sep))
    for index in range(1, _MAX_FREE_NAME_TRIES + 1):
        name = f"{stem}{suffix}" if index == 1 else f"{stem} ({index}){suffix}"
        candidate = os.path.join(parent, name)
        if not os.path.lexists(candidate):
            return candidate
    raise HlsError(f"no free output name for {stem}{suffix} beside the folder")


def temp_path_beside(folder: str, suffix: str = ".mp4") -> str:
    """A fresh temp file name in ``folder`` (same filesystem as the final name, so rename is atomic)."""
    return os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}")


def _fingerprint(playlist_path: str) -> dict[str, int]:
    stat = os.stat(playlist_path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_marker(playlist: HlsPlaylist, output_path: str) -> None:
    """Record in the source folder that it was merged into ``output_path`` (best effort)."""
    marker = os.path.join(playlist.folder, MARKER_NAME)
    data = {
        "playlist": os.path.basename(playlist.playlist_path),
        "output": os.path.basename(output_path),
        "duration_s": round(playlist.duration_s, 3),
        "merged_at": time.time(),
        **_fingerprint(playlist.playlist_path),
    }
    temp = temp_path_beside(playlist.folder, ".json")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temp, marker)
    except OSError as error:
        logger.warning("could not write merge marker in %s: %s", playlist.folder, error)
        with contextlib.suppress(OSError):
            os.unlink(temp)


def read_marker(folder: str) -> dict[str, object] | None:
    """The folder's merge marker, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(folder, MARKER_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def merged_output(playlist_path: str) -> str | None:
    """When this playlist was merged already (marker matching it), the output's path; else None.

    The path is where the output was written; it may have been moved or deleted since.
    """
    folder = os.path.dirname(os.path.abspath(playlist_path))
    marker = read_marker(folder)
    if marker is None or marker.get("playlist") != os.path.basename(playlist_path):
        return None
    try:
        fingerprint = _fingerprint(playlist_path)
    except OSError:
        return None
    if any(marker.get(key) != value for key, value in fingerprint.items()):
        return None
    output = marker.get("output")
    if not isinstance(output, str) or not output:
        return None
    return os.path.join(os.path.dirname(folder.rstrip(os.sep)), output)


def remove_source(playlist: HlsPlaylist) -> str | None:
    """Delete a merged download's folder; returns None when done, else why it was kept.

    Only the download's own files go (playlists, segments, init segments, keys, marker, and the
    variant folders holding them), and only when nothing else is in the folder and the segments
    are still the ones merged: a folder that also holds a user's other files is kept whole.
    """
    own = {os.path.normcase(os.path.normpath(p)) for p in playlist.owned_paths}
    own |= {os.path.normcase(os.path.abspath(p)) for p in (playlist.playlist_path, *playlist.segment_paths)}
    own.add(os.path.normcase(os.path.join(playlist.folder, MARKER_NAME)))
    files: list[str] = []
    folders: list[str] = []
    others: list[str] = []
    try:
        for current, dirs, names in os.walk(playlist.folder, onerror=_raise):
            folders.extend(os.path.join(current, d) for d in dirs)
            for name in names:
                path = os.path.join(current, name)
                (files if os.path.normcase(os.path.abspath(path)) in own else others).append(path)
    except OSError as error:
        return f"source kept: {error.strerror or error}"
    if others:
        shown = ", ".join(sorted(os.path.relpath(p, playlist.folder) for p in others)[:3])
        return f"source kept: the folder also holds other files ({shown})"
    try:
        current_bytes = parse_playlist(playlist.playlist_path).total_bytes
    except (HlsError, OSError) as error:
        return f"source kept: segments changed during the merge ({error})"
    if current_bytes != playlist.total_bytes:
        return "source kept: segments changed during the merge"
    try:
        for path in files:
            os.unlink(path)
        for path in sorted(folders, key=len, reverse=True):
            os.rmdir(path)
        os.rmdir(playlist.folder)
    except OSError as error:
        return f"source partly removed: {error.strerror or error}"
    logger.info("removed merged HLS folder %s", playlist.folder)
    return None


def _raise(error: OSError) -> None:
    raise error


def remove_stale_temp_files(
    folders: Iterable[str | os.PathLike[str]], stopped: Callable[[], bool] = lambda: False
) -> list[str]:
    """Delete files named ``TEMP_PREFIX...`` under ``folders`` (left by a killed merge); returns them.

    Call at start-up, before any merge runs: a running merge's temp file looks the same.
    ``stopped`` is asked at each folder: once true, the walk ends there (a shutdown mid-walk).
    """
    removed: list[str] = []
    for top in folders:
        for current, dirs, files in os.walk(top):
            if stopped():
                return removed
            dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = os.path.join(current, name)
                    try:
                        os.unlink(path)
                    except OSError as error:
                        logger.warning("could not remove stale temp file %s: %s", path, error)
                    else:
                        removed.append(path)
    if removed:
        logger.info("removed %d stale temp files", len(removed))
    return removed
