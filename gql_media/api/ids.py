"""Opaque Relay global ids ("Folder:12" in base64) and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
from json.encoder import encode_basestring_ascii
from typing import Any

import strawberry

from gql_media.api.errors import ApiError

FOLDER = "Folder"
VIDEO = "Video"
SYNC_JOB = "SyncJob"
MAX_ROW_ID = 2**63 - 1


def to_global_id(kind: str, row_id: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{kind}:{row_id}".encode()).decode("ascii"))


def from_global_id(value: str, *kinds: str) -> tuple[str, int]:
    """The ``(kind, id)`` of a global id; ``kinds`` limits the kinds accepted."""
    try:
        kind, _, number = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8").partition(":")
        row_id = int(number)
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(f"not a valid id: {value!r}", "BAD_ID") from None
    if not 0 <= row_id <= MAX_ROW_ID:  # the database's BIGINT would overflow (an internal error)
        raise ApiError(f"not a valid id: {value!r}", "BAD_ID")
    if kinds and kind not in kinds:
        raise ApiError(f"id {value!r} is a {kind}, expected {' or '.join(kinds)}", "BAD_ID")
    return kind, row_id


def _json_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return str(encode_basestring_ascii(value))
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


def encode_cursor(kind: str, key: list[Any]) -> str:
    """base64url of the compact JSON ``[kind, *key]`` (written by hand: a page encodes hundreds)."""
    text = "[" + ",".join([encode_basestring_ascii(kind), *map(_json_value, key)]) + "]"
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def decode_cursor(value: str, kind: str, size: int) -> list[Any]:
    """The key a cursor of ``kind`` carries (``size`` values); a clear error for anything else."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(f"invalid cursor {value!r}", "BAD_CURSOR") from None
    if not isinstance(decoded, list) or len(decoded) != size + 1 or decoded[0] != kind:
        raise ApiError(f"cursor {value!r} does not belong to this list (or its order)", "BAD_CURSOR")
    return decoded[1:]
