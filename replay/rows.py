"""Stored rows to values and back, shared by the SQL backends so that both read the same way.

The ``exchanges`` and ``refusals`` tables have the same columns on SQLite and PostgreSQL; a
``sqlite3.Row`` and an ``asyncpg.Record`` both read by column name, which is all ``Row`` asks.
JSON columns hold the exact orjson bytes, so the hash chain and the archive see the same values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from federation.domain.models import Direction, Event, Exchange, State, json_default
from replay.chain import GENESIS
from replay.journal import Refusal
from replay.rules import Current

JSON_COLUMNS = ("mapping_versions", "receipt", "last_error")


class Row(Protocol):
    """A stored row, read by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


def dumps(value: Any) -> bytes:
    """JSON for the journal: Decimals keep their exact digits as strings."""
    return orjson.dumps(value, default=json_default)


def loads(raw: bytes | None) -> Any:
    """A JSON column's value (None stays None)."""
    return None if raw is None else orjson.loads(raw)


def event(exchange_id: str, row: Row) -> Event:
    """One event of an exchange's history, from its (seq, at, kind, data) columns."""
    return Event(
        exchange_id=exchange_id,
        seq=row["seq"],
        at=row["at"],
        kind=row["kind"],
        data=orjson.loads(row["data"]),
    )


def read_exchange(row: Row, events: Sequence[Event]) -> Exchange:
    """The Exchange of an ``exchanges`` row; the application and supplement_of come from its
    ``received`` event, the mapped request from its latest ``mapped`` event."""
    application: Mapping[str, Any] = {}
    mapped: Mapping[str, Any] | None = None
    supplement_of: str | None = None
    for ev in events:
        if ev.kind == "received":
            application = ev.data.get("application", {})
            supplement_of = ev.data.get("supplement_of")
        elif ev.kind == "mapped":
            mapped = ev.data.get("mapped")
    return Exchange(
        id=row["id"],
        supplement_of=supplement_of,
        direction=Direction(row["direction"]),
        source=row["source"],
        target=row["target"],
        service=row["service"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        state=State(row["state"]),
        application=application,
        mapped=mapped,
        mapping_versions=loads(row["mapping_versions"]) or {},
        receipt=loads(row["receipt"]),
        last_error=loads(row["last_error"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        notify_state=row["notify_state"],
        notify_attempts=row["notify_attempts"],
        lifecycle_state=row["lifecycle_state"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        events=tuple(events),
    )


def current(row: Row | None) -> Current | None:
    """What a guarded write is checked against (``replay.rules.refused``), from the row now."""
    if row is None:
        return None
    return Current(
        state=State(row["state"]),
        lease_owner=row["lease_owner"],
        lifecycle_state=row["lifecycle_state"],
    )


def refusal(row: Row) -> Refusal:
    """A kept refused intake request."""
    return Refusal(
        at=row["at"],
        remote=row["remote"],
        method=row["method"],
        path=row["path"],
        status=row["status"],
        problem=row["problem"],
        detail=row["detail"],
        idempotency_key=row["idempotency_key"],
        body=bytes(row["body"]),
        body_bytes=row["body_bytes"],
    )


def archive_record(row: Row) -> dict[str, Any]:
    """The exchange's columns as the archive file holds them (JSON columns decoded)."""
    record = {k: row[k] for k in row.keys()}  # noqa: SIM118 - a Row is no Mapping
    for key in JSON_COLUMNS:
        record[key] = loads(record[key])
    return record


def archive_event(row: Row, prev: bytes | None) -> dict[str, Any]:
    """An event as the archive file holds it, with the hash of the event before it in the chain."""
    return {
        "seq": row["seq"],
        "at": row["at"],
        "kind": row["kind"],
        "data": bytes(row["data"]).decode(),
        "hash": bytes(row["hash"]).hex(),
        "prev": (GENESIS if prev is None else bytes(prev)).hex(),
    }
