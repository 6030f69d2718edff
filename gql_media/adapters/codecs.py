"""Core values as plain JSON data, for what crosses a process: the broadcast bus's events (a change,
a progress, the watcher's status), the watcher's status a leader answers a command with
(``cluster.commands``), and times as UTC epoch seconds (also the job store's).

A change and a progress travel as positional lists (the bus sends thousands a second), the watcher's
status as an object. Replicas of two versions exchange these during a rolling upgrade: change them
compatibly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    JobState,
    LibraryChange,
    SyncPhase,
    SyncProgress,
    WatcherStatus,
    WatchMode,
)

__all__ = [
    "decode_change",
    "decode_progress",
    "decode_watcher",
    "encode_change",
    "encode_progress",
    "encode_watcher",
    "epoch_s",
    "from_epoch_s",
]


def epoch_s(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_epoch_s(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def encode_change(c: LibraryChange) -> list[Any]:
    entry = None if c.entry_kind is None else c.entry_kind.value
    return [c.kind.value, entry, c.id, c.root_id, c.root_path, c.path, c.old_path, c.job_id, c.sequence]


def decode_change(d: list[Any]) -> LibraryChange:
    entry = None if d[1] is None else EntryKind(d[1])
    return LibraryChange(ChangeKind(d[0]), entry, d[2], d[3], d[4], d[5], d[6], d[7], d[8])


def encode_progress(p: SyncProgress) -> list[Any]:
    return [p.job_id, p.sequence, p.state.value, p.phase.value, p.done, p.total, p.current_path,
            p.added, p.updated, p.removed, p.moved, p.failed, p.elapsed_s]  # fmt: skip


def decode_progress(d: list[Any]) -> SyncProgress:
    return SyncProgress(d[0], d[1], JobState(d[2]), SyncPhase(d[3]), *d[4:13])


def encode_watcher(s: WatcherStatus) -> dict[str, Any]:
    return {
        "enabled": s.enabled,
        "mode": s.mode.value,
        "roots": list(s.roots),
        "settle_ms": s.settle_ms,
        "pending_paths": s.pending_paths,
        "error": s.error,
        "last_event_at": epoch_s(s.last_event_at),
        "last_sync_at": epoch_s(s.last_sync_at),
        "leader": s.leader,
    }


def decode_watcher(d: dict[str, Any]) -> WatcherStatus:
    return WatcherStatus(
        enabled=bool(d["enabled"]),
        mode=WatchMode(d["mode"]),
        roots=tuple(d["roots"]),
        settle_ms=int(d["settle_ms"]),
        pending_paths=int(d["pending_paths"]),
        error=d["error"],
        last_event_at=from_epoch_s(d["last_event_at"]),
        last_sync_at=from_epoch_s(d["last_sync_at"]),
        leader=d.get("leader"),
    )
