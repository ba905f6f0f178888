"""The API's side of the audit trail: what it records (``replay/trail.py`` keeps it in the chain)
and ``GET /v1/audit`` for the auditor."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from aiohttp import web

from federation.api.problems import ProblemError
from federation.domain.errors import JournalError, RequestRefused
from federation.domain.storable import unstorable
from federation.logging import get_logger
from federation.runtime.broker import Broker
from replay.journal import AuditEntry, TrailQuery

_log = get_logger(component="audit")


async def record(
    request: web.Request,
    broker: Broker,
    *,
    who: str,
    role: str,
    action: str,
    target: str = "",
    reason: str = "",
    outcome: str = "ok",
) -> None:
    """Append one audit entry; a journal that cannot take it is logged (the act is not undone)."""
    entry = AuditEntry(
        at=time.time(),
        who=who,
        role=role,
        action=action,
        target=target,
        remote=request.remote or "",
        reason=reason,
        outcome=outcome,
    )
    try:
        await broker.journal.note(entry)
    except JournalError as exc:
        _log.error("audit_not_journalled", error=str(exc), action=action)


async def audit_refusal(
    request: web.Request, broker: Broker, who: tuple[str, str], action: str, exc: RequestRefused
) -> None:
    """A refused key or role, as an audit entry (``who``: principal id and role, or anonymous)."""
    await record(
        request,
        broker,
        who=who[0],
        role=who[1],
        action=f"refused:{action}",
        target=request.path,
        outcome=exc.code,
    )


def trail_query(params: dict[str, str]) -> TrailQuery:
    """A TrailQuery from ``GET /v1/audit``'s parameters (or the CLI's options)."""
    known = {"who", "action", "target", "since", "until", "limit"}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    if (name := unstorable(params)) is not None:
        raise ValueError(
            f"{name}: holds a NUL character or a lone surrogate, which no search can match"
        )
    try:
        limit = int(params.get("limit", "100"))
        since = float(params["since"]) if params.get("since") else None
        until = float(params["until"]) if params.get("until") else None
    except ValueError:
        raise ValueError("limit, since and until are numbers (epoch seconds)") from None
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be between 1 and 1000")
    if any(t is not None and not math.isfinite(t) for t in (since, until)):
        raise ValueError("since and until are finite epoch seconds")
    return TrailQuery(
        who=params.get("who") or None,
        action=params.get("action") or None,
        target=params.get("target") or None,
        since=since,
        until=until,
        limit=limit,
    )


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry as JSON."""
    return {
        "at": entry.at,
        "who": entry.who,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "remote": entry.remote,
        "reason": entry.reason,
        "outcome": entry.outcome,
    }


async def audit_search(request: web.Request, broker: Broker, who: tuple[str, str]) -> web.Response:
    """``GET /v1/audit`` once the caller is known to be allowed: the entries, newest first."""
    try:
        query = trail_query(dict(request.query))
    except ValueError as exc:
        raise ProblemError(400, "invalid-query", str(exc)) from exc
    found = await broker.journal.trail(query)
    await record(
        request, broker, who=who[0], role=who[1], action="audit", target=request.query_string
    )
    body = {"entries": [entry_json(e) for e in found]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")
