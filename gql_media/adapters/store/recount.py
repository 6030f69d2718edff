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

_ROOT_TOTALS = "SELECT root_id, tree_video_count, tree_total_size FROM folders WHERE parent_id IS NULL AND path = ''"
_VIDEO_TOTALS = "SELECT root_id, COUNT(*), COALESCE(SUM(size), 0) FROM videos GROUP BY root_id"
_DIRECT = (
    "UPDATE folders SET video_count = (SELECT COUNT(*) FROM videos v WHERE v.folder_id = folders.id),"
    " total_size = (SELECT COALESCE(SUM(v.size), 0) FROM videos v WHERE v.folder_id = folders.id)"
)


async def repair_totals(db: Db) -> bool:
    """Recount the folder totals when a root's differ from its videos; whether they were recounted.

    One write transaction: the sync's own deltas land before or after it, never in between.
    """
    async with db.writing() as conn:
        counted = {int(root_id): (int(count), int(size)) for root_id, count, size in await conn.fetch(_VIDEO_TOTALS)}
        kept = {int(root_id): (int(count), int(size)) for root_id, count, size in await conn.fetch(_ROOT_TOTALS)}
        if all(counted.get(root_id, (0, 0)) == totals for root_id, totals in kept.items()):
            return False
        await _recount(conn)
    return True


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
