"""The segment cache on real files: the byte bound, LRU order, atomic commits, invalidation."""

from __future__ import annotations

from pathlib import Path

from gql_media.core.segment_cache import SegmentCache


def _make(cache: SegmentCache, source: str, name: str, size: int) -> Path:
    final = cache.path_for(source, "v1", name)
    temp = cache.temp_path(final)
    temp.write_bytes(b"x" * size)
    cache.commit(temp, final)
    return final


def test_the_byte_bound_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=250)
    cache.load()
    a = _make(cache, "1", "0.ts", 100)
    b = _make(cache, "1", "1.ts", 100)
    assert cache.lookup(a)  # a is now more recent than b
    c = _make(cache, "2", "0.ts", 100)
    assert cache.total_bytes == 200
    assert a.exists() and c.exists() and not b.exists()
    assert not cache.lookup(b)


def test_commit_is_a_rename_and_partial_files_of_a_crash_are_removed(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    cache.load()
    final = cache.path_for("7", "v1", "3.ts")
    temp = cache.temp_path(final)
    temp.write_bytes(b"half a segment")
    assert not cache.lookup(final)  # nothing under the final name until it is whole
    # The process dies here; the next start finds the partial file and removes it.
    restarted = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    restarted.load()
    assert not temp.exists()
    assert restarted.total_bytes == 0


def test_a_restart_keeps_whole_files_counted(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    cache.load()
    kept = _make(cache, "1", "0.ts", 300)
    restarted = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    restarted.load()
    assert restarted.total_bytes == 300
    assert restarted.lookup(kept)


def test_dropping_a_source_removes_its_files_only(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    cache.load()
    gone = _make(cache, "1", "0.ts", 100)
    kept = _make(cache, "12", "0.ts", 50)
    assert cache.drop_source("1") == 100
    assert not gone.exists() and kept.exists()
    assert cache.total_bytes == 50


def test_a_use_keeps_the_making_time_and_the_order_survives_a_restart(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=250)
    cache.load()
    a = _make(cache, "1", "0.ts", 100)
    made_ns = a.stat().st_mtime_ns
    b = _make(cache, "1", "1.ts", 100)
    assert cache.lookup(a)  # a is now more recent than b
    # Served again, a is the same file: its Last-Modified and ETag (from its mtime) stay.
    assert a.stat().st_mtime_ns == made_ns
    restarted = SegmentCache(tmp_path / "cache", max_bytes=250)
    restarted.load()
    c = _make(restarted, "2", "0.ts", 100)
    assert a.exists() and c.exists() and not b.exists()


def test_dropping_many_sources_at_once_frees_each_and_keeps_the_others(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    cache.load()
    one = [_make(cache, "1", "0.ts", 100), _make(cache, "1", "1.ts", 20)]
    two = _make(cache, "2", "0.ts", 30)
    kept = _make(cache, "12", "0.ts", 50)
    # A source with a folder but nothing counted yet (a segment being made) goes too.
    making = tmp_path / "cache" / "7" / "variant" / "0.ts.tmp-abc"
    making.parent.mkdir(parents=True)
    making.write_bytes(b"x")
    freed = cache.drop_sources(["1", "2", "7", "404"])
    assert freed == {"1": 120, "2": 30}
    assert not any(path.exists() for path in [*one, two, making])
    assert kept.exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["12"]
    assert cache.total_bytes == 50


def test_a_drop_keeps_the_variants_it_is_told_to(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=10_000)
    cache.load()
    old = _make(cache, "1", "0.ts", 100)
    current = cache.path_for("1", "v2", "0.ts")
    temp = cache.temp_path(current)
    temp.write_bytes(b"y" * 40)
    cache.commit(temp, current)
    other = _make(cache, "2", "0.ts", 30)
    asked: list[tuple[str, str]] = []

    def keep(source: str, variant: str) -> bool:
        asked.append((source, variant))
        return variant == "v2"

    assert cache.drop_sources(["1"], keep) == {"1": 100}
    assert not old.exists()
    assert current.exists() and other.exists()
    assert cache.total_bytes == 70
    assert sorted(set(asked)) == [("1", "v1"), ("1", "v2")]  # only the dropped source's variants are asked
    # A source left with no variant goes whole.
    assert cache.drop_sources(["2"], keep) == {"2": 30}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["1"]
