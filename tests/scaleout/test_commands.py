"""The commands replicas send each other: each one survives its codec, and the leader has a handler for each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gql_media.cluster.commands import (
    COMMANDS,
    MergeHls,
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

# Each command as it travels (its kind and JSON payload: what replicas of two versions exchange
# during a rolling upgrade, so a key or a kind changed here breaks them), with an answer it may get.
CASES: list[tuple[str, dict[str, Any], object]] = [
    (
        "sync",
        {"mode": "INCREMENTAL", "trigger": "MANUAL", "targets": [["/library/a b", True], ["/library/é", False]]},
        41,
    ),
    ("sync", {"mode": "FULL", "trigger": "STARTUP", "targets": []}, 1),
    ("cancel", {"job_id": 7}, 7),
    ("cancel", {"job_id": 8}, None),
    ("watcher", {"enabled": True, "trigger": "STARTUP"}, STATUS),
    ("watcher", {"enabled": False, "trigger": "WATCHER"}, STATUS),
    ("thumbnail", {"video_id": 12}, "12-100-5.jpg"),
    ("thumbnail", {"video_id": 13}, None),
    (
        "merge",
        {"path": "/library/Downloads/Talk", "delete_source": True},
        MergeOutcome("/p/index.m3u8", "/p.mp4", True, True),
    ),
    (
        "merge",
        {"path": "/library/x", "delete_source": None},
        MergeOutcome("/x/index.m3u8", None, False, False, "no segments"),
    ),
    ("add_root", {"path": "/media/é shows"}, RootAnswer(Root(3, "/media/é shows", 90))),
    (
        "add_root",
        {"path": "/library/in"},
        RootAnswer(refused_code="ROOT_OVERLAP", refused_message="/library/in is inside /library"),
    ),
    ("remove_root", {"path": "/media/shows"}, RootAnswer(Root(3, "/media/shows", 90))),
    (
        "remove_root",
        {"path": "/library"},
        RootAnswer(refused_code="ROOT_FROM_CONFIG", refused_message="given on the command line"),
    ),
]


@pytest.mark.parametrize(("kind", "payload", "answer"), CASES)
def test_a_command_keeps_its_wire_form_and_its_answer_survives(
    kind: str, payload: dict[str, Any], answer: object
) -> None:
    command = decode(kind, payload)
    # Through JSON text, as the job_requests table keeps them.
    assert encode(command) == (kind, json.loads(json.dumps(payload)))
    assert command.decode_result(json.loads(json.dumps(command.encode_result(answer)))) == answer


def test_what_a_command_reads_is_what_its_handler_gets() -> None:
    assert decode("sync", CASES[0][1]) == SubmitSync(
        SyncRequest(
            SyncMode.INCREMENTAL,
            SyncTrigger.MANUAL,
            (SyncTarget("/library/a b", True), SyncTarget("/library/é", False)),
        )
    )
    assert decode("merge", {"path": "/l/d", "delete_source": None}) == MergeHls("/l/d", None)


def test_the_wire_format_of_earlier_replicas_is_read() -> None:
    """Replicas before the watcher's trigger was sent always started it with the watcher's own."""
    assert decode("watcher", {"enabled": False}) == SetWatcher(False, SyncTrigger.WATCHER)
    assert decode("sync", {"mode": "FULL", "trigger": "MANUAL", "targets": []}).decode_result({"job_id": 9}) == 9


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
        decode("add_root", {"path": "/library/x"}).decode_result(answer)
