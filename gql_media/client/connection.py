"""A connection to a running gql_media server: GraphQL over HTTP (httpx) and subscriptions over a
websocket with the graphql-transport-ws protocol (websockets). Nothing here reads the database.

Every way of not getting an answer (no server, a refusal, a lost connection) is a ``ClientError``
whose message says why, for the user to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "GQL_MEDIA_SERVER"
TOKEN_ENV = "GQL_MEDIA_API_TOKEN"
_PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
_CLOSE_UNAUTHORIZED = 4403
_HANDSHAKE_TIMEOUT_S = 15.0
_REQUEST_TIMEOUT_S = 60.0


class ClientError(Exception):
    """The server could not be reached, refused, or went away; the message says which and why."""


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is and how to authenticate to it."""

    base_url: str
    token: str | None = None

    @classmethod
    def from_options(cls, server: str | None, token: str | None) -> ServerAddress:
        """``--server``, else ``GQL_MEDIA_SERVER``, else http://127.0.0.1:8000; ``--token``, else
        ``GQL_MEDIA_API_TOKEN``. A URL ending in /graphql is taken as the server's."""
        url = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).strip().rstrip("/")
        if "://" not in url:
            url = "http://" + url
        url = url.removesuffix("/graphql")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"--server {server or url!r}: not an http(s) URL (e.g. {DEFAULT_SERVER})")
        return cls(url, token if token is not None else (os.environ.get(TOKEN_ENV) or None))

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    @property
    def websocket_url(self) -> str:
        return "ws" + self.graphql_url.removeprefix("http")

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    cause = error.__cause__ or error.__context__
    while not text and cause is not None:
        text, cause = str(cause).strip(), cause.__cause__ or cause.__context__
    return text or type(error).__name__


def _graphql_errors(body: Mapping[str, Any]) -> str | None:
    errors = body.get("errors")
    if not errors:
        return None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = str(first.get("message", errors))
    code = (first.get("extensions") or {}).get("code")
    return f"{message} ({code})" if code else message


def _refusal(status: int, text: str) -> str:
    if status == 400 and not text:
        return (
            "the server refused the request (HTTP 400, no body): it does not answer to this host name; use one "
            "it knows (127.0.0.1, localhost) or add this one to its GQL_MEDIA_ALLOWED_HOSTS"
        )
    return f"HTTP {status}: {text[:300] or 'no body'}"


class GraphQLClient:
    """Queries and mutations over HTTP, subscriptions over a graphql-transport-ws websocket.

    Use as ``async with GraphQLClient(address) as client``.
    """

    def __init__(self, address: ServerAddress) -> None:
        self.address = address
        self._http = httpx.AsyncClient(timeout=_REQUEST_TIMEOUT_S, headers=address.headers())
        self._ids = itertools.count(1)

    async def __aenter__(self) -> GraphQLClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query or mutation; a ``ClientError`` when it cannot be had."""
        url = self.address.graphql_url
        try:
            response = await self._http.post(url, json={"query": query, "variables": dict(variables or {})})
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach the server at {self.address.base_url}: {_reason(error)}") from error
        try:
            body = response.json()
        except ValueError:
            raise ClientError(f"the server at {url} answered {_refusal(response.status_code, response.text)}") from None
        if not isinstance(body, dict):
            raise ClientError(f"the server at {url} answered HTTP {response.status_code} with no GraphQL result")
        problem = _graphql_errors(body)
        if problem is not None:
            raise ClientError(f"the server refused: {problem}")
        if response.status_code != 200 or not isinstance(body.get("data"), dict):
            raise ClientError(f"the server at {url} answered {_refusal(response.status_code, response.text)}")
        data: dict[str, Any] = body["data"]
        return data

    @contextlib.asynccontextmanager
    async def subscription(
        self, query: str, variables: Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Subscribe (connected and sent on entering); iterate for the ``data`` of each event until the
        server completes the operation. Leaving the block ends the subscription and the websocket."""
        async with self._websocket() as ws:
            operation_id = str(next(self._ids))
            payload = {"query": query, "variables": dict(variables or {})}
            await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
            events = _Events(ws, operation_id)
            try:
                yield events
            finally:
                if not events.completed:  # we leave first: tell the server, so it stops the operation at once
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(json.dumps({"id": operation_id, "type": "complete"}))

    @contextlib.asynccontextmanager
    async def _websocket(self) -> AsyncIterator[ClientConnection]:
        url = self.address.websocket_url
        try:
            ws = await websockets.connect(url, subprotocols=[_PROTOCOL], open_timeout=_HANDSHAKE_TIMEOUT_S)
        except websockets.InvalidStatus as error:
            response = error.response
            text = response.body.decode(errors="replace") if response.body else ""
            raise ClientError(f"the server at {url} answered {_refusal(response.status_code, text)}") from error
        except (OSError, TimeoutError, websockets.InvalidHandshake) as error:
            raise ClientError(f"cannot reach the server at {url}: {_reason(error)}") from error
        try:
            init = {} if self.address.token is None else {"Authorization": f"Bearer {self.address.token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            try:
                async with asyncio.timeout(_HANDSHAKE_TIMEOUT_S):
                    acknowledged = await _receive(ws)
            except TimeoutError:
                raise ClientError(f"the server at {url} did not acknowledge the websocket") from None
            if acknowledged.get("type") != "connection_ack":
                raise ClientError(f"the server did not accept the websocket: {acknowledged}")
            yield ws
        finally:
            await ws.close()


class _Events:
    """The events of one graphql-transport-ws operation, as an async iterator of their ``data``."""

    def __init__(self, ws: ClientConnection, operation_id: str) -> None:
        self._ws = ws
        self._id = operation_id
        self.completed = False

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self.completed:
            message = await _receive(self._ws)
            kind = message.get("type")
            if kind == "ping":
                await self._ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") != self._id:
                continue
            elif kind == "next":
                result = message.get("payload") or {}
                problem = _graphql_errors(result)
                if problem is not None:
                    raise ClientError(f"the server refused: {problem}")
                return dict(result.get("data") or {})
            elif kind == "error":
                problem = _graphql_errors({"errors": message.get("payload")}) or "an error"
                raise ClientError(f"the server refused: {problem}")
            elif kind == "complete":
                self.completed = True
        raise StopAsyncIteration


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    try:
        raw = await ws.recv()
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
        if code == _CLOSE_UNAUTHORIZED:
            raise ClientError("the server refused: unauthorized (a missing or wrong API token)") from None
        detail = "" if closed.rcvd is None else f" (close code {closed.rcvd.code}{' ' if closed.rcvd.reason else ''}"
        detail += "" if closed.rcvd is None else f"{closed.rcvd.reason})"
        raise ClientError(f"lost the connection to the server{detail}") from None
    try:
        message = json.loads(raw)
    except ValueError:
        raise ClientError(f"the server sent something that is not graphql-transport-ws: {raw!r:.200}") from None
    if not isinstance(message, dict):
        raise ClientError(f"the server sent something that is not graphql-transport-ws: {raw!r:.200}")
    return message
