"""Crash safety: a real server indexing a 5k-file library is SIGKILLed at several moments.

After every restart it picks up where it was; at the end the index equals the disk, the SQLite
file is sound, no row is doubled, no thumbnail is orphaned and no half-written mp4 has a final name.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from gql_media.adapters.demo import ClipSpec, encode_clip, write_hls_folder
from gql_media.core.hls import TEMP_PREFIX
from tests.conftest import disk_tree
from tests.media_hooks import MERGE_GATE_ENV
from tests.reliability.conftest import Server, db_health, index_paths
from tests.video_sql import VIDEOS

pytestmark = pytest.mark.slow

FAKE_FILES = 4_700
ADDED_FILES = 3_000  # before the mid-batch start
REAL_CLIPS = 300
FOLDERS = 50
PROGRESS = "{ currentSync { id progress { phase done total added removed } } }"


def make_library(root: Path, clip: Path) -> None:
    """5,000 videos: mostly files that only look like videos, some real clips, one HLS download."""
    for index in range(FAKE_FILES):
        folder = root / f"f{index % FOLDERS:02d}" / ("deep" if index % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"fake {index:05d}.mp4").write_bytes(b"not a video %d" % index)
    for index in range(REAL_CLIPS):
        folder = root / f"clips{index % 5}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(clip, folder / f"clip {index:03d}.mp4")
    write_hls_folder(root / "My Lecture", ClipSpec(duration_s=3.0))


def add_fake_files(root: Path, count: int) -> None:
    """``count`` more files that only look like videos, in folders of 100 under ``root``."""
    for index in range(count):
        folder = root / f"a{index // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"added {index:05d}.mp4").write_bytes(b"added, not a video %d" % index)


def kill_when(server: Server, moment: Callable[[dict[str, Any] | None], bool], timeout_s: float = 120.0) -> bool:
    """Poll the running job's progress as fast as the server answers; SIGKILL when ``moment`` holds.

    Returns whether the moment was seen (the server is killed at the timeout either way).
    """
    deadline = time.monotonic() + timeout_s
    seen = False
    with httpx.Client(base_url=server.base, timeout=30) as client:
        while time.monotonic() < deadline:
            try:
                body = client.post("/graphql", json={"query": PROGRESS}).json()
            except httpx.HTTPError:
                continue
            current = body["data"]["currentSync"]
            if moment(current["progress"] if current else None):
                seen = True
                break
    server.kill()
    return seen


def phase_is(phase: str, min_done: int = 0) -> Callable[[dict[str, Any] | None], bool]:
    def check(progress: dict[str, Any] | None) -> bool:
        return progress is not None and progress["phase"] == phase and progress["done"] >= min_done

    return check


def mid_batch(progress: dict[str, Any] | None) -> bool:
    """Some batches of new videos committed, others not: a resync's writes after its walk, or a first
    index's as it walks (when the kill before came before its first commit: then it is a first index again)."""
    if progress is None:
        return False
    if progress["phase"] == "WRITING":
        return progress["total"] is not None and 0 < progress["done"] < progress["total"]
    return progress["phase"] == "SCANNING" and 0 < progress["added"] < FAKE_FILES


def after_s(delay_s: float) -> Callable[[dict[str, Any] | None], bool]:
    """True once ``delay_s`` passed since the first look (the server answers by then)."""
    first: list[float] = []

    def check(_progress: dict[str, Any] | None) -> bool:
        if not first:
            first.append(time.monotonic())
        return time.monotonic() - first[0] >= delay_s

    return check


def temp_files(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob(f"{TEMP_PREFIX}*")]


