"""The sync's walk notes the folders naming a playlist, so that the job's merging step finds the
same HLS downloads as a walk of its own would, without listing the scope's tree a second time.

Real folders on disk, the real scanner and engine (over the engine tests' in-memory store), in
every path a folder can take through the walk: a first index (its walk in a process of its own),
an unchanged resync (folders settled whole), a scope not indexed yet (a survey's walk) and a
shallow scope (not walked whole: the merging step then looks on disk).
"""

from __future__ import annotations

from pathlib import Path

from gql_media.core.hls import downloads_among, list_hls_downloads
from gql_media.core.models import Scope
from tests.core.test_sync_engine import Library, open_library, write

MEDIA = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg0.ts\n#EXTINF:2,\nseg1.ts\n#EXT-X-ENDLIST\n"


def _media_download(folder: Path, name: str = "index.m3u8") -> Path:
    write(folder / name, MEDIA.encode())
    write(folder / "seg0.ts")
    write(folder / "seg1.ts")
    return folder


def _tree(root: Path) -> dict[str, Path]:
    """Downloads of several shapes beside plain videos; returns the folders naming a visible playlist."""
    show = _media_download(root / "Downloads" / "show")
    movie = root / "Downloads" / "movie"
    variants = {name: _media_download(movie / name) for name in ("720p", "480p")}
    master = "#EXTM3U\n" + "".join(
        f"#EXT-X-STREAM-INF:BANDWIDTH={n}000,RESOLUTION=1x1\n{name}/index.m3u8\n" for n, name in enumerate(variants, 1)
    )
    write(movie / "master.m3u8", master.encode())
    upper = _media_download(root / "Other" / "UPPER", "LIST.M3U8")
    _media_download(root / ".hidden" / "dl")  # (a hidden folder: walked by neither)
    write(root / "plain" / "a.mp4")
    write(root / "plain" / "b.mkv")
    write(root / "notes" / "list.m3u8.txt")  # (names ".m3u8" but is no playlist)
    return {"show": show, "movie": movie, "720p": variants["720p"], "480p": variants["480p"], "upper": upper}


def _downloads_on_disk(top: Path) -> set[str]:
    return set(list_hls_downloads([str(top)]))


async def test_every_walk_path_notes_the_folders_naming_a_playlist(tmp_path: Path) -> None:
    library: Library = await open_library(tmp_path)
    folders = _tree(library.path)
    wanted = {str(folder) for folder in folders.values()}
    downloads = {str(folders[name]) for name in ("show", "movie", "upper")}
    assert _downloads_on_disk(library.path) == downloads

    first = await library.sync()  # a first index: walked in a process of its own
    assert first.walked_tops == [str(library.path)]
    assert set(first.playlist_folders) == wanted
    assert set(downloads_among(sorted(first.playlist_folders))) == downloads

    again = await library.sync()  # nothing changed: most folders settled whole
    assert again.walked_tops == [str(library.path)]
    assert set(again.playlist_folders) == wanted

    late = _media_download(library.path / "New" / "late")
    new_scope = await library.sync(Scope(library.root.id, "New"))  # not indexed yet: the survey walks it
    assert new_scope.walked_tops == [str(library.path / "New")]
    assert new_scope.playlist_folders == [str(late)]
    assert set(downloads_among(new_scope.playlist_folders)) == _downloads_on_disk(library.path / "New")

    shallow = await library.sync(Scope(library.root.id, "Downloads", recursive=False))
    assert shallow.walked_tops == []  # (not walked whole: the merging step looks on disk)
