"""What a follower asks the leader to do: one frozen dataclass per command, and their one codec.

A command travels as a row of ``job_requests`` (``adapters.store.requests``): a ``kind`` and a
JSON payload, answered with a JSON result. Each command class writes and reads itself and its
answer (``payload``/``from_payload``, ``encode_result``/``decode_result``); ``encode`` and
``decode`` are the codec's entry points. What runs a command on the leader is the dispatch table
in ``gql_media.cluster.term``.

To add a command: a class here, listed in ``COMMANDS``; a handler in ``term.HANDLERS``; a facade
method that calls ``Cluster.call``. Kinds and JSON shapes are what replicas of two versions
exchange during a rolling upgrade: change them compatibly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Self, TypeVar

from gql_media.adapters.codecs import decode_watcher, encode_watcher
from gql_media.core.models import MergeOutcome, Root, SyncMode, SyncRequest, SyncTarget, SyncTrigger, WatcherStatus
from gql_media.core.roots import RefusalCode, RootRefused, refusal_code

__all__ = [
    "COMMANDS",
    "AddRoot",
    "CancelJob",
    "Command",
    "MergeHls",
    "RegenerateThumbnail",
    "RemoveRoot",
    "RootAnswer",
    "SetWatcher",
    "SubmitSync",
    "decode",
    "encode",
]

R = TypeVar("R")
# What ``json.loads`` gave; the ``from_payload`` and ``decode_result`` methods check its shape.
Json = Any
JsonObject = dict[str, Json]


class Command(ABC, Generic[R]):
    """A request for the leader, answered with an ``R``."""

    __slots__ = ()
    kind: ClassVar[str]

    @abstractmethod
    def payload(self) -> JsonObject: ...

    @classmethod
    @abstractmethod
    def from_payload(cls, payload: JsonObject) -> Self: ...

    @abstractmethod
    def encode_result(self, result: R) -> Json: ...

    @abstractmethod
    def decode_result(self, data: Json) -> R: ...


def _encode_job_id(job_id: int | None) -> Json:
    return {"job_id": job_id}


def _decode_job_id(data: Json) -> int | None:
    job_id = data["job_id"]
    return None if job_id is None else int(job_id)


@dataclass(frozen=True, slots=True)
class SubmitSync(Command[int]):
    """Queue a sync; answered with the job's id (the job itself is in the shared database)."""

    kind: ClassVar[str] = "sync"
    request: SyncRequest

    def payload(self) -> JsonObject:
        request = self.request
        return {
            "mode": request.mode.value,
            "trigger": request.trigger.value,
            "targets": [[target.path, target.recursive] for target in request.targets],
        }

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        targets = tuple(SyncTarget(str(path), bool(recursive)) for path, recursive in payload["targets"])
        return cls(SyncRequest(SyncMode(payload["mode"]), SyncTrigger(payload["trigger"]), targets))

    def encode_result(self, result: int) -> Json:
        return _encode_job_id(result)

    def decode_result(self, data: Json) -> int:
        job_id = _decode_job_id(data)
        if job_id is None:
            raise ValueError("the leader answered a sync without a job id")
        return job_id


@dataclass(frozen=True, slots=True)
class CancelJob(Command[int | None]):
    """Cancel a job; answered with its id, or None when no such job exists."""

    kind: ClassVar[str] = "cancel"
    job_id: int

    def payload(self) -> JsonObject:
        return {"job_id": self.job_id}

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        return cls(int(payload["job_id"]))

    def encode_result(self, result: int | None) -> Json:
        return _encode_job_id(result)

    def decode_result(self, data: Json) -> int | None:
        return _decode_job_id(data)


@dataclass(frozen=True, slots=True)
class SetWatcher(Command[WatcherStatus]):
    """Start (reconciling the roots with a ``trigger`` sync first) or stop the watcher; answered with its status."""

    kind: ClassVar[str] = "watcher"
    enabled: bool
    trigger: SyncTrigger = SyncTrigger.WATCHER

    def payload(self) -> JsonObject:
        return {"enabled": self.enabled, "trigger": self.trigger.value}

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        # Replicas before the trigger was sent always started with the watcher's own.
        return cls(bool(payload["enabled"]), SyncTrigger(payload.get("trigger", SyncTrigger.WATCHER.value)))

    def encode_result(self, result: WatcherStatus) -> Json:
        return encode_watcher(result)

    def decode_result(self, data: Json) -> WatcherStatus:
        return decode_watcher(data)


