"""Operators' endpoints: partners and their health, counts, reload, liveness and readiness."""

from __future__ import annotations

import orjson
from aiohttp import web

from federation.api.auth import authorize
from federation.api.edge import BROKER
from federation.api.problems import ProblemError
from federation.api.trail import audit_search, record
from federation.domain.errors import ConfigError, JournalError


async def list_partners(request: web.Request) -> web.Response:
    """Partners and their service items as configured."""
    broker = request.app[BROKER]
    await authorize(request, broker, "partners")
    config = broker.catalogue.config
    out = [
        {
            **broker.worker.partner_status(p.id),
            "id": p.id,
            "name": p.names.to_dict(),
            "region": {"code": p.region.code, "iso": p.region.iso},
            "protocol": p.protocol,
            "concurrency": p.concurrency,
            "services": [
                {"code": s.code, "name": s.names.to_dict() if s.names else None}
                for s in p.services.values()
            ],
        }
        for p in config.partners.values()
    ]
    return web.Response(body=orjson.dumps({"partners": out}), content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """Exchanges per state and work in hand."""
    broker = request.app[BROKER]
    await authorize(request, broker, "stats")
    counts = dict(await broker.journal.counts())
    body = {
        "exchanges": counts,
        "total": sum(counts.values()),
        "in_flight": broker.worker.in_flight,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def reload(request: web.Request) -> web.Response:
    """Reload partners.yaml, mappings and code tables; refused with every problem if invalid."""
    broker = request.app[BROKER]
    caller = await authorize(request, broker, "reload")
    try:
        catalogue = await broker.reload()
    except ConfigError as exc:
        await record(
            request,
            broker,
            who=caller.id,
            role=caller.role,
            action="reload",
            outcome="invalid-configuration",
        )
        errors = [p.to_dict() | {"text": str(p)} for p in exc.problems]
        raise ProblemError(
            422,
            "invalid-configuration",
            f"{len(errors)} problem(s); the configuration in force is unchanged",
            errors=errors,
        ) from exc
    await record(request, broker, who=caller.id, role=caller.role, action="reload")
    body = {
        "status": "reloaded",
        "partners": len(catalogue.config.partners),
        "mappings": len({m.path for m in catalogue.mappings.values()}),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def audit(request: web.Request) -> web.Response:
    """``GET /v1/audit``: the audit trail, for the auditor (filters: who, action, target, since,
    until, limit)."""
    broker = request.app[BROKER]
    caller = await authorize(request, broker, "audit")
    return await audit_search(request, broker, (caller.id, caller.role))


async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to accept applications: catalogue loaded and the journal writable."""
    broker = request.app[BROKER]
    try:
        await broker.journal.ping()
    except JournalError as exc:
        raise ProblemError(503, "not-ready", f"journal: {exc}") from exc
    return web.json_response({"status": "ready", "partners": len(broker.catalogue.config.partners)})
