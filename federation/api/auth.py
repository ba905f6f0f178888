"""Who may call: Bearer keys (stored as SHA-256 digests) and partners' client certificates."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from federation.api.edge import refuse
from federation.api.problems import ProblemError
from federation.config import LOCAL, Inbound, Partner
from federation.domain.errors import RequestRefused
from federation.runtime.broker import Broker


def key_matches(token: str, digests: frozenset[str] | set[str]) -> bool:
    """Is ``token`` one of the keys whose SHA-256 digests these are? (Constant time for each, and
    every one compared: no timing hint about which one almost matched.)"""
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    return any([hmac.compare_digest(digest, k) for k in digests])


def bearer_check(request: web.Request, allowed: frozenset[str] | set[str], who: str) -> None:
    """Refuse (401/403) unless the request's ``Authorization: Bearer`` key is one of ``allowed``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthenticated", f"send 'Authorization: Bearer <key>' ({who})")
    if not key_matches(token, allowed):
        raise ProblemError(403, "forbidden", f"that key is not {who}'s")


def allowed_keys(
    broker: Broker, *, sources: tuple[str, ...] = (), operator: bool = True
) -> tuple[frozenset[str], str]:
    """The keys that may do something: those of the named sources and, if ``operator``, the
    operators'; with a description for messages. Empty when none of them declares keys: the
    API is then open to whoever reaches it, as before keys existed."""
    config = broker.catalogue.config
    keys: set[str] = set()
    who: list[str] = []
    for sid in sources:
        src = config.sources.get(sid)
        if src is not None and src.keys_sha256:
            keys |= src.keys_sha256
            who.append(f"source {sid}")
    if operator and config.broker.operator_keys_sha256:
        keys |= config.broker.operator_keys_sha256
        who.append("an operator")
    return frozenset(keys), " or ".join(who)


async def authorize(
    request: web.Request, broker: Broker, *, sources: tuple[str, ...] = (), operator: bool = True
) -> None:
    """:func:`bearer_check` against :func:`allowed_keys`; a refusal is journalled."""
    keys, who = allowed_keys(broker, sources=sources, operator=operator)
    if not keys:
        return
    try:
        bearer_check(request, keys, who)
    except RequestRefused as exc:
        await refuse(request, broker, exc, None, b"", 0)
        raise


def filing_partner(request: web.Request, broker: Broker, pid: str) -> Partner:
    """The partner ``pid`` if it files applications here and the request carries one of its keys."""
    partner: Partner | None = broker.catalogue.partner(pid)
    if partner is None or partner.inbound is None or pid == LOCAL:
        raise ProblemError(404, "unknown-partner", f"no partner {pid!r} files applications here")
    authenticate_partner(request, partner.inbound, pid)
    return partner


def authenticate_partner(request: web.Request, inbound: Inbound, pid: str) -> None:
    """A partner proves who it is by a client certificate (mutual TLS) or a Bearer key."""
    peer = _peer_certificate(request)
    if peer is not None:
        fingerprint = hashlib.sha256(peer).hexdigest()
        if any([hmac.compare_digest(fingerprint, c) for c in inbound.client_certs_sha256]):
            return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if peer is not None:
            raise ProblemError(403, "forbidden", f"that client certificate is not one of {pid!r}'s")
        raise ProblemError(
            401,
            "unauthenticated",
            f"send 'Authorization: Bearer <key>' with {pid!r}'s key, or its client certificate",
        )
    if not key_matches(token, inbound.keys_sha256):
        raise ProblemError(403, "forbidden", f"that key is not one of {pid!r}'s")


def _peer_certificate(request: web.Request) -> bytes | None:
    """The DER bytes of the TLS client certificate, if the connection has one (verified by the CA)."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