@dataclass(frozen=True, slots=True)
class RegenerateThumbnail(Command[str | None]):
    """Make a video's thumbnail again; answered with its new key, or None when the placeholder is shown."""

    kind: ClassVar[str] = "thumbnail"
    video_id: int

    def payload(self) -> JsonObject:
        return {"video_id": self.video_id}

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        return cls(int(payload["video_id"]))

    def encode_result(self, result: str | None) -> Json:
        return result

    def decode_result(self, data: Json) -> str | None:
        return None if data is None else str(data)


@dataclass(frozen=True, slots=True)
class MergeHls(Command[MergeOutcome]):
    """Merge the HLS download at ``path`` into an mp4 beside it (``delete_source`` None: the leader's setting)."""

    kind: ClassVar[str] = "merge"
    path: str
    delete_source: bool | None = None

    def payload(self) -> JsonObject:
        return {"path": self.path, "delete_source": self.delete_source}

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        delete_source = payload["delete_source"]
        return cls(str(payload["path"]), None if delete_source is None else bool(delete_source))

    def encode_result(self, result: MergeOutcome) -> Json:
        return asdict(result)

    def decode_result(self, data: Json) -> MergeOutcome:
        return MergeOutcome(**data)


@dataclass(frozen=True, slots=True)
class RootAnswer:
    """The leader's answer to a root command: the root, or the rule that refused it (its code and words)."""

    root: Root | None = None
    refused_code: RefusalCode | None = None
    refused_message: str = ""

    @classmethod
    def refusal(cls, refused: RootRefused) -> RootAnswer:
        return cls(refused_code=refused.code, refused_message=str(refused))

    def unwrap(self) -> Root:
        """The root, or the refusal raised as it was on the leader."""
        if self.refused_code is not None:
            raise RootRefused(self.refused_code, self.refused_message)
        if self.root is None:
            raise ValueError("the leader answered a root command with neither a root nor a refusal")
        return self.root


def _encode_root_answer(answer: RootAnswer) -> Json:
    if answer.refused_code is not None:
        return {"refused": {"code": answer.refused_code, "message": answer.refused_message}}
    root = answer.root
    return {"root": None if root is None else {"id": root.id, "path": root.path, "folder_id": root.folder_id}}


def _decode_root_answer(data: Json) -> RootAnswer:
    refused = data.get("refused")
    if refused is not None:
        return RootAnswer(refused_code=refusal_code(str(refused["code"])), refused_message=str(refused["message"]))
    root = data["root"]
    if root is None:
        return RootAnswer()
    return RootAnswer(Root(id=int(root["id"]), path=str(root["path"]), folder_id=int(root["folder_id"])))


@dataclass(frozen=True, slots=True)
class _RootCommand(Command[RootAnswer]):
    """A command on one library root, named by its path; both root commands travel alike."""

    path: str

    def payload(self) -> JsonObject:
        return {"path": self.path}

    @classmethod
    def from_payload(cls, payload: JsonObject) -> Self:
        return cls(str(payload["path"]))

    def encode_result(self, result: RootAnswer) -> Json:
        return _encode_root_answer(result)

    def decode_result(self, data: Json) -> RootAnswer:
        return _decode_root_answer(data)


@dataclass(frozen=True, slots=True)
class AddRoot(_RootCommand):
    """Add a library root (checked, stored, indexed and watched on the leader)."""

    kind: ClassVar[str] = "add_root"


@dataclass(frozen=True, slots=True)
class RemoveRoot(_RootCommand):
    """Forget a library root added at run time (its index, thumbnails and caches; never its files)."""

    kind: ClassVar[str] = "remove_root"


COMMANDS: Mapping[str, type[Command[Any]]] = MappingProxyType(
    {
        command.kind: command
        for command in (SubmitSync, CancelJob, SetWatcher, RegenerateThumbnail, MergeHls, AddRoot, RemoveRoot)
    }
)


def encode(command: Command[Any]) -> tuple[str, JsonObject]:
    """A command as its kind and JSON payload."""
    return command.kind, command.payload()


def decode(kind: str, payload: JsonObject) -> Command[Any]:
    """The command a kind and payload stand for; ``ValueError`` for a kind this replica does not know."""
    command = COMMANDS.get(kind)
    if command is None:
        raise ValueError(f"unknown command kind {kind!r}")
    return command.from_payload(payload)
