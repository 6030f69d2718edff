"""Bearer tokens, HMAC-signed expiring media URLs, and who may change things (origins, exposure)."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Collection, Mapping

from strawberry.http.websocket_origin import is_same_origin, normalize_origin

from gql_media.api.hosts import listens_beyond_loopback

_BEARER = "bearer "


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; no token configured means everything matches."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if authorization and authorization[: len(_BEARER)].lower() == _BEARER:
        return authorization[len(_BEARER) :].strip()
    return None


def connection_token(params: Mapping[str, object] | None) -> str | None:
    """The token of a websocket ``connection_init`` payload: ``Authorization`` or ``token``."""
    if not params:
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return bearer_token(value)
    token = params.get("token")
    return token if isinstance(token, str) else None


def _signature(secret: str, resource: str, expires_at: int) -> str:
    message = f"{resource}:{expires_at}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, resource: str, ttl_s: int, now_s: float | None = None) -> tuple[int, str]:
    """An expiry (epoch seconds) and its signature for ``resource`` (e.g. "media/12").

    The expiry is rounded up to a quarter of the TTL so the same URL comes back for a while
    (browsers keep it cached) and it is still valid for at least ``ttl_s``.
    """
    now = time.time() if now_s is None else now_s
    step = max(1, ttl_s // 4)
    expires_at = int(math.ceil((now + ttl_s) / step) * step)
    return expires_at, _signature(secret, resource, expires_at)


def signature_valid(secret: str, resource: str, expires_at: str | None, signature: str | None) -> bool:
    if expires_at is None or signature is None:
        return False
    try:
        expiry = int(expires_at)
    except ValueError:
        return False
    if expiry < time.time():
        return False
    return hmac.compare_digest(_signature(secret, resource, expiry), signature)


def request_allowed(token: str | None, resource: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """A request for ``resource`` may be served: no token is set, or it carries the token or a valid signature.

    ``headers`` and ``query`` are the request's (``authorization``; ``exp`` and ``sig``).
    """
    if token is None or token_matches(token, bearer_token(headers.get("authorization"))):
        return True
    return signature_valid(token, resource, query.get("exp"), query.get("sig"))


def origin_allowed(headers: Mapping[str, str], cors_origins: Collection[str]) -> bool:
    """Whether a browser page may send this request: the websocket handshake's rule, for HTTP too.

    No ``Origin`` (not a browser), the page's own origin (``Origin`` agrees with ``Host``, or the
    browser says ``Sec-Fetch-Site: same-origin``), or an origin of ``cors_origins``.
    """
    origin = headers.get("origin")
    if origin is None:
        return True
    if headers.get("sec-fetch-site") == "same-origin" or is_same_origin(origin, headers.get("host")):
        return True
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in {normalize_origin(o) for o in cors_origins}


def unauthenticated_writes_refused(host: str, api_token: str | None, allow_unauthenticated: bool) -> bool:
    """Off loopback with no token, the server is read-only unless the operator opted in."""
    return api_token is None and not allow_unauthenticated and listens_beyond_loopback(host)
