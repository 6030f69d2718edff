"""Where thumbnail files live: the one place that turns a key or a placeholder size into a path.

Standard library only. The media work writes thumbnails, the HTTP layer serves them and the media
adapter draws the placeholder; all three ask here, so the layout is written once. The clean-up of
the folder (a removed video's images, orphans an interrupted job left) lives here too.

Layout: one flat folder (settings.thumbnails_dir). A video's image is ``<key>``, a name made by
the media work (``<video id>-<size>-<mtime_ns>[-<regeneration>]<suffix>``); the image shown for a
video without one is ``placeholder-<width><suffix>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from gql_media.core.models import VideoFile

logger = logging.getLogger(__name__)

__all__ = [
    "ThumbnailSpec",
    "placeholder_path",
    "remove_files",
    "remove_files_written_before",
    "remove_thumbnail_files",
    "thumbnail_path",
    "thumbnail_suffix",
    "video_thumbnails",
]


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


@dataclass(frozen=True, slots=True)
class ThumbnailSpec:
    """Where thumbnails go and how they look (settings.thumbnails_dir, thumbnail_width, format)."""

    directory: str
    width_px: int = 320
    suffix: str = ".jpg"

    @staticmethod
    def version_prefix(video: VideoFile) -> str:
        return f"{video.id}-{video.size}-{video.mtime_ns}"

    def key_for(self, video: VideoFile, regeneration: int | None = None) -> str:
        extra = f"-{regeneration:x}" if regeneration is not None else ""
        return f"{self.version_prefix(video)}{extra}{self.suffix}"

    def is_current(self, video: VideoFile) -> bool:
        """Whether the video's key is one of its version's (``key_for``, regenerated or not)."""
        key = video.thumbnail_key
        if key is None or not key.endswith(self.suffix):
            return False
        prefix = self.version_prefix(video)
        # Whole fields: "1-100-5" is a prefix of "1-100-55.jpg", the key of another version.
        return key == prefix + self.suffix or key.startswith(prefix + "-")

    def path_for(self, key: str) -> str:
        """The file of a key (``ValueError`` for a name that is not a key)."""
        return thumbnail_path(self.directory, key)


def remove_thumbnail_files(directory: str, video_ids: Sequence[int] | set[int]) -> int:
    """Delete the thumbnails of these videos (one folder listing); returns how many went. Blocking."""
    wanted = set(video_ids)
    if not wanted:
        return 0
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        head = entry.name.split("-", 1)[0]
        if head.isdigit() and int(head) in wanted:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
    return removed


def video_thumbnails(directory: str) -> Generator[tuple[int, str], None, None]:
    """(video id, file name) of each video's thumbnail in the folder.

    A listing read as it goes (a library's worth of images is never one list): the orphan sweep takes
    a batch at a time and asks the index about those. No stat: only an orphan's age is asked
    (``remove_files_written_before``). Blocking, at each step.
    """
    try:
        listing = os.scandir(directory)
    except FileNotFoundError:
        return
    with listing:
        for entry in listing:
            head = entry.name.split("-", 1)[0]
            if head.isdigit():  # else not a video's thumbnail (the placeholder, temp files)
                yield int(head), entry.name


def remove_files_written_before(paths: Sequence[str], written_before_s: float) -> int:
    """Delete those of these files last written before ``written_before_s``; returns how many. Blocking.

    A newer file is left: a thumbnail being regenerated is written before its key is.
    """
    old: list[str] = []
    for path in paths:
        try:
            if os.stat(path, follow_symlinks=False).st_mtime < written_before_s:
                old.append(path)
        except FileNotFoundError:
            continue
    remove_files(old)
    return len(old)


def remove_files(paths: Sequence[str]) -> None:
    """Delete these files, those already gone too; a failure is logged, not raised. Blocking."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("could not remove %s: %s", path, error)
