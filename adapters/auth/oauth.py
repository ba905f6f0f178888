"""OAuth2 client credentials (RFC 6749 section 4.4): a token per partner, cached until it expires.

The token is asked for once and reused until ``early`` seconds before its ``expires_in`` (or half
way through a lifetime shorter than twice ``early``); a 401
from the partner drops it (:meth:`TokenSource.invalidate`) so the adapter asks again, once. The
token endpoint's failures are classified like deliveries: unreachable, timeouts, 408/425/429/5xx
are transient (the exchange waits and retries); a refusal of the client's credentials
(400 ``invalid_client``, 401, 403) is permanent. A redirect is not followed (it would take the
client's credentials to another host): it is transient too, and says where it pointed. The client
secret and the tokens never reach a transcript or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from adapters.httpio import is_redirect, redirect_note, retry_after_seconds
from federation.config.auth import OAuth2
from federation.config.secrets import read_texts
from federation.domain.errors import PermanentError, Transcript, TransientError

TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})
# RFC 6749 5.2's error codes: a token endpoint's ``error`` is shown only when it is one of them.
# Anything else in that field is the endpoint's own text, which could quote what it was sent
# (the client secret) and would reach the exchange's last error, outside the scrubber's reach.
ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
TOKEN_REPLY_LIMIT = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class _Token:
    value: str = field(repr=False)
    renew_at: float  # on the source's clock: ``early`` before it expires, or half way


class TokenSource:
    """Access tokens for one partner; ``clock`` is monotonic seconds (a fake in tests)."""

    def __init__(
        self, spec: OAuth2, partner: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.spec = spec
        self.partner = partner
        self.clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many tokens were asked for (for tests and stats)

    async def token(self, session: aiohttp.ClientSession) -> str:
        """A token valid now: the cached one, or a new one from the token endpoint."""
        async with self._lock:
            t = self._token
            if t is None or self.clock() >= t.renew_at:
                t = self._token = await self._fetch(session)
            return t.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` (the partner refused it), unless a newer token replaced it already."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch(self, session: aiohttp.ClientSession) -> _Token:
        spec = self.spec
        form = {"grant_type": "client_credentials"}
        if spec.scope:
            form["scope"] = spec.scope
        secret = (await read_texts((spec.client_secret,)))[0]  # a file: in a thread
        shown = Transcript(request={"method": "POST", "url": spec.token_url, **form})
        common: dict[str, Any] = {
            "partner": self.partner,
            "operation": "oauth2-token",
            "transcript": shown,
        }
        try:
            async with session.post(
                spec.token_url,
                data=form,
                headers={
                    "Accept": "application/json",
                    "Authorization": _basic(spec.client_id, secret),
                },
                allow_redirects=False,
            ) as resp:
                body = await resp.content.read(TOKEN_REPLY_LIMIT)
                status = resp.status
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                location = resp.headers.get("Location")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientError(
                f"token endpoint of {self.partner} unreachable: {type(exc).__name__}", **common
            ) from None
        if is_redirect(status):
            where = redirect_note(status, location, spec.token_url)
            raise TransientError(
                f"token endpoint of {self.partner} answered {where}, which is not followed "
                "(if it moved, correct token_url in partners.yaml); nothing was sent to the partner",
                status=status,
                retry_after=retry_after,
                **common,
            )
        return self._read(status, body, retry_after, common)

    def _read(
        self, status: int, body: bytes, retry_after: float | None, common: dict[str, Any]
    ) -> _Token:
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = {}
        data = data if isinstance(data, dict) else {}
        if status != 200:
            code = data.get("error")
            known = isinstance(code, str) and code in ERRORS
            shown = code if known else "an error code outside RFC 6749" if code else None
            what = f"token endpoint of {self.partner} answered HTTP {status}" + (
                f" ({shown})" if shown else ""
            )
            if status in TRANSIENT:
                raise TransientError(what, status=status, retry_after=retry_after, **common)
            raise PermanentError(
                f"{what}: the client credentials were refused", status=status, **common
            )
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise TransientError(
                f"token endpoint of {self.partner} answered without an access_token",
                status=status,
                **common,
            )
        lifetime = token_lifetime(data.get("expires_in", 3600))
        if lifetime is None:
            raise TransientError(
                f"token endpoint of {self.partner} answered with an expires_in that is not a "
                "positive number of seconds",
                status=status,
                **common,
            )
        self.fetched += 1
        early = min(self.spec.early, lifetime / 2)  # a short-lived token still serves a while
        return _Token(value=value, renew_at=self.clock() + lifetime - early)


def token_lifetime(expires_in: object) -> float | None:
    """Seconds a token lives, from a token reply's ``expires_in``; None if it says none.

    RFC 6749 writes it as a JSON number; some token servers send it as a string of digits, which
    is read the same. A boolean, a fraction in a string, zero or a negative number is no lifetime.
    """
    if isinstance(expires_in, bool):
        seconds: float = -1
    elif isinstance(expires_in, int | float):
        seconds = float(expires_in)
    elif isinstance(expires_in, str) and 0 < len(expires_in) <= 9 and expires_in.isascii():
        seconds = float(expires_in) if expires_in.isdigit() else -1
    else:
        return None
    return seconds if 0 < seconds < float("inf") else None


def _basic(client_id: str, secret: str) -> str:
    """HTTP Basic credentials of the client (RFC 6749 section 2.3.1)."""
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
