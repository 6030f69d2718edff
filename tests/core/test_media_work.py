"""The media job steps against fakes: counts, errors, cancel, keys, merges.

Past 400 lines, kept whole: the steps share one fake media tool and store, and their rules (what a
probe, a thumbnail and a merge each leave behind on an error or a cancel) read best side by side.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from gql_media.core import media_work
from gql_media.core.changed_videos import VideoIds
from gql_media.core.hls import HlsPlaylist, write_marker
from gql_media.core.media_work import (
    MediaWork,
    MergeStep,
    ProbeStep,
    ThumbnailStep,
    regenerate_thumbnail,
)
from gql_media.core.models import (
    ChangeKind,
    LibraryChange,
    MediaInfo,
    Root,
    Scope,
    SyncPhase,
    SyncTarget,
    VideoFile,
    VideoStatus,
)
from gql_media.core.ports import EmptyVideos, JobCancelled, MediaError, VideoNeed
from gql_media.core.thumbnails import ThumbnailSpec

READY = MediaInfo(VideoStatus.READY, 2.0, 64, 48, "h264", "aac", "mp4", 100_000)


class FakeStore:
    def __init__(self, videos: Sequence[VideoFile]) -> None:
        self.videos = {v.id: v for v in videos}
        self.infos: dict[int, MediaInfo] = {}
        self.writes = 0
        self.pages = 0
        self.reads: list[int] = []  # how many ids each get_video_files / thumbnail_keys asked for
        self.folder_ids = {"sub": 10, "sub/deeper": 11, "other": 12}

    async def get_video_files(self, ids: Sequence[int], *, needing: VideoNeed | None = None) -> list[VideoFile]:
        self.reads.append(len(ids))
        found = [self.videos[i] for i in ids if i in self.videos]
        if needing == "probe":
            return [v for v in found if v.status is VideoStatus.PENDING and v.size != 0]
        if needing == "thumbnail":
            return [
                v
                for v in found
                if v.status is VideoStatus.READY or (v.status is VideoStatus.BROKEN and v.thumbnail_key)
            ]
        return found

    async def get_video_file(self, video_id: int) -> VideoFile | None:
        return self.videos.get(video_id)

    async def thumbnail_keys(self, ids: Sequence[int]) -> dict[int, str | None]:
        self.reads.append(len(ids))
        return {i: self.videos[i].thumbnail_key for i in ids if i in self.videos}

    def _with_status(self, root_ids: Sequence[int], status: VideoStatus, keyed: bool | None) -> list[VideoFile]:
        return sorted(
            (
                v
                for v in self.videos.values()
                if v.status is status and v.root_id in root_ids and keyed in (None, v.thumbnail_key is not None)
            ),
            key=lambda v: (v.path, v.id),
        )

    async def videos_page(
        self,
        root_ids: Sequence[int],
        status: VideoStatus,
        after: tuple[str, int] | None,
        limit: int,
        *,
        keyed: bool | None = None,
        stale_for: str | None = None,
    ) -> tuple[list[VideoFile], tuple[str, int] | None]:
        self.pages += 1
        rows = [v for v in self._with_status(root_ids, status, keyed) if after is None or (v.path, v.id) > after]
        if stale_for is not None:
            rows = [v for v in rows if not ThumbnailSpec("", 0, stale_for).is_current(v)]
        page = rows[:limit]
        return page, (page[-1].path, page[-1].id) if page else None

    async def count_videos(self, root_ids: Sequence[int], status: VideoStatus) -> int:
        return len(self._with_status(root_ids, status, None))

    def _current(self, video: VideoFile) -> bool:
        now = self.videos.get(video.id)
        return now is not None and (now.size, now.mtime_ns) == (video.size, video.mtime_ns)

    async def set_media_infos(self, rows: Sequence[tuple[VideoFile, MediaInfo]]) -> list[int]:
        self.writes += 1
        written = []
        for video, info in rows:
            if self._current(video):
                self.infos[video.id] = info
                self.videos[video.id] = replace(self.videos[video.id], status=info.status)
                written.append(video.id)
        return written

    async def break_empty_videos(
        self, root_ids: Sequence[int], ids: Sequence[int], error: str, *, listed: int, folders_over: int
    ) -> EmptyVideos:
        self.writes += 1
        named = set(ids)
        empty = [
            v
            for v in self.videos.values()
            if v.status is VideoStatus.PENDING and v.size == 0 and (v.root_id in root_ids or v.id in named)
        ]
        empty.sort(key=lambda v: (v.path.rsplit("/", 1)[-1], v.id))
        for v in empty:
            self.infos[v.id] = MediaInfo(VideoStatus.BROKEN, error=error)
            self.videos[v.id] = replace(v, status=VideoStatus.BROKEN)
        folders = sorted(
            {(self.folder_ids[v.path.rsplit("/", 1)[0]], v.root_id, v.path.rsplit("/", 1)[0]) for v in empty}
        )
        return EmptyVideos(
            len(empty),
            [(v.id, v.root_id, v.root_path, v.path) for v in empty[:listed]],
            folders if len(empty) > folders_over else [],
        )

    async def set_thumbnails(self, rows: Sequence[tuple[VideoFile, str | None]]) -> list[int]:
        self.writes += 1
        written = []
        for video, key in rows:
            if self._current(video):
                self.videos[video.id] = replace(self.videos[video.id], thumbnail_key=key)
                written.append(video.id)
        return written


class FakeMedia:
    """Probe and thumbnail by file name: "broken" -> BROKEN, "hang" -> timed out, "gone" -> unreadable."""

    workers = 2

    def __init__(self) -> None:
        self.probed: list[str] = []
        self.thumbnails: list[str] = []
        self.merged: list[str] = []

    async def probe(self, path: str | bytes) -> MediaInfo:
        name = os.fsdecode(path)
        self.probed.append(name)
        await asyncio.sleep(0)
        if "hang" in name:
            return MediaInfo(VideoStatus.BROKEN, error="probe failed: timed out after 60 s")
        if "broken" in name:
            return MediaInfo(VideoStatus.BROKEN, error="not a video")
        if "gone" in name:
            raise MediaError("file not found")
        return READY

    async def make_thumbnail(self, path: str | bytes, output_path: str, width_px: int) -> None:
        await asyncio.sleep(0)
        if "crash" in os.fsdecode(path):
            raise MediaError("the media worker crashed")
        self.thumbnails.append(output_path)
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        Path(output_path).write_bytes(b"jpeg")

    async def merge_hls(self, playlist: HlsPlaylist) -> str:
        if "bad" in playlist.folder:
            raise MediaError("segment segment001.ts is corrupt")
        output = os.path.join(os.path.dirname(playlist.folder), playlist.output_stem + ".mp4")
        Path(output).write_bytes(b"mp4")
        write_marker(playlist, output)
        self.merged.append(output)
        return output

    async def aclose(self) -> None:
        return None


@dataclass
class FakeJob:
    """The running job (``ports.RunningJob``) as the steps see it, recording what they report."""

    root: Root
    changed_video_ids: VideoIds = field(default_factory=VideoIds)  # a list given is made one
    removed_video_ids: VideoIds = field(default_factory=VideoIds)
    scope_list: list[Scope] = field(default_factory=list)
    cancel_after: int | None = None
    reports: list[tuple[SyncPhase, int, int | None]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    changes: list[LibraryChange] = field(default_factory=list)
    synced: list[SyncTarget] = field(default_factory=list)
    checks: int = 0
    unlisted: int = 0  # failures counted without a path
    walked: dict[str, list[str]] = field(default_factory=dict)  # the job's walk: folders naming a playlist, by top

    job_id: int = 7

    def __post_init__(self) -> None:
        self.changed_video_ids = VideoIds(self.changed_video_ids)
        self.removed_video_ids = VideoIds(self.removed_video_ids)

    @property
    def roots(self) -> Sequence[Root]:
        return [self.root]

    def playlist_folders_under(self, top: str) -> list[str] | None:
        return self.walked.get(top)

    @property
    def scopes(self) -> Sequence[Scope]:
        return self.scope_list or [Scope(self.root.id, "sub")]

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        self.reports.append((phase, done, total))

    def add_error(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def count_failures(self, count: int) -> None:
        self.unlisted += count

    def tally(self, *, added: int = 0, updated: int = 0, removed: int = 0, moved: int = 0) -> None:
        raise AssertionError("the media steps write no index entries")

    def is_cancelled(self) -> bool:
        return self.cancel_after is not None and self.checks >= self.cancel_after

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise JobCancelled()

    async def publish_change(self, change: LibraryChange) -> None:
        self.changes.append(change)

    async def sync_targets(self, targets: Sequence[SyncTarget]) -> None:
        self.synced.extend(targets)


ROOT = Root(id=1, path="/lib", folder_id=1)


def video(video_id: int, name: str, status: VideoStatus = VideoStatus.PENDING, key: str | None = None) -> VideoFile:
    return VideoFile(video_id, 1, "/lib", f"sub/{name}", f"/lib/sub/{name}", 1000 + video_id, 5, status, key)


async def test_probe_step_fills_in_and_publishes_each_video() -> None:
    store = FakeStore([video(1, "a.mp4"), video(2, "b.mp4"), video(3, "broken.mp4"), video(4, "hang.mp4")])
    context = FakeJob(ROOT, changed_video_ids=[1, 2, 3, 4])
    await ProbeStep(store, FakeMedia(), batch_size=2)(context)
    assert store.infos[1] == READY and store.infos[3].status is VideoStatus.BROKEN
    assert store.infos[4].error is not None and "timed out" in store.infos[4].error
    assert sorted(c.id or 0 for c in context.changes) == [1, 2, 3, 4]
    assert {c.kind for c in context.changes} == {ChangeKind.UPDATED}
    assert context.reports[0] == (SyncPhase.PROBING, 0, 4)
    assert context.reports[-1] == (SyncPhase.PROBING, 4, 4)
    assert [done for _, done, _ in context.reports] == [0, 0, 1, 2, 3, 4]  # the phase starts before any write
    # BROKEN files are sync errors too, and the job went on.
    assert sorted(p for p, _ in context.errors) == ["/lib/sub/broken.mp4", "/lib/sub/hang.mp4"]


async def test_probe_step_holds_a_chunk_of_videos_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_work, "_PROBE_CHUNK", 2)
    monkeypatch.setattr(media_work, "_PAGE_ROWS", 2)
    store = FakeStore([video(1, "a.mp4"), video(2, "b.mp4"), video(3, "c.mp4"), video(4, "d.mp4"), video(5, "e.mp4")])
    context = FakeJob(ROOT, changed_video_ids=[1, 2, 3, 4, 5])
    await ProbeStep(store, FakeMedia())(context)
    assert store.reads == [2, 2, 1]
    assert sorted(store.infos) == [1, 2, 3, 4, 5]
    # One progress for the whole step: done only grows, the total stays.
    assert [(done, total) for _, done, total in context.reports] == [
        (0, 5),
        (0, 5),
        (1, 5),
        (2, 5),
        (2, 5),
        (3, 5),
        (4, 5),
        (4, 5),
        (5, 5),
    ]


async def test_empty_files_are_broken_in_one_write_and_published_one_by_one_when_few() -> None:
    empties = [replace(video(i, f"empty {i}.mp4"), size=0) for i in (1, 2, 4, 5, 6)]
    store = FakeStore([*empties, video(3, "a.mp4")])
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=[1, 2, 3, 4, 5, 6])
    await ProbeStep(store, media, batch_size=64, summary_threshold=5)(context)
    assert media.probed == ["/lib/sub/a.mp4"]  # the empty files need no media tool
    # One write for the five empty files, then the probed one.
    assert store.writes == 2
    assert [store.infos[i].error for i in (1, 2, 4, 5, 6)] == ["empty file"] * 5
    assert store.infos[3] == READY
    assert context.errors == [(f"/lib/sub/empty {i}.mp4", "empty file") for i in (1, 2, 4, 5, 6)]
    assert context.unlisted == 0
    assert sorted(c.id or 0 for c in context.changes) == [1, 2, 3, 4, 5, 6]
    assert {c.kind for c in context.changes} == {ChangeKind.UPDATED}
    # Progress as one: the phase begins, the five at once, then the probed one, out of six.
    assert [(done, total) for _, done, total in context.reports] == [(0, 6), (5, 6), (5, 6), (6, 6)]


@pytest.mark.parametrize("on_loop", [1000, 1], ids=["subtrees on the loop", "subtrees in a thread"])
async def test_many_empty_files_are_published_as_their_topmost_folders_and_their_errors_past_the_kept_counted(
    monkeypatch: pytest.MonkeyPatch, on_loop: int
) -> None:
    monkeypatch.setattr(media_work, "MAX_ERRORS_KEPT", 2)
    monkeypatch.setattr(media_work, "_SUBTREES_ON_LOOP", on_loop)  # three folders: past 1, in a thread
    empties = [replace(video(i, f"e{i}.mp4"), size=0) for i in (1, 2)]
    empties += [replace(video(i, f"e{i}.mp4"), size=0, path=f"sub/deeper/e{i}.mp4") for i in (3, 4)]
    empties += [replace(video(5, "e5.mp4"), size=0, path="other/e5.mp4")]
    store = FakeStore([*empties, video(6, "a.mp4")])
    context = FakeJob(ROOT, changed_video_ids=[1, 2, 3, 4, 5, 6])
    await ProbeStep(store, FakeMedia(), summary_threshold=4)(context)
    assert all(store.infos[i].error == "empty file" for i in range(1, 6)) and store.infos[6] == READY
    # Five past the threshold of four: the folders holding them, "sub/deeper" within "sub".
    summaries = [(c.kind, c.id, c.path, c.root_path) for c in context.changes if c.id != 6]
    assert summaries == [
        (ChangeKind.SUBTREE_CHANGED, 12, "other", "/lib"),
        (ChangeKind.SUBTREE_CHANGED, 10, "sub", "/lib"),
    ]
    assert [(c.kind, c.id) for c in context.changes if c.id == 6] == [(ChangeKind.UPDATED, 6)]
    # The first two listed by path (a job keeps no more), the other three counted.
    assert context.errors == [("/lib/sub/e1.mp4", "empty file"), ("/lib/sub/e2.mp4", "empty file")]
    assert context.unlisted == 3


async def test_an_empty_file_is_decided_without_the_media_tool() -> None:
    empty = replace(video(1, "empty.mp4"), size=0)
    store = FakeStore([empty, video(2, "a.mp4")])
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=[1, 2])
    await ProbeStep(store, media)(context)
    assert media.probed == ["/lib/sub/a.mp4"]
    assert store.infos[1].status is VideoStatus.BROKEN and store.infos[1].error == "empty file"
    assert context.errors == [("/lib/sub/empty.mp4", "empty file")]
    assert sorted(c.id or 0 for c in context.changes) == [1, 2]


async def test_probe_step_records_unreadable_files_and_leaves_them_pending() -> None:
    store = FakeStore([video(1, "gone.mp4"), video(2, "b.mp4")])
    context = FakeJob(ROOT, changed_video_ids=[1, 2])
    await ProbeStep(store, FakeMedia())(context)
    assert 1 not in store.infos and store.videos[1].status is VideoStatus.PENDING
    assert context.errors == [("/lib/sub/gone.mp4", "cannot be read: file not found")]
    assert [c.id for c in context.changes] == [2]


async def test_probe_step_does_not_write_over_a_file_changed_meanwhile() -> None:
    store = FakeStore([video(1, "a.mp4")])

    class ChangingMedia(FakeMedia):
        async def probe(self, path: str | bytes) -> MediaInfo:
            store.videos[1] = replace(store.videos[1], size=1)  # the file was replaced while probed
            return await super().probe(path)

    context = FakeJob(ROOT, changed_video_ids=[1])
    await ProbeStep(store, ChangingMedia())(context)
    assert store.infos == {} and context.changes == []


async def test_cancel_stops_probing_between_files_and_keeps_what_was_done() -> None:
    store = FakeStore([video(i, f"{i}.mp4") for i in range(1, 11)])
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=list(range(1, 11)), cancel_after=3)
    with pytest.raises(JobCancelled):
        await ProbeStep(store, media)(context)
    assert len(media.probed) == 3
    assert sorted(store.infos) == sorted(int(Path(p).stem) for p in media.probed)


async def test_whole_root_sync_catches_up_on_pending_videos() -> None:
    store = FakeStore([video(1, "a.mp4"), video(2, "left-over.mp4")])
    context = FakeJob(ROOT, changed_video_ids=[1], scope_list=[Scope(1, "")])
    await ProbeStep(store, FakeMedia())(context)
    assert sorted(store.infos) == [1, 2]


async def test_thumbnail_step_keys_versions_and_cleans_up(tmp_path: Path) -> None:
    spec = ThumbnailSpec(str(tmp_path), 320, ".jpg")
    old_key = "1-999-4.jpg"
    (tmp_path / old_key).write_bytes(b"old version")
    (tmp_path / "9-10-11.jpg").write_bytes(b"removed video")
    (tmp_path / "90-10-11.jpg").write_bytes(b"another video")
    store = FakeStore(
        [
            video(1, "a.mp4", VideoStatus.READY, key=old_key),
            video(2, "broken.mp4", VideoStatus.BROKEN, key="2-1002-5.jpg"),
            video(3, "crash.mp4", VideoStatus.READY),
            video(4, "moved.mp4", VideoStatus.READY, key="4-1004-5.jpg"),
        ]
    )
    (tmp_path / "2-1002-5.jpg").write_bytes(b"from before it broke")
    (tmp_path / "4-1004-5.jpg").write_bytes(b"still good")
    context = FakeJob(ROOT, changed_video_ids=[1, 2, 3, 4], removed_video_ids=[9])
    await ThumbnailStep(store, FakeMedia(), spec)(context)
    assert store.videos[1].thumbnail_key == "1-1001-5.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-1001-5.jpg", "4-1004-5.jpg", "90-10-11.jpg"]
    assert store.videos[2].thumbnail_key is None  # BROKEN: placeholder
    assert store.videos[3].thumbnail_key is None  # failed: placeholder, error recorded, job went on
    assert context.errors == [("/lib/sub/crash.mp4", "no thumbnail: the media worker crashed")]
    assert store.videos[4].thumbnail_key == "4-1004-5.jpg"  # a moved file keeps its own
    assert context.reports[-1] == (SyncPhase.THUMBNAILS, 2, 2)


async def test_a_replaced_file_gets_a_new_thumbnail(tmp_path: Path) -> None:
    spec = ThumbnailSpec(str(tmp_path))
    store = FakeStore([video(1, "a.mp4", VideoStatus.READY)])
    await ThumbnailStep(store, FakeMedia(), spec)(FakeJob(ROOT, changed_video_ids=[1]))
    first = store.videos[1].thumbnail_key
    store.videos[1] = replace(store.videos[1], size=5555, mtime_ns=77)
    await ThumbnailStep(store, FakeMedia(), spec)(FakeJob(ROOT, changed_video_ids=[1]))
    second = store.videos[1].thumbnail_key
    assert first and second and first != second
    assert [p.name for p in tmp_path.iterdir()] == [second]


def test_a_key_is_current_only_for_its_own_version(tmp_path: Path) -> None:
    spec = ThumbnailSpec(str(tmp_path), 320, ".jpg")
    now = replace(video(1, "a.mp4", VideoStatus.READY), size=100, mtime_ns=5)
    regenerated = spec.key_for(now, regeneration=255)
    assert [spec.is_current(replace(now, thumbnail_key=key)) for key in ("1-100-5.jpg", regenerated)] == [True, True]
    # Another version's keys, whose names start with this version's: an mtime of 55, a size of 1000.
    for key in ("1-100-55.jpg", "1-1000-5.jpg", "1-100-5.webp", "11-100-5.jpg", None):
        assert not spec.is_current(replace(now, thumbnail_key=key)), key


async def test_regenerate_thumbnail_makes_a_new_key(tmp_path: Path) -> None:
    spec = ThumbnailSpec(str(tmp_path))
    store = FakeStore([video(1, "a.mp4")])
    media = FakeMedia()
    first = await regenerate_thumbnail(1, store, media, spec)  # PENDING: probed first
    second = await regenerate_thumbnail(1, store, media, spec)
    assert first and second and first != second
    assert store.videos[1].thumbnail_key == second
    assert [p.name for p in tmp_path.iterdir()] == [second]
    with pytest.raises(LookupError):
        await regenerate_thumbnail(42, store, media, spec)


def _hls_folder(parent: Path, name: str) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-ENDLIST\n")
    (folder / "a.ts").write_bytes(b"x" * 10)
    (folder / "b.ts").write_bytes(b"y" * 10)
    return folder


async def test_merge_step_merges_downloads_and_indexes_the_output(tmp_path: Path) -> None:
    root = Root(1, str(tmp_path), 1)
    good = _hls_folder(tmp_path / "sub", "Lecture")
    bad = _hls_folder(tmp_path / "sub", "bad one")
    media = FakeMedia()
    context = FakeJob(root, scope_list=[Scope(1, "")])
    await MergeStep(media, auto_merge=True)(context)
    assert media.merged == [str(tmp_path / "sub" / "Lecture.mp4")]
    assert context.synced == [SyncTarget(str(tmp_path / "sub"), recursive=False)]
    assert context.errors == [(str(bad), "HLS merge failed: segment segment001.ts is corrupt")]
    assert context.reports[-1] == (SyncPhase.MERGING, 2, 2)
    assert good.exists()
    # A second sync does not merge it again.
    again = FakeJob(root, scope_list=[Scope(1, "")])
    await MergeStep(media, auto_merge=True)(again)
    assert len(media.merged) == 1


async def test_merge_step_looks_only_where_the_jobs_walk_found_playlists(tmp_path: Path) -> None:
    """A scope the job walked whole: its walk's folders naming a playlist are the only ones looked at
    (no second walk of the scope); a scope it did not walk (None) is looked through on disk."""
    root = Root(1, str(tmp_path), 1)
    found = _hls_folder(tmp_path / "sub", "Lecture")
    _hls_folder(tmp_path / "sub", "Unseen")  # (on disk, but the walk did not report it: not looked at)
    media = FakeMedia()
    walked = FakeJob(root, scope_list=[Scope(1, "")], walked={str(tmp_path): [str(found)]})
    await MergeStep(media, auto_merge=True)(walked)
    assert media.merged == [str(tmp_path / "sub" / "Lecture.mp4")]
    not_walked = FakeJob(root, scope_list=[Scope(1, "")])
    await MergeStep(media, auto_merge=True)(not_walked)
    assert sorted(media.merged) == [str(tmp_path / "sub" / "Lecture.mp4"), str(tmp_path / "sub" / "Unseen.mp4")]


async def test_merge_step_is_off_when_auto_merge_is(tmp_path: Path) -> None:
    _hls_folder(tmp_path, "Lecture")
    media = FakeMedia()
    await MergeStep(media, auto_merge=False)(FakeJob(Root(1, str(tmp_path), 1), scope_list=[Scope(1, "")]))
    assert media.merged == []


async def test_media_work_wires_the_steps_and_the_api_actions(tmp_path: Path) -> None:
    store = FakeStore([video(1, "a.mp4", VideoStatus.READY)])
    work = MediaWork(store, FakeMedia(), ThumbnailSpec(str(tmp_path)), auto_merge=True, delete_source=True)
    assert [type(s).__name__ for s in work.steps()] == ["MergeStep", "ProbeStep", "ThumbnailStep"]
    key = await work.regenerate_thumbnail(1)
    assert work.thumbnail_file(key) == str(tmp_path / (key or ""))
    assert work.thumbnail_file(None) is None and work.thumbnail_file("../etc/passwd") is None
    store.videos[2] = video(2, "crash.mp4", VideoStatus.READY)
    assert await work.regenerate_thumbnail(2) is None  # failed: placeholder, not an exception
    folder = _hls_folder(tmp_path / "dl", "Talk")
    outcome = await work.merge_hls(str(folder))
    assert outcome.ok and outcome.source_deleted and not folder.exists()


async def test_a_job_with_too_many_changes_to_keep_probes_its_roots_pending_videos_by_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media_work, "_PROBE_CHUNK", 2)
    monkeypatch.setattr(media_work, "_PAGE_ROWS", 2)
    videos = [video(i, f"{i}.mp4") for i in range(1, 6)] + [video(6, "done.mp4", VideoStatus.READY)]
    store = FakeStore([*videos, replace(video(7, "other-root.mp4"), root_id=2)])
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=VideoIds(range(1, 6), limit=3))  # a folder's scope, many
    await ProbeStep(store, media)(context)
    # Every PENDING video of the job's root, once, read a page at a time; none by id, no other root's.
    assert sorted(media.probed) == [f"/lib/sub/{i}.mp4" for i in range(1, 6)]
    assert store.reads == [] and store.pages == 4  # 2 + 2 + 1, and the empty page that ends it
    assert sorted(store.infos) == [1, 2, 3, 4, 5]
    assert context.reports[0] == (SyncPhase.PROBING, 0, 5) and context.reports[-1] == (SyncPhase.PROBING, 5, 5)


async def test_a_whole_root_sync_probes_a_changed_video_once_and_the_left_over_ones_by_pages() -> None:
    store = FakeStore([video(1, "gone.mp4"), video(2, "a.mp4"), video(3, "left-over.mp4")])
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=[1, 2], scope_list=[Scope(1, "")])
    await ProbeStep(store, media)(context)
    assert sorted(media.probed) == ["/lib/sub/a.mp4", "/lib/sub/gone.mp4", "/lib/sub/left-over.mp4"]
    assert context.errors == [("/lib/sub/gone.mp4", "cannot be read: file not found")]  # not twice
    assert context.reports[-1] == (SyncPhase.PROBING, 3, 3)


async def test_a_job_with_too_many_changes_redraws_every_thumbnail_not_of_its_version(tmp_path: Path) -> None:
    spec = ThumbnailSpec(str(tmp_path), 320, ".jpg")
    for name in ("1-999-4.jpg", "2-1002-5.jpg", "4-1004-5.jpg", "9-10-11.jpg"):
        (tmp_path / name).write_bytes(b"image")
    store = FakeStore(
        [
            video(1, "a.mp4", VideoStatus.READY, key="1-999-4.jpg"),  # changed: an earlier version's image
            video(2, "broken.mp4", VideoStatus.BROKEN, key="2-1002-5.jpg"),  # broke since
            video(3, "new.mp4", VideoStatus.READY),
            video(4, "kept.mp4", VideoStatus.READY, key="4-1004-5.jpg"),
        ]
    )
    media = FakeMedia()
    context = FakeJob(ROOT, changed_video_ids=VideoIds(range(1, 5), limit=2), removed_video_ids=VideoIds([9], limit=0))
    await ThumbnailStep(store, media, spec)(context)
    keys = [store.videos[i].thumbnail_key for i in (1, 2, 3, 4)]
    assert keys == ["1-1001-5.jpg", None, "3-1003-5.jpg", "4-1004-5.jpg"]
    assert sorted(os.path.basename(p) for p in media.thumbnails) == ["1-1001-5.jpg", "3-1003-5.jpg"]
    # The old images and the removed video's (too many removed to name: the sweep finds it) are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-1001-5.jpg", "3-1003-5.jpg", "4-1004-5.jpg"]


async def test_a_whole_root_sync_sweeps_orphan_images_a_batch_of_the_folder_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media_work, "_PROBE_CHUNK", 2)
    monkeypatch.setattr(media_work, "_PAGE_ROWS", 2)
    spec = ThumbnailSpec(str(tmp_path), 320, ".jpg")
    for name in ("1-1001-5.jpg", "1-999-4.jpg", "2-1002-5.jpg", "3-1003-5.jpg", "placeholder-320.jpg", "4-9-9.jpg"):
        (tmp_path / name).write_bytes(b"image")
    later = time.time() + 60
    os.utime(tmp_path / "4-9-9.jpg", (later, later))  # written after the sweep began (a regeneration): kept
    store = FakeStore(
        [
            video(1, "a.mp4", VideoStatus.READY, key="1-1001-5.jpg"),
            video(3, "c.mp4", VideoStatus.READY, key="3-1003-5.jpg"),
        ]
    )
    media = FakeMedia()
    await ThumbnailStep(store, media, spec)(FakeJob(ROOT, scope_list=[Scope(1, "")]))
    # An earlier version's image and a gone video's are orphans; the keys, the placeholder and the new file stay.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "1-1001-5.jpg",
        "3-1003-5.jpg",
        "4-9-9.jpg",
        "placeholder-320.jpg",
    ]
    # The five videos' images two at a time (the newer one is listed too: only an orphan's age is read).
    assert store.reads == [2, 2, 1] and media.thumbnails == []
