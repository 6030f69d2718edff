"""The commands replicas send each other: each one survives its codec, and the leader has a handler for each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gql_media.cluster.commands import (
    COMMANDS,
    AddRoot,
    CancelJob,
    Command,
    MergeHls,
    RegenerateThumbnail,
    RemoveRoot,
    RootAnswer,
    SetWatcher,
    SubmitSync,
    decode,
    encode,
)
from gql_media.cluster.term import HANDLERS
from gql_media.core.models import (
    MergeOutcome,
    Root,
    SyncMode,
    SyncRequest,
    SyncTarget,
    SyncTrigger,
    WatcherStatus,
    WatchMode,
)

STATUS = WatcherStatus(
    enabled=True,
    mode=WatchMode.POLLING,
    roots=("/library",),
    settle_ms=500,
    pending_paths=3,
    error=None,
    last_event_at=datetime(2026, 12, 1, 14, 3, 32, 123456, tzinfo=UTC),
    last_sync_at=None,
    leader="A",
)

# Each command with an answer it may get.
CASES: list[tuple[Command[Any], object]] = [
    (
        SubmitSync(
            SyncRequest(
                SyncMode.INCREMENTAL,
                SyncTrigger.MANUAL,
                (SyncTarget("/library/a b", True), SyncTarget("/library/é", False)),
            )
        ),
        41,
    ),
    (SubmitSync(SyncRequest(SyncMode.FULL, SyncTrigger.STARTUP)), 1),
    (CancelJob(7), 7),
    (CancelJob(8), None),
    (SetWatcher(True, SyncTrigger.STARTUP), STATUS),
    (SetWatcher(False), STATUS),
    (RegenerateThumbnail(12), "12-100-5.jpg"),
    (RegenerateThumbnail(13), None),
    (MergeHls("/library/Downloads/Talk", True), MergeOutcome("/p/index.m3u8", "/p.mp4", True, True)),
    (MergeHls("/library/x", None), MergeOutcome("/x/index.m3u8", None, False, False, "no segments")),
    (AddRoot("/media/é shows"), RootAnswer(Root(3, "/media/é shows", 90))),
    (AddRoot("/library/in"), RootAnswer(refused_code="ROOT_OVERLAP", refused_message="/library/in is inside /library")),
    (RemoveRoot("/media/shows"), RootAnswer(Root(3, "/media/shows", 90))),
    (RemoveRoot("/library"), RootAnswer(refused_code="ROOT_FROM_CONFIG", refused_message="given on the command line")),
]


@pytest.mark.parametrize(("command", "answer"), CASES)
def test_a_command_and_its_answer_survive_the_wire(command: Command[Any], answer: object) -> None:
    kind, payload = encode(command)
    # Through JSON text, as the job_requests table keeps them.
    assert decode(kind, json.loads(json.dumps(payload))) == command
    assert command.decode_result(json.loads(json.dumps(command.encode_result(answer)))) == answer


def test_the_wire_format_of_earlier_replicas_is_read() -> None:
    """Kinds and payloads are what replicas of two versions exchange: these are the first version's."""
    assert decode("sync", {"mode": "FULL", "trigger": "MANUAL", "targets": [["/l/a", False]]}) == SubmitSync(
        SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL, (SyncTarget("/l/a", False),))
    )
    assert decode("cancel", {"job_id": 3}) == CancelJob(3)
    assert decode("watcher", {"enabled": False}) == SetWatcher(False, SyncTrigger.WATCHER)
    assert decode("thumbnail", {"video_id": 5}) == RegenerateThumbnail(5)
    assert decode("merge", {"path": "/l/d", "delete_source": None}) == MergeHls("/l/d", None)
    assert SubmitSync(SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL)).decode_result({"job_id": 9}) == 9


def test_every_command_has_one_kind_and_a_handler() -> None:
    assert sorted(COMMANDS) == ["add_root", "cancel", "merge", "remove_root", "sync", "thumbnail", "watcher"]
    assert set(HANDLERS) == set(COMMANDS.values())


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown command kind 'reboot'"):
        decode("reboot", {})


def test_a_root_answer_with_an_unknown_refusal_code_is_refused() -> None:
    """Every code a root command is refused with is one of ``core.roots``' (the API lists them from there)."""
    answer = {"refused": {"code": "ROOT_ON_FIRE", "message": "?"}}
    with pytest.raises(ValueError, match="unknown root refusal code 'ROOT_ON_FIRE'"):
        AddRoot("/library/x").decode_result(answer)
