"""Who may call: principals by their Bearer keys (stored as SHA-256 digests, roles in
``federation/config/principals.py``), loopback where no principal may, and partners' client
certificates."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from aiohttp import web

from federation.api.compare import as_bytes
from federation.api.edge import refuse
from federation.api.problems import ProblemError
from federation.api.trail import audit_refusal
from federation.config import LOCAL, Config, Inbound, Partner
from federation.config.principals import GRANTS, Principal
from federation.domain.errors import RequestRefused
from federation.runtime.broker import Broker


def key_matches(token: str, digests: frozenset[str] | set[str]) -> bool:
    """Is ``token`` one of the keys whose SHA-256 digests these are? (Constant time for each, and
    every one compared: no timing hint about which one almost matched.) A token that cannot be
    encoded (a lone surrogate aiohttp read no byte of) is no key."""
    raw = as_bytes(token.strip())
    if raw is None:
        return False
    digest = hashlib.sha256(raw).hexdigest()
    return any([hmac.compare_digest(digest, k) for k in digests])


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who is calling: a principal by its key, or, where no key guards an action, whoever calls
    from loopback (``loopback``, acting for the machine's own staff)."""

    id: str
    role: str
    remote: str
    scope: str | None = None  # the source or partner a source/partner principal speaks for

    def owns(self, source: str) -> bool:
        """Whether this caller is the source ``source`` (its own exchanges)."""
        return self.role == "source" and self.scope == source


def caller_may(caller: Caller, action: str) -> bool:
    """Whether ``caller``'s role grants ``action``."""
    return action in GRANTS.get(caller.role, frozenset())


def is_loopback(remote: str | None) -> bool:
    """Whether ``remote`` is this machine (127.0.0.0/8, ::1, a Unix socket)."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def unguarded(config: Config) -> list[str]:
    """What of the local API no key guards (empty when every part needs one): ``tongban serve``
    binds to a non-loopback host only when this is empty."""
    out = [f"source {sid} (no key)" for sid in config.sources if not source_guarded(config, sid)]
    actions = sorted({a for grants in GRANTS.values() for a in grants})
    out += [f"{a} (no principal may)" for a in actions if not guarded(config, a)]
    return out


def bearer(request: web.Request) -> str | None:
    """The ``Authorization: Bearer`` key of the request, if it sends one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_of(config: Config, token: str) -> Principal | None:
    """The principal whose key ``token`` is (every digest compared: no timing hint); none for a
    token that cannot be encoded."""
    raw = as_bytes(token)
    if raw is None:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    found = [p for p in config.principals if hmac.compare_digest(digest, p.key_sha256)]
    return found[0] if found else None


def guarded(config: Config, action: str) -> bool:
    """Whether a key is needed for ``action``: some principal is declared who may do it."""
    return any(p.may(action) for p in config.principals)


def source_guarded(config: Config, source: str) -> bool:
    """Whether source ``source`` must present its key to submit."""
    return any(p.role == "source" and p.scope == source for p in config.principals)


def caller_of(request: web.Request, broker: Broker) -> Caller | None:
    """The caller by its key (a 403 refusal if the key is no one's); None if it sends none."""
    token = bearer(request)
    if token is None:
        return None
    principal = principal_of(broker.catalogue.config, token)
    if principal is None:
        raise ProblemError(403, "forbidden", "that key is not one of ours")
    return Caller(
        id=principal.id,
        role=principal.role,
        remote=request.remote or "",
        scope=principal.scope,
    )


def staff_caller(request: web.Request, broker: Broker, action: str) -> Caller:
    """The caller allowed ``action`` (a staff action: search, show, replay, reload, audit …).

    Where a principal is declared who may do it, a key of one who may is needed (401 without a
    key, 403 with another's); where none is, only loopback callers are answered (403 otherwise)."""
    caller = caller_of(request, broker)
    config = broker.catalogue.config
    if caller is None:
        if guarded(config, action):
            raise ProblemError(
                401, "unauthenticated", f"send 'Authorization: Bearer <key>' ({action})"
            )
        if not is_loopback(request.remote):
            raise ProblemError(
                403,
                "forbidden",
                f"no principal may {action} in partners.yaml, so it answers only on loopback",
            )
        return Caller(id="loopback", role="local", remote=request.remote or "")
    if action not in GRANTS.get(caller.role, frozenset()):
        raise ProblemError(
            403, "forbidden", f"principal {caller.id!r} ({caller.role}) may not {action}"
        )
    return caller


async def authorize(request: web.Request, broker: Broker, action: str) -> Caller:
    """:func:`staff_caller`; a refusal is journalled and audited."""
    try:
        return staff_caller(request, broker, action)
    except RequestRefused as exc:
        await refuse(request, broker, exc, None, b"", 0)
        await audit_refusal(request, broker, who_sent(request, broker), action, exc)
        raise


def who_sent(request: web.Request, broker: Broker) -> tuple[str, str]:
    """Who a refused request came from, for the audit trail: the principal whose key it sent,
    ``unknown-key`` for a key that is no one's, ``anonymous`` for none."""
    token = bearer(request)
    if token is None:
        return ("anonymous", "")
    principal = principal_of(broker.catalogue.config, token)
    return ("unknown-key", "") if principal is None else (principal.id, principal.role)


async def source_caller(request: web.Request, broker: Broker, source: str) -> Caller | None:
    """For submitting and supplementing: the source ``source`` by its key when it is guarded
    (None when it is not and no key is sent). Raises the refusal; the caller journals it."""
    config = broker.catalogue.config
    caller = caller_of(request, broker)
    if caller is not None and caller.owns(source):
        return caller
    if not source_guarded(config, source) and caller is None:
        return None
    if caller is None:
        raise ProblemError(
            401, "unauthenticated", f"send 'Authorization: Bearer <key>' (source {source})"
        )
    raise ProblemError(403, "forbidden", f"that key is not source {source}'s")


def filing_partner(request: web.Request, broker: Broker, pid: str) -> Partner:
    """The partner ``pid`` if it files applications here and the request carries one of its keys."""
    partner: Partner | None = broker.catalogue.partner(pid)
    if partner is None or partner.inbound is None or pid == LOCAL:
        raise ProblemError(404, "unknown-partner", f"no partner {pid!r} files applications here")
    extra = {
        p.key_sha256
        for p in broker.catalogue.config.principals
        if p.role == "partner" and p.scope == pid
    }
    authenticate_partner(request, partner.inbound, pid, frozenset(extra))
    return partner


def authenticate_partner(
    request: web.Request, inbound: Inbound, pid: str, extra: frozenset[str] = frozenset()
) -> None:
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
    if not key_matches(token, inbound.keys_sha256 | extra):
        raise ProblemError(403, "forbidden", f"that key is not one of {pid!r}'s")


def _peer_certificate(request: web.Request) -> bytes | None:
    """The DER bytes of the TLS client certificate, if the connection has one (verified by the CA)."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