def test_sigkill_at_many_moments_then_converges(tmp_path: Path, make_server: Callable[..., Server]) -> None:
    library = tmp_path / "library"
    library.mkdir()
    clip = encode_clip(tmp_path / "clip.mp4", ClipSpec(duration_s=1.0))
    make_library(library, clip)
    data_dir = tmp_path / "data"
    # Small batches: a 5k-file write is many transactions, so a kill lands between two of them. A job
    # past the summary threshold writes its new videos in one bulk transaction instead (nothing to
    # land between, and the poll could miss the whole write and let the unstalled merge finish):
    # keep this job below it.
    env = {"GQL_MEDIA_SYNC_BATCH_SIZE": "100", "GQL_MEDIA_SYNC_SUMMARY_THRESHOLD": "1000000"}
    moments: dict[str, bool] = {}
    # HLS merges stall after their remux while this file exists (tests/media_hooks.py).
    gate = tmp_path / "merge-gate"
    gate.touch()
    stalled_merges = {MERGE_GATE_ENV: str(gate)}

    def run(name: str, moment: Callable[[dict[str, Any] | None], bool], extra: dict[str, str] | None = None) -> None:
        server = make_server([library], data_dir=data_dir, watch=False, env={**env, **(extra or {})})
        server.start()
        moments[name] = kill_when(server, moment)
        health = db_health(server.db_path)
        assert health["integrity"] == ["ok"], (name, health["integrity"])
        assert not health["duplicates"], (name, health["duplicates"])

    # 1. During the start-up sync's scan or its first writes (as soon as the server answers).
    run("startup", lambda progress: True)
    # 2. Mid-batch: some batches of new videos committed, others not. The kill above may have come
    # after the start-up sync wrote all of its videos (a first index is quick): new files make sure
    # this start has batches to write. Its merge stalls too: a moment missed here must not let it
    # finish and leave the next run nothing to kill in (``moments`` says which moment was missed).
    add_fake_files(library / "added", ADDED_FILES)
    run("mid-batch", mid_batch, stalled_merges)
    # 3. Mid-HLS-merge: the remuxed temp file exists, not yet verified nor linked to its final name.
    run("mid-merge", lambda _p: bool(temp_files(library)), stalled_merges)
    assert not (library / "My Lecture.mp4").exists(), "a partial merge got its final name"
    # 4. Mid-probe, 5. mid-thumbnails, 6. a random moment of a later start.
    run("probing", phase_is("PROBING", 50))
    run("thumbnails", phase_is("THUMBNAILS", 5))
    delay_s = random.uniform(0.0, 1.5)
    run("random", after_s(delay_s))
    assert moments["mid-batch"] and moments["mid-merge"], moments
    # 7. Once idle (every thumbnail made).
    server = make_server([library], data_dir=data_dir, watch=False, env=env)
    server.start()
    server.wait_idle(timeout_s=300)
    server.kill()

    # Changes while the server is down: some videos go, some are replaced by other content.
    gone = sorted(library.glob("clips0/*.mp4"))[:10]
    with_thumbnails = _thumbnailed(data_dir / "library.db", [str(p.relative_to(library)) for p in gone])
    for path in gone:
        path.unlink()
    for path in sorted(library.glob("f01/*.mp4"))[:10]:
        path.write_bytes(b"changed while down")
    # 8. Right after the sync removed their rows, before the thumbnail step deletes their images.
    # A new HLS download whose merge stalls holds the job there, so the moment can be seen.
    write_hls_folder(library / "Second Lecture", ClipSpec(duration_s=2.0))
    run(
        "after-removal",
        lambda p: p is not None and p["removed"] >= 10,
        stalled_merges,
    )
    assert moments["after-removal"], moments
    assert with_thumbnails == len(gone)

    server = make_server([library], data_dir=data_dir, watch=False, env=env)
    server.start()
    first = server.wait_idle(timeout_s=300)
    # The next sync: what the start-up sync left to clean (if anything) is cleaned now.
    server.data("mutation { syncLibrary(mode: INCREMENTAL) { id } }")
    last = server.wait_idle(timeout_s=300, after_job=_number(first["id"]))
    assert last["state"] == "SUCCEEDED", last

    assert index_paths(server.db_path) == disk_tree(library)
    health = db_health(server.db_path)
    assert health["integrity"] == ["ok"]
    assert not health["foreign_keys"]
    assert not health["duplicates"]
    thumbnails = data_dir / "thumbnails"
    files = {p.name for p in thumbnails.iterdir() if not p.name.startswith("placeholder-")}
    assert files == health["thumbnail_keys"], {
        "orphans": sorted(files - health["thumbnail_keys"])[:5],
        "missing": sorted(health["thumbnail_keys"] - files)[:5],
    }
    assert not temp_files(library, thumbnails)
    statuses = server.data("{ videos(first: 1, filter: {status: PENDING}) { totalCount } }")
    assert statuses["videos"]["totalCount"] == 0, "probing did not resume after the kills"
    ready = server.data("{ videos(first: 1, filter: {status: READY}) { totalCount } }")
    assert ready["videos"]["totalCount"] == REAL_CLIPS - 10 + 2  # the clips left, and the two merged lectures
    assert (library / "Second Lecture.mp4").stat().st_size > 0
    merged = library / "My Lecture.mp4"
    with av.open(str(merged)) as container:
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 3.0) < 1.0
    assert os.path.getsize(merged) > 0
    print(f"crash moments seen: {moments}")


def _thumbnailed(db_path: Path, paths: list[str]) -> int:
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        marks = ",".join("?" * len(paths))
        query = f"SELECT COUNT(*) FROM {VIDEOS} WHERE thumbnail_key IS NOT NULL AND path IN ({marks})"
        count: int = conn.execute(query, paths).fetchone()[0]
    return count


def _number(global_id: str) -> int:
    import base64

    return int(base64.b64decode(global_id).decode().partition(":")[2])
