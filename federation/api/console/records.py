"""The refusals page (what was refused and why, without the bodies) and the audit trail page
(who read, replayed and reloaded what), through the journal's own queries as ``GET /v1/audit``."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from federation.api.console.access import require
from federation.api.console.render import render
from federation.api.edge import BROKER
from federation.api.trail import record, trail_query
from replay.journal import AuditEntry, JournalAdmin, Refusal

LIMIT = 100


async def refusals(request: web.Request) -> web.Response:
    """The most recent refused requests: when, from where, what, the problem and its detail."""
    broker = request.config_dict[BROKER]
    await require(request, broker, "stats")
    found: list[Refusal] = []
    if hasattr(broker.journal, "refusals"):
        found = await cast(JournalAdmin, broker.journal).refusals(LIMIT)
    return render(request, "refusals.html", found=found)


async def audit(request: web.Request) -> web.Response:
    """The audit trail for the auditor, newest first (filters: who, action, target)."""
    broker = request.config_dict[BROKER]
    caller = await require(request, broker, "audit")
    params = {k: v for k in ("who", "action", "target") if (v := request.query.get(k, "").strip())}
    entries: list[AuditEntry] = await broker.journal.trail(
        trail_query(params | {"limit": str(LIMIT)})
    )
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="audit",
        target="&".join(f"{k}={v}" for k, v in params.items()),
    )
    return render(request, "audit.html", entries=entries, form=params)
