"""Who may call the local API: named principals, each a key (its SHA-256) and one role.

partners.yaml declares them in a top-level ``principals:`` list::

    principals:
      - {id: chan-tm, role: support, key_sha256: 9f86d0…}
      - {id: gd-portal-1, role: source, source: gd-portal, key_sha256: 2c26b4…}

Roles: ``source`` (one local system: submits, reads and supplements its own exchanges),
``partner`` (one partner: its inbound API, beside ``inbound.keys_sha256``), and the staff roles
``viewer`` (search, show with personal data masked), ``support`` (+ replay, reveal with a reason),
``operator`` (+ reload, partners, stats) and ``auditor`` (the audit trail only). The older keys keep
working as principals: each ``sources[].keys_sha256`` digest is a ``source`` principal named
``<source>#<n>``, each ``broker.operator_keys_sha256`` digest an ``operator`` named ``operator#<n>``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said

SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
STAFF_ROLES = ("viewer", "support", "operator", "auditor")
ROLES = ("source", "partner", *STAFF_ROLES)
# What each staff role may do (the source and partner roles act on their own exchanges only).
GRANTS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"search", "show", "stats", "partners"}),
    "support": frozenset({"search", "show", "stats", "partners", "replay", "reveal"}),
    "operator": frozenset({"search", "show", "stats", "partners", "replay", "reveal", "reload"}),
    "auditor": frozenset({"audit"}),
}


@dataclass(frozen=True, kw_only=True)
class Principal:
    """One key and who holds it."""

    id: str
    role: str
    key_sha256: str
    scope: str | None = None  # the source (role source) or partner (role partner) it speaks for

    def may(self, action: str) -> bool:
        """Whether this principal's role grants ``action`` (a staff action)."""
        return action in GRANTS.get(self.role, frozenset())


def parse_principals(
    r: Reader,
    raw: Any,
    *,
    source_keys: Mapping[str, Collection[str]],
    operator_keys: Collection[str],
    partners: Collection[str],
) -> tuple[Principal, ...]:
    """The ``principals:`` list and the older keys, as principals; warns on partial guarding."""
    out = list(_legacy(source_keys, operator_keys))
    seen_ids = {p.id for p in out}
    seen_keys = {p.key_sha256 for p in out}
    for i, item in enumerate(r.items(("principals",), raw) if raw is not None else ()):
        p = _principal(r, ("principals", i), item, set(source_keys), partners)
        if p is None:
            continue
        if p.id in seen_ids:
            r.error(("principals", i, "id"), said("principal %(id)r is declared twice", id=p.id))
        elif p.key_sha256 in seen_keys:
            r.error(
                ("principals", i, "key_sha256"), said("this key is already another principal's")
            )
        seen_ids.add(p.id)
        seen_keys.add(p.key_sha256)
        out.append(p)
    if r.ok:  # said only of a file otherwise sound, so that its errors are read first
        _warn_partial(r, tuple(out), source_keys, raw is not None)
    return tuple(out)


def _legacy(
    source_keys: Mapping[str, Collection[str]], operator_keys: Collection[str]
) -> list[Principal]:
    out = [
        Principal(id=f"{sid}#{n}", role="source", key_sha256=digest, scope=sid)
        for sid, digests in source_keys.items()
        for n, digest in enumerate(sorted(digests), 1)
    ]
    out += [
        Principal(id=f"operator#{n}", role="operator", key_sha256=digest)
        for n, digest in enumerate(sorted(operator_keys), 1)
    ]
    return out


def _principal(
    r: Reader, path: PathKey, item: Any, sources: set[str], partners: Collection[str]
) -> Principal | None:
    m = r.mapping(path, item, required=("id", "role", "key_sha256"), optional=("source", "partner"))
    if m is None:
        return None
    pid = r.text((*path, "id"), m.get("id"))
    role = r.choice((*path, "role"), m.get("role"), ROLES)
    digest = r.text(
        (*path, "key_sha256"),
        m.get("key_sha256"),
        pattern=SHA256_RE,
        what=said("a sha256 hex digest"),
    )
    scope: str | None = None
    if role in ("source", "partner"):
        known = sources if role == "source" else set(partners)
        scope = r.text((*path, role), m.get(role)) if role in m else None
        if role not in m:
            r.error(
                path,
                said("a %(role)s principal names its %(role)s: add '%(role)s: <id>'", role=role),
            )
        elif scope is not None and scope not in known:
            r.error(
                (*path, role),
                said("no %(role)s %(scope)r in partners.yaml", role=role, scope=scope),
            )
    for other in ("source", "partner"):
        if other in m and other != role:
            r.error(
                (*path, other), said("only a %(other)s principal names a %(other)s", other=other)
            )
    if not (pid and role and digest):
        return None
    return Principal(id=pid, role=role, key_sha256=digest.lower(), scope=scope)


def _warn_partial(
    r: Reader,
    principals: tuple[Principal, ...],
    source_keys: Mapping[str, Collection[str]],
    declared: bool,
) -> None:
    """A warning for each way the local API is guarded in part only (``tongban check``)."""
    staff = {p.role for p in principals if p.role in STAFF_ROLES}
    keyed = {p.scope for p in principals if p.role == "source"}
    anchor: PathKey = ("principals",) if declared else ("sources",)
    if not principals:
        return  # unguarded, and so loopback only: the default, not a partial configuration
    for i, sid in enumerate(source_keys):
        if sid not in keyed:
            r.warn(
                ("sources", i),
                said(
                    "source %(sid)r has no key while others are guarded: "
                    "anyone reaching the port can submit as it",
                    sid=sid,
                ),
            )
    if "operator" not in staff:
        r.warn(
            anchor,
            said("no operator principal: reload, replay, search and stats answer only on loopback"),
        )
    if "auditor" not in staff:
        r.warn(
            anchor,
            said("no auditor principal: the audit trail (GET /v1/audit) answers only on loopback"),
        )
