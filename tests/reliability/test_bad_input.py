"""Bad input on disk: odd names, deep trees, symlink loops and escapes, broken media, files vanishing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gql_media.core.models import JobState, VideoStatus
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import disk_tree, index_tree, run_sync, write
from tests.media_fixtures import make_clips


async def test_odd_names_deep_trees_and_symlinks(services: Services, library: Path, tmp_path: Path) -> None:
    raw_root = os.fsencode(library)
    bad = raw_root + b"/caf\xe9 \xff.mp4"
    with open(bad, "wb") as handle:
        handle.write(b"latin-1 name")
    os.makedirs(raw_root + b"/dir \xfe", exist_ok=True)
    with open(raw_root + b"/dir \xfe/inner.mp4", "wb") as handle:
        handle.write(b"x")
    write(library / "new\nline.mp4")
    write(library / 'quote\'s "double".mp4')
    write(library / "back\\slash.mkv")
    deep = library.joinpath(*[f"d{level}" for level in range(40)])
    write(deep / "bottom.mp4")
    (library / "loop").mkdir()
    (library / "loop" / "again").symlink_to(library)  # a loop back to the root
    (library / "self").symlink_to("self")  # a link to itself
    outside = tmp_path / "outside"
    write(outside / "secret.mp4")
    (library / "escape").symlink_to(outside)  # leads out of the root: never followed
    (library / "escape.mp4").symlink_to(outside / "secret.mp4")
    job = await run_sync(services, library)
    assert job.state is JobState.SUCCEEDED, job.errors
    indexed = await index_tree(services)
    assert ("video", "d0/" + "/".join(f"d{level}" for level in range(1, 40)) + "/bottom.mp4") in indexed
    assert ("video", "new\nline.mp4") in indexed
    assert ("video", 'quote\'s "double".mp4') in indexed
    assert ("video", "caf\ufffd \ufffd.mp4") in indexed
    assert ("video", "dir \ufffd/inner.mp4") in indexed
    assert not any("secret" in path or path.startswith("escape") for _kind, path in indexed)
    assert not any(path.startswith("loop/again/") for _kind, path in indexed)
    # A second sync changes nothing (raw names round-trip).
    again = await run_sync(services, library)
    assert (again.progress.added, again.progress.removed, again.progress.updated) == (0, 0, 0)


async def test_files_vanishing_mid_scan_converge(services: Services, library: Path) -> None:
    for folder in range(40):
        for index in range(50):
            write(library / f"f{folder}" / f"{index}.mp4")
    await run_sync(services, library)
    stop = threading.Event()

    def churn() -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            for folder in range(0, 40, 3):
                path = library / f"f{folder}"
                for index in range(0, 50, 7):
                    target = path / f"{index}.mp4"
                    if turn % 2:
                        target.unlink(missing_ok=True)
                    else:
                        target.write_bytes(b"back")

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(5):
            job = await run_sync(services, library)
            assert job.state is JobState.SUCCEEDED, job.errors
    finally:
        stop.set()
        worker.join()
    await run_sync(services, library)
    assert await index_tree(services) == disk_tree(library)


async def test_broken_media_is_marked_not_fatal(tmp_path: Path, library: Path) -> None:
    clips = make_clips(tmp_path / "clips")
    for name, path in clips.broken.items():
        os.link(path, library / f"{name}{path.suffix}")
    os.link(clips.h264_mp4, library / "good.mp4")
    settings = Settings(
        roots=[library], data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'i.db'}", watch=False
    )
    async with open_services(settings) as services:
        job = await run_sync(services, library)
        assert job.state is JobState.SUCCEEDED
        async with services.db.reading() as conn:
            rows = {str(r[0]): (str(r[1]), r[2]) for r in await conn.fetch("SELECT name, status, error FROM videos")}
    assert rows["good.mp4"][0] == VideoStatus.READY
    for name, path in clips.broken.items():
        status, error = rows[f"{name}{path.suffix}"]
        assert status == VideoStatus.BROKEN, (name, status)
        assert error and str(tmp_path) not in error, (name, error)
