"""Folder totals checked against the videos once a writer starts, and counted again when they differ.

The store keeps the totals in its own write transactions (``totals.py``). A database written
behind its back (a tool, a restore, the scale bench giving a scanned index its probed sizes)
leaves them wrong, and the next sync's deltas, relative to the rows' sizes, then take them
below zero. The check compares each root's totals with its videos (one scan of the videos); a
mismatch recounts every folder: the direct totals in SQL, the recursive ones summed up the
parent links here (one row per folder, never one per video).
"""

from __future__ import annotations

from typing import Any

from gql_media.adapters.store.db import Db, RawConnection

# Each root folder's totals beside its videos' count and size, in one statement (one snapshot: a sync committing
# between two reads would look like a mismatch).
_CHECK = (
    "SELECT f.tree_video_count, f.tree_total_size, COALESCE(v.n, 0), COALESCE(v.s, 0) FROM folders f"
    " LEFT JOIN (SELECT root_id, COUNT(*) AS n, COALESCE(SUM(size), 0) AS s FROM videos GROUP BY root_id) v"
    " ON v.root_id = f.root_id WHERE f.parent_id IS NULL AND f.path = ''"
)
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
        if _totals_match(await conn.fetch(_CHECK)):
            return False
    async with db.writing() as conn:
        if _totals_match(await conn.fetch(_CHECK)):
            return False  # made right meanwhile (a root forgotten, or its sync wrote the same)
        await _recount(conn)
    return True


def _totals_match(rows: list[tuple[Any, ...]]) -> bool:
    return all(
        (int(kept_count), int(kept_size)) == (int(count), int(size)) for kept_count, kept_size, count, size in rows
    )


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
