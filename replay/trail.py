"""The audit trail: who read personal data, replayed, reloaded or was refused, kept in the chain.

Each entry is a hidden ``~audit`` event with no exchange (exchange id ''), its data sealed like
any event's and chained and signed like every other (``replay/chain.py``), so an entry deleted or
edited breaks ``tongban journal verify``. Backends only append the event and hand back the rows
of ``~audit`` events, newest first; what an entry holds and which match a query is decided here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

import orjson

from replay.chain import EventRow
from replay.journal import AuditEntry, TrailQuery
from replay.rows import AUDIT, Row, sealed
from replay.seal import Seal, event_aad


def audit_event(seal: Seal, entry: AuditEntry) -> EventRow:
    """The chained event that records ``entry``."""
    return ("", entry.at, AUDIT, sealed(seal, "", AUDIT, entry.at, asdict(entry)), None)


def entries(found: Iterable[Row], seal: Seal, query: TrailQuery) -> list[AuditEntry]:
    """The entries among ``~audit`` rows (seq, at, data; newest first) that ``query`` matches."""
    out: list[AuditEntry] = []
    if query.limit <= 0:
        return out
    for row in found:
        at = float(row["at"])
        plain = seal.open(bytes(row["data"]), event_aad("", AUDIT, at), f"event {row['seq']}")
        entry = AuditEntry(**_known(orjson.loads(plain)))
        if matches(query, entry):
            out.append(entry)
            if len(out) >= query.limit:
                break
    return out


def matches(query: TrailQuery, entry: AuditEntry) -> bool:
    """Whether ``entry`` passes every filter of ``query``."""
    return (
        (query.who is None or entry.who == query.who)
        and (query.action is None or entry.action == query.action)
        and (query.target is None or query.target in entry.target)
        and (query.since is None or entry.at >= query.since)
        and (query.until is None or entry.at < query.until)
    )


def _known(data: dict[str, Any]) -> dict[str, Any]:
    fields = AuditEntry.__dataclass_fields__
    return {k: v for k, v in data.items() if k in fields}


TRAIL_SQL = (
    "SELECT seq, at, data FROM events WHERE exchange_id = '' AND kind = '~audit' "
    "AND NOT archived ORDER BY seq DESC"
)
# PostgreSQL reads the trail a page at a time (newest first, older than the last row read), so a
# console showing the last hundred entries does not fetch every entry ever kept.
PAGE = 500
TRAIL_FIRST_PG = (
    "SELECT seq, at, data FROM events WHERE exchange_id = '' AND kind = '~audit' "
    "AND NOT archived ORDER BY seq DESC LIMIT $1"
)
TRAIL_AFTER_PG = (
    "SELECT seq, at, data FROM events WHERE exchange_id = '' AND kind = '~audit' "
    "AND NOT archived AND seq < $2 ORDER BY seq DESC LIMIT $1"
)


async def paged(
    fetch: Callable[[int | None], Awaitable[Sequence[Row]]], seal: Seal, query: TrailQuery
) -> list[AuditEntry]:
    """The entries ``query`` matches, reading pages from ``fetch(before)`` (rows older than seq
    ``before``, or the newest when None; PAGE of them) until enough match or none are left."""
    out: list[AuditEntry] = []
    before: int | None = None
    while len(out) < query.limit:
        found = await fetch(before)
        out += entries(found, seal, replace(query, limit=query.limit - len(out)))
        if len(found) < PAGE:
            break
        before = int(found[-1]["seq"])
    return out
