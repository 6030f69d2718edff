"""Folder totals checked against the videos once a writer starts, and counted again when they differ.

The store keeps the totals in its own write transactions (``totals.py``). A database written
behind its back (a tool, a restore, the scale bench giving a scanned index its probed sizes)
leaves them wrong, and the next sync's deltas, relative to the rows' sizes, then take them
below zero. The check compares each root's totals with its videos (one scan of the videos); a
mismatch recounts every folder: the direct totals in SQL, the recursive ones summed up the
parent links here (one row per folder, never one per video).
"""

from __future__ import annotations

from gql_media.adapters.store.db import Db, RawConnection

# Each root folder's totals, and beside them its videos' count and size. Two statements: a sync
# committing between them looks like a mismatch, which ``repair_totals`` checks again in its write
# transaction, where no sync commits. The videos are summed
# per root in one scan with a CASE per root, not grouped by root_id: no index leads with root_id
# (a video's place is (folder_id, name) since migration 0010), and SQLite grouped through a sorter
# of every video, in memory (temp_store): +45 MB of the server's RSS at start-up at 1M videos.
_ROOT_FOLDERS = "SELECT root_id, tree_video_count, tree_total_size FROM folders WHERE parent_id IS NULL AND path = ''"


def _check_sql(root_ids: list[int]) -> str:
    sums = ", ".join(
        f"COALESCE(SUM(CASE WHEN root_id = {root_id} THEN 1 ELSE 0 END), 0),"
        f" COALESCE(SUM(CASE WHEN root_id = {root_id} THEN size ELSE 0 END), 0)"
        for root_id in root_ids
    )
    return f"SELECT {sums} FROM videos"


async def _check(conn: RawConnection) -> list[tuple[int, int, int, int]]:
    """Each root's kept totals beside its videos' count and size."""
    roots = [(int(r[0]), int(r[1]), int(r[2])) for r in await conn.fetch(_ROOT_FOLDERS)]
    found: list[tuple[int, int, int, int]] = []
    for start in range(0, len(roots), _ROOTS_PER_CHECK):
        chunk = roots[start : start + _ROOTS_PER_CHECK]
        row = await conn.fetch_one(_check_sql([root_id for root_id, _count, _size in chunk]))
        assert row is not None
        found += [(count, size, int(row[2 * i]), int(row[2 * i + 1])) for i, (_root, count, size) in enumerate(chunk)]
    return found


_ROOTS_PER_CHECK = 200  # two columns each: under SQLite's 2,000 result columns


_DIRECT = (
    "UPDATE folders SET video_count = (SELECT COUNT(*) FROM videos v WHERE v.folder_id = folders.id),"
    " total_size = (SELECT COALESCE(SUM(v.size), 0) FROM videos v WHERE v.folder_id = folders.id)"
)


async def repair_totals(db: Db) -> bool:
    """Recount the folder totals when a root's differ from its videos; whether they were recounted.

    The check is a read (a scan of the videos: seconds at 1M on a loaded machine): it holds no
    write lock, so the start-up's own writes (the start-up sync's job row, which the server
    answers after) never wait for it. Only a mismatch takes the write transaction, checks again
    there and recounts: the sync's own deltas land before or after it, never in between.
    """
    async with db.reading() as conn:
        if _totals_match(await _check(conn)):
            return False
    async with db.writing() as conn:
        if _totals_match(await _check(conn)):
            return False  # made right meanwhile (a root forgotten, or its sync wrote the same)
        await _recount(conn)
    return True


def _totals_match(rows: list[tuple[int, int, int, int]]) -> bool:
    return all((kept_count, kept_size) == (count, size) for kept_count, kept_size, count, size in rows)


async def _recount(conn: RawConnection) -> None:
    await conn.execute(_DIRECT)
    folders = await conn.fetch("SELECT id, parent_id, video_count, total_size FROM folders")
    parents = {int(row[0]): None if row[1] is None else int(row[1]) for row in folders}
    tree = {folder_id: [0, 0] for folder_id in parents}
    for folder_id, _parent, count, size in folders:
        above: int | None = int(folder_id)
        while above is not None:
            tree[above][0] += int(count)
            tree[above][1] += int(size)
            above = parents[above]
    await conn.executemany(
        "UPDATE folders SET tree_video_count = ?, tree_total_size = ? WHERE id = ?",
        sorted(((count, size, folder_id) for folder_id, (count, size) in tree.items()), key=lambda row: row[2]),
    )
