"""A government open-platform gateway: signed requests, OAuth2 tokens and client certificates.

It verifies what the broker's adapters send with code of its own (the standard library's ``hmac``
and ``hashlib``, never :mod:`adapters.auth`), as a partner's gateway would, following the profile
its interface document would publish:

* ``/signed/…``: headers ``X-Ca-Key``, ``X-Ca-Timestamp`` (ms), ``X-Ca-Nonce``, ``X-Ca-Signature``
  (base64 or hex); the signature is the HMAC (SHA-256 or SM3, per app key) of
  ``METHOD \\n path \\n sorted query \\n hex digest of the body \\n timestamp \\n nonce``; a timestamp
  outside the window or a nonce seen before is refused (401 with a code).
* ``/oauth/token``: client credentials (HTTP Basic) → a short-lived bearer token;
  ``/api/…`` needs a valid token (401 ``invalid_token`` otherwise). A token request whose body is
  not a readable UTF-8 ``application/x-www-form-urlencoded`` form, gives a parameter twice or no
  ``grant_type`` is 400 ``invalid_request`` (RFC 6749 §5.2), as a real authorization server says.
* ``/open/…``: no credentials; with a TLS context requiring client certificates, the peer's
  certificate is the credential, and its subject is recorded.

Every request is recorded in :attr:`Gateway.log` with the verdict, so tests read what arrived;
a body that cannot be read (a ``Content-Encoding`` it does not decompress as) is recorded empty,
with the verdict ``invalid_request``, and answered 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientSession, web

from federation.api.compare import same_token
from federation.api.net import start_site
from federation.sim.bodies import Unreadable, body_of, closing, form_of


@dataclass(frozen=True, kw_only=True)
class AppKey:
    """A client registered with the gateway for signed requests."""

    secret: bytes = field(repr=False)
    hash: str = "sha256"  # or sm3


@dataclass(frozen=True, kw_only=True)
class Arrival:
    """One request as the gateway saw it."""

    path: str
    verdict: str  # "ok" or the refusal code
    headers: Mapping[str, str]
    body: bytes
    peer: str | None = None  # the client certificate's subject, over mutual TLS


class Gateway:
    """A loopback gateway; ``clock`` is wall-clock seconds (the timestamp window is judged on it)."""

    def __init__(
        self,
        *,
        app_keys: Mapping[str, AppKey] | None = None,
        oauth_clients: Mapping[str, bytes] | None = None,
        token_ttl: int = 60,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
        reply: Mapping[str, Any] | None = None,
        guard: str | None = None,
        upstream: str | None = None,
    ) -> None:
        self.app_keys = dict(app_keys or {})
        self.oauth_clients = dict(oauth_clients or {})
        self.token_ttl = token_ttl
        self.ttl_as_text = False  # write expires_in as a string of digits, as some servers do
        self.window = window
        self.clock = clock
        self.reply = dict(reply or {"status": "RECEIVED"})
        # In front of a partner simulator (the demo): every path is guarded by ``guard``
        # (signed, bearer or open) and what passes is forwarded to ``upstream``.
        self.guard = guard
        self.upstream = upstream
        self.label = ""  # whose gateway it is, for output
        self.log: list[Arrival] = []
        self.tokens: dict[str, float] = {}  # token → expiry on the clock
        self.tokens_issued = 0
        self.token_status: int | None = None  # answer the token endpoint with this (outages)
        self._nonces: set[tuple[str, str]] = set()
        self._runner: web.AppRunner | None = None
        self._count = 0
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/oauth/token", self._token)
        guards = {"signed": self._signed, "bearer": self._bearer, "open": self._open}
        if self.guard is not None:
            app.router.add_route("*", "/{tail:.*}", guards[self.guard])
            return app
        app.router.add_route("*", "/signed/{tail:.*}", self._signed)
        app.router.add_route("*", "/api/{tail:.*}", self._bearer)
        app.router.add_route("*", "/open/{tail:.*}", self._open)
        return app

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        """Listen on a free loopback port (over TLS with ``ssl_context``); the base URL."""
        self._runner, self.url = await start_site(
            self.app(), "127.0.0.1", 0, ssl_context=ssl_context, access_log=None
        )
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (the partner's clock, not ours, decides)."""
        self.tokens.clear()

    def verdicts(self) -> list[str]:
        return [a.verdict for a in self.log]

    # -- handlers -------------------------------------------------------------------------------

    async def _signed(self, request: web.Request) -> web.Response:
        try:
            body = await body_of(request)
        except Unreadable as exc:
            return await self._unreadable(request, exc)
        verdict = self._verify(request, body)
        return await self._answer(request, body, verdict)

    async def _bearer(self, request: web.Request) -> web.Response:
        try:
            body = await body_of(request)
        except Unreadable as exc:
            return await self._unreadable(request, exc)
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        expiry = self.tokens.get(token)
        verdict = "ok" if expiry is not None and self.clock() < expiry else "invalid_token"
        return await self._answer(request, body, verdict)

    async def _open(self, request: web.Request) -> web.Response:
        try:
            body = await body_of(request)
        except Unreadable as exc:
            return await self._unreadable(request, exc)
        peer = _peer_subject(request)
        return await self._answer(request, body, "ok", peer=peer)

    async def _token(self, request: web.Request) -> web.Response:
        try:
            form = await form_of(request)
        except Unreadable as exc:
            return closing(_invalid_request(str(exc)))
        if self.token_status is not None:
            return web.json_response({"error": "temporarily_unavailable"}, status=self.token_status)
        client, secret = _basic(request.headers.get("Authorization", ""))
        known = self.oauth_clients.get(client)
        if known is None or not hmac.compare_digest(known, secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        if "grant_type" not in form:
            return _invalid_request("the grant_type parameter is missing")
        if form["grant_type"] != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.token_ttl
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": str(self.token_ttl) if self.ttl_as_text else self.token_ttl,
            }
        )

    async def _unreadable(self, request: web.Request, exc: Unreadable) -> web.Response:
        """A body the gateway cannot read: recorded (empty) and refused, 400 invalid_request."""
        peer = _peer_subject(request)
        arrival = Arrival(
            path=request.path,
            verdict="invalid_request",
            headers=dict(request.headers),
            body=b"",
            peer=peer,
        )
        self.log.append(arrival)
        refusal = {"code": "invalid_request", "message": str(exc)}
        return closing(web.json_response(refusal, status=400))

    # -- verification ---------------------------------------------------------------------------

    def _verify(self, request: web.Request, body: bytes) -> str:
        h = request.headers
        key, stamp, nonce, given = (
            h.get(n) for n in ("X-Ca-Key", "X-Ca-Timestamp", "X-Ca-Nonce", "X-Ca-Signature")
        )
        if not (key and stamp and nonce and given):
            return "missing_signature"
        client = self.app_keys.get(key)
        if client is None:
            return "unknown_app_key"
        if not stamp.isdigit() or abs(self.clock() - int(stamp) / 1000) > self.window:
            return "timestamp_out_of_window"
        query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(request.query_string)))
        body_hash = hashlib.new(client.hash, body).hexdigest()
        text = "\n".join((request.method, request.rel_url.raw_path, query, body_hash, stamp, nonce))
        data = text.encode("utf-8", "surrogateescape")  # a header's byte not UTF-8 as itself
        expected = hmac.new(client.secret, data, client.hash).digest()
        if not (  # compared as bytes: a signature outside ASCII is a mismatch, not a 500
            same_token(given, expected.hex())
            or same_token(given, base64.b64encode(expected).decode())
        ):
            return "signature_mismatch"
        if (key, nonce) in self._nonces:
            return "nonce_replayed"
        self._nonces.add((key, nonce))
        return "ok"

    async def _answer(
        self, request: web.Request, body: bytes, verdict: str, *, peer: str | None = None
    ) -> web.Response:
        self.log.append(
            Arrival(
                path=request.path,
                verdict=verdict,
                headers=dict(request.headers),
                body=body,
                peer=peer,
            )
        )
        if verdict != "ok":
            return web.json_response({"code": verdict, "message": "refused"}, status=401)
        self._count += 1
        if self.upstream is not None:
            return await self._forward(request, body)
        return web.json_response({**self.reply, "ref_no": f"GW-{self._count:06d}"})

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        """What the partner behind the gateway answers to the request, credentials stripped."""
        drop = {"host", "authorization", "content-length", "transfer-encoding", "connection"}
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in drop and not k.lower().startswith("x-ca-")
        }
        url = f"{self.upstream}{request.rel_url}"
        async with (
            ClientSession() as session,
            session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            ) as resp,
        ):
            answer = await resp.read()
            kept = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "retry-after", "location")
            }
            return web.Response(status=resp.status, body=answer, headers=kept)


def _invalid_request(why: str) -> web.Response:
    """RFC 6749 §5.2's answer to a token request that is malformed."""
    return web.json_response({"error": "invalid_request", "error_description": why}, status=400)


def _basic(header: str) -> tuple[str, bytes]:
    """The client id and secret of an HTTP Basic header (empty when it is none)."""
    if not header.startswith("Basic "):
        return "", b""
    try:
        raw = base64.b64decode(header[6:], validate=True)
    except (binascii.Error, ValueError):
        return "", b""
    client, _, secret = raw.partition(b":")
    return client.decode("utf-8", "replace"), secret


def _peer_subject(request: web.Request) -> str | None:
    """The commonName of the client certificate the TLS connection presented, if any."""
    transport = request.transport
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    cert = sslobj.getpeercert() if sslobj is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return ""
