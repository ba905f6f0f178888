"""Partners that sign their calls to us: the signature, timestamp window and nonce checked on arrival.

A partner's ``inbound.signing:`` is the same declarative block as an outbound ``auth.signing:``
(parts, order, separator, digest, algorithm, encoding, where the values travel), plus ``window``.
A call is refused (``401 signature-invalid``, journalled as a refusal like any other) when a value
is missing, the app key is not the partner's, the timestamp is further than ``window`` from our
clock, the nonce was seen within the window, or the signature differs. The nonces seen are kept
per partner in this process for the window (a second instance keeps its own: documented).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NoReturn

from aiohttp import web

from adapters.auth.signing import signature, string_to_sign
from federation.api.compare import as_bytes, same_token
from federation.api.problems import ProblemError
from federation.config.auth import InboundSigning
from federation.config.model import Partner
from federation.config.secrets import SecretError

MAX_NONCES = 100_000  # per partner: at 300 s, more than 300 signed calls a second


class NonceMemory:
    """Nonces seen per partner, each forgotten once it is older than the window."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, OrderedDict[str, float]] = {}
        self._clock = clock

    def first_use(self, partner: str, nonce: str, window: float) -> bool:
        """True the first time ``nonce`` is seen from ``partner`` within ``window`` seconds."""
        now = self._clock()
        seen = self._seen.setdefault(partner, OrderedDict())
        while seen and (next(iter(seen.values())) < now - window or len(seen) >= MAX_NONCES):
            seen.popitem(last=False)
        if nonce in seen:
            return False
        seen[nonce] = now
        return True


NONCES = web.AppKey("signed_nonces", NonceMemory)


async def verify(request: web.Request, partner: Partner, body: bytes) -> None:
    """Refuse the call unless it carries ``partner``'s valid signature (no-op if it signs none).
    Our copy of the secret is read at every call (a rotated file applies to the next), a file in
    a thread of its folder's pool: a slow file system holds this call, not the event loop, and a
    hung one answers 503 after the read timeout (at once while a read there is stuck)."""
    spec = partner.inbound.signing if partner.inbound is not None else None
    if spec is None:
        return
    names = spec.signing.names
    source = request.query if spec.signing.place == "query" else request.headers
    values = {n: source.get(n, "") for n in (names.app_key, names.timestamp, names.nonce)}
    given = source.get(names.signature, "")
    missing = [n for n, v in [*values.items(), (names.signature, given)] if not v]
    if missing:
        _refuse(f"the call is not signed: {', '.join(missing)} missing")
    if values[names.app_key] != spec.signing.app_key:
        _refuse(f"{names.app_key} is not {partner.id}'s app key")
    _check_time(spec, values[names.timestamp])
    try:
        secret = await spec.signing.secret.load()
    except SecretError:
        # Ours to fix, not the caller's: named in our logs by `tongban check`, never here.
        raise ProblemError(
            503, "signature-unverifiable", "the partner's signing secret is not available here"
        ) from None
    text = string_to_sign(
        spec.signing,
        method=request.method,
        url=request.path_qs,
        headers=request.headers,
        body=body,
        timestamp=values[names.timestamp],
        nonce=values[names.nonce],
    )
    # A byte not UTF-8 in a nonce or signed header is signed as itself; a text that cannot be
    # so encoded (no header gives one) matches nothing: 401 either way, never a 500.
    if as_bytes(text) is None or not same_token(signature(spec.signing, secret, text), given):
        _refuse("the signature does not match the request")
    if not request.app[NONCES].first_use(partner.id, values[names.nonce], spec.window):
        _refuse("that nonce was already used: a replayed call")


def _check_time(spec: InboundSigning, stamp: str) -> None:
    try:
        at = int(stamp) / (1000 if spec.signing.timestamp_unit == "ms" else 1)
    except ValueError:
        _refuse(f"the timestamp {stamp[:20]!r} is not a number")
    skew = abs(time.time() - at)
    if skew > spec.window:
        _refuse(f"the timestamp is {skew:.0f} s from our clock (the window is {spec.window:.0f} s)")


def _refuse(why: str) -> NoReturn:
    raise ProblemError(401, "signature-invalid", why)
