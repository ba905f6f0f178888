"""Stored rows to values and back, shared by the SQL backends so that both read the same way.

The ``exchanges`` and ``refusals`` tables have the same columns on SQLite and PostgreSQL; a
``sqlite3.Row`` and an ``asyncpg.Record`` both read by column name, which is all ``Row`` asks.
JSON columns hold the exact orjson bytes, so the hash chain and the archive see the same values.

Payloads are sealed and opened here (with a backend's ``replay.seal.Seal``), never in a backend:
``stored_events`` turns events into what is stored, ``event`` and ``refusal`` open them again,
``read_exchange`` the partner's words in a row's last error (``replay/lasterror.py``).
``shown_digest`` and ``refusal_digest`` are what the chain records of an exchange's row and of a
refusal, so that ``verify`` can prove the rows a reader is shown (``replay/audit.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import orjson

from federation.domain.errors import JournalDamaged
from federation.domain.models import (
    Direction,
    Event,
    Exchange,
    NewExchange,
    State,
    json_default,
)
from replay import lasterror
from replay.chain import GENESIS, EventRow
from replay.compress import COLUMNS_1, compress, decompress
from replay.journal import Refusal
from replay.rules import Current
from replay.seal import ContextMissing, Seal, as_text, event_aad, refusal_aad
from replay.sets import MappingSets

JSON_COLUMNS = ("mapping_versions", "receipt", "last_error")
SHOWN_BYTES = 16  # of a row's digest kept in the chain (``shown_digest``)
# The kind of the event that carries a row's digest when a write brings no event of its own: in
# the chain (and in archives), never in an exchange's history.
STATE = "~state"
ARCHIVED = "~archived"  # an exchange left for an archive file (its other events are tombstones)
REFUSAL = "~refusal"  # a refused request was kept (no exchange: exchange id '')
RECEIVED = "received"  # an exchange's first event: the application, its later events' context
AUDIT = "~audit"  # an audited act (replay/trail.py; no exchange: exchange id '')
# What a reader is shown of an exchange's row, and so what the chain records of it (its digest,
# ``shown_digest``): every column of ``exchanges`` that is written only by a write that records a
# digest (``create``, ``record``) and read back as fact. The others are EXEMPT.
SHOWN = (
    "id",
    "direction",
    "source",
    "target",
    "service",
    "idempotency_key",
    "request_hash",
    "state",
    "attempts",
    "next_attempt_at",
    "lifecycle_state",
    "mapping_versions",
    "receipt",
    "last_error",
    "created_at",
    "updated_at",
)
# Columns of ``exchanges`` outside the digest: leases and callback bookkeeping, which claims,
# heartbeats, a drain and the notifier change without writing to the chain (a digest of them would
# be stale after every heartbeat). An edit of them moves work (an exchange claimed sooner or
# later, a callback sent again or not), never what an exchange shows it was or did: its callbacks
# are events in the chain. docs/security.md says the same.
# ``lifecycle_steps`` counts the lifecycle steps a write set (StateChange.expect_steps): it
# refuses a write checked against an older step, and says nothing of the exchange itself (its
# steps are events in the chain); an edit of it makes a write refused and tried again, or lets
# one pass that the latest word's state would have let pass before the count was kept.
EXEMPT = (
    "lease_owner",
    "lease_until",
    "notify_state",
    "notify_attempts",
    "notify_at",
    "lifecycle_steps",
)
# What the chain recorded of a row before this release (generation 2 of replay/formats.py and
# earlier): a digest of these only, 16 bytes (32 before that). Rows whose last write was then are
# checked against them, and get the full digest at their next write.
SHOWN_1 = (
    "id",
    "state",
    "attempts",
    "lifecycle_state",
    "mapping_versions",
    "receipt",
    "last_error",
)
SHOWN_2 = b"\x02"  # the first byte of a full digest (17 bytes): SHOWN, ``shown_digest``
TIMES = frozenset({"next_attempt_at", "created_at", "updated_at"})  # read back as floats
REFUSAL_COLUMNS = (
    "at",
    "remote",
    "method",
    "path",
    "status",
    "problem",
    "detail",
    "idempotency_key",
    "body",
    "body_bytes",
)


class Row(Protocol):
    """A stored row, read by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


def dumps(value: Any) -> bytes:
    """JSON for the journal: Decimals keep their exact digits as strings."""
    return orjson.dumps(value, default=json_default)


# A packed receipt (``receipt_column``): this byte, then raw DEFLATE with COLUMNS_1 as dictionary.
# No JSON text starts with it, so columns written as JSON before still read as they are.
PACKED = b"\x01"


def receipt_column(value: Any) -> bytes | None:
    """A receipt as an ``exchanges`` row keeps it: packed, about a third of its JSON (one of 90
    bytes in 27), or the JSON where packing would not make it shorter."""
    if value is None:
        return None
    plain = dumps(value)
    packed = PACKED + compress(plain, b"", COLUMNS_1, mem_level=1)
    return packed if len(packed) < len(plain) else plain


def loads(raw: bytes | None) -> Any:
    """A JSON column's value (None stays None), packed or not."""
    if raw is None:
        return None
    raw = bytes(raw)
    if raw[:1] == PACKED:
        raw = decompress(raw[1:], "a packed row column", b"", COLUMNS_1)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise JournalDamaged("a row's JSON column does not parse (altered?)") from None


def event(exchange_id: str, row: Row, seal: Seal) -> Event:
    """One event of an exchange's history, from its (seq, at, kind, data) columns. Read an
    exchange's events in seq order: its ``received`` event is the context of the later ones."""
    kind, at = row["kind"], row["at"]
    what = f"event {row['seq']} of exchange {exchange_id}"
    try:
        data = orjson.loads(opened(seal, exchange_id, kind, at, bytes(row["data"]), what))
    except ContextMissing as exc:
        # Its received event is not there to read (an edit verify names): the rest is served.
        data = {"unreadable": str(exc)}
    return Event(exchange_id=exchange_id, seq=row["seq"], at=at, kind=kind, data=data)


def opened(seal: Seal, exchange_id: str, kind: str, at: float, stored: bytes, what: str) -> bytes:
    """An event's clear data; a ``received`` event's is remembered as its exchange's context."""
    aad = event_aad(exchange_id, kind, at)
    if kind == RECEIVED:
        plain = seal.open(stored, aad, what)
        if exchange_id:
            seal.contexts.remember(exchange_id, plain)
        return plain
    if not exchange_id:
        return seal.open(stored, aad, what)
    return seal.open(stored, aad, what, seal.contexts.get(exchange_id), lead=exchange_id.encode())


def sealed_event(
    seal: Seal, exchange_id: str, kind: str, at: float, plain: bytes, *, remember: bool = True
) -> bytes:
    """An event's data as stored: a ``received`` event's plaintext becomes the context that its
    exchange's later events are compressed with (when this process still remembers it; with
    ``remember=False`` the caller remembers it once the event is written)."""
    aad = event_aad(exchange_id, kind, at)
    if not exchange_id or not seal.keyed:
        return seal.seal(plain, aad)
    if kind == RECEIVED:
        if remember:
            seal.contexts.remember(exchange_id, plain)
        return seal.seal(plain, aad)
    return seal.seal(plain, aad, seal.contexts.get(exchange_id), lead=exchange_id.encode())


def archived_record(seal: Seal, exchange_id: str, at: float, events: int) -> EventRow:
    """The ``~archived`` event recording that ``events`` events of an exchange were archived
    (made tombstones). Sealed without its exchange's context, unlike its other events: verify
    reads the count while the exchange's received event is a tombstone (``replay/audit.py``)."""
    plain = dumps({"events": events})
    return (exchange_id, at, ARCHIVED, seal.seal(plain, event_aad(exchange_id, ARCHIVED, at)), None)


def stored_events(
    seal: Seal,
    exchange_id: str,
    events: Sequence[Event],
    state: bytes | None = None,
    *,
    now: float = 0.0,
    remember: bool = True,
) -> list[EventRow]:
    """``events`` as stored: data sealed, ``state`` (the row's digest) on the last one. A write
    that changes the row without an event of its own gets a hidden STATE event (at ``now``)."""
    if state is not None and not events:
        events = [Event(exchange_id=exchange_id, kind=STATE, at=now, data={})]
    out: list[EventRow] = []
    for n, e in enumerate(events, start=1):
        data = sealed_event(seal, exchange_id, e.kind, e.at, dumps(e.data), remember=remember)
        out.append((exchange_id, e.at, e.kind, data, state if n == len(events) else None))
    return out


class Sealing:
    """A write's events sealed ahead of it: ``prepare`` runs in the SQLite writer thread before
    the batch's transaction and outside the journal's turn (sealing needs no row), so that the turn
    is held for the SQL alone; ``rows``, called in the transaction once the row is written, gives
    them with the row's digest on the last one, sealed again if the journal's seal changed in
    between (a rekey). A ``received`` event's plaintext becomes its exchange's compression context
    only then, as when sealing was done in the transaction: a create that turns out a repeat or
    fails leaves nothing in the cache."""

    __slots__ = ("_at", "_events", "_id", "_received", "_rows", "_seal", "_used")

    def __init__(
        self, seal: Callable[[], Seal], exchange_id: str, events: Sequence[Event], at: float
    ):
        self._seal, self._id, self._events, self._at = seal, exchange_id, events, at
        self._used: Seal | None = None
        self._rows: list[EventRow] = []
        self._received: list[bytes] = []

    def prepare(self) -> None:
        self._used = self._seal()
        self._rows = stored_events(
            self._used, self._id, self._events, b"", now=self._at, remember=False
        )
        self._received = [dumps(e.data) for e in self._events if e.kind == RECEIVED]

    def rows(self, state: bytes) -> list[EventRow]:
        """The sealed rows, ``state`` on the last (as ``stored_events`` with that state)."""
        seal = self._seal()
        if self._used is not seal:  # not prepared, or sealed since under another key
            return stored_events(seal, self._id, self._events, state, now=self._at)
        if self._id and seal.keyed:
            for plain in self._received:
                seal.contexts.remember(self._id, plain)
        *head, (xid, at, kind, data, _) = self._rows
        return [*head, (xid, at, kind, data, state)]


def sealed(seal: Seal, exchange_id: str, kind: str, at: float, data: Mapping[str, Any]) -> bytes:
    """One event's data as stored."""
    return sealed_event(seal, exchange_id, kind, at, dumps(data))


def _digest(tag: bytes, values: Iterable[Any]) -> bytes:
    """An unambiguous digest of column values (None, text, numbers, bytes): each value's part
    (a type letter and its bytes) after its length, all hashed at once. The usual types are
    tested by identity first (a third less time than the general tests, the same bytes)."""
    parts = [tag]
    for value in values:
        kind = type(value)
        if value is None:
            parts.append(_NONE_PART)
            continue
        if kind is str:
            part = b"S" + value.encode("utf-8", "surrogatepass")
        elif kind is bytes:
            part = b"B" + value
        elif kind is int:
            part = b"I" + str(value).encode()
        elif kind is float:
            part = b"F" + repr(value).encode()
        else:
            part = _part(value)
        parts.append(len(part).to_bytes(4, "big"))
        parts.append(part)
    return hashlib.sha256(b"".join(parts)).digest()


_NONE_PART = struct.pack(">I", 1) + b"N"


def _part(value: Any) -> bytes:
    """A value's part in ``_digest`` (subclasses of str and int, bool, float, other buffers)."""
    if isinstance(value, str):
        return b"S" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bool | int):
        return b"I" + str(int(value)).encode()
    if isinstance(value, float):
        return b"F" + repr(value).encode()
    return b"B" + bytes(value)


def shown_digest(row: Row | Mapping[str, Any]) -> bytes:
    """The digest of what an ``exchanges`` row shows (SHOWN), as the chain records it: SHOWN_2,
    then the first SHOWN_BYTES of a SHA-256 of the SHOWN columns. It is inside the chain's hash,
    so nobody can change it without breaking the chain; what it must resist is a second row made
    to match it, and 128 bits are far out of reach for that. Its first byte says which columns it
    covers, and it is chained too: nobody can turn it into a digest of fewer columns
    (``shown_matches``)."""
    return SHOWN_2 + _digest(b"tongban/shown/2", _shown_values(row))[:SHOWN_BYTES]


def _shown_values(row: Row | Mapping[str, Any]) -> list[Any]:
    """The SHOWN columns as every backend reads them back: a request hash as SQLite keeps it
    (``hash_column``: its bytes, where PostgreSQL keeps text), times as floats (a REAL or double
    precision column gives back a float for an int written)."""
    values = [row[k] for k in SHOWN]
    if type(values[_HASH]) is not bytes:
        values[_HASH] = hash_column(hash_text(values[_HASH]))
    for n in _TIMES:
        if type(values[n]) is not float and values[n] is not None:
            values[n] = float(values[n])
    return values


_HASH = SHOWN.index("request_hash")
_TIMES = [SHOWN.index(k) for k in TIMES]


def shown_matches(row: Row | Mapping[str, Any], recorded: bytes) -> bool:
    """Whether ``recorded`` (a row digest the chain holds) is the digest of what ``row`` shows.
    Its form is the chained bytes' own, never the row's: 17 bytes from SHOWN_2 cover SHOWN; 16
    (or 32, as written before) are a digest of SHOWN_1 from an earlier release."""
    if len(recorded) == 1 + SHOWN_BYTES and recorded[:1] == SHOWN_2:
        return hmac.compare_digest(shown_digest(row), recorded)
    if len(recorded) not in (SHOWN_BYTES, 32):
        return False
    old = _digest(b"tongban/shown/1", (row[k] for k in SHOWN_1))
    return hmac.compare_digest(old[: len(recorded)], recorded)


SHA256_PREFIX = "sha256:"


def hash_column(request_hash: str) -> bytes | str:
    """A request hash as SQLite keeps it: the 32 bytes of a ``sha256:<hex>`` (39 fewer than its
    text, in every row); anything else (upper-case hex too, which would not read back the same) as
    the text it is."""
    digest = request_hash.removeprefix(SHA256_PREFIX)
    if request_hash.startswith(SHA256_PREFIX) and len(digest) == 64 and digest == digest.lower():
        try:
            return bytes.fromhex(digest)
        except ValueError:
            pass
    return request_hash


def hash_text(stored: bytes | str) -> str:
    """The request hash a ``request_hash`` column holds, as text (``sha256:<hex>``)."""
    if isinstance(stored, bytes | bytearray | memoryview):
        return SHA256_PREFIX + bytes(stored).hex()
    return stored


def created(new: NewExchange) -> dict[str, Any]:
    """The SHOWN columns of an exchange's row as ``create`` writes it."""
    return shown_of(new.as_received())


def shown_of(ex: Exchange) -> dict[str, Any]:
    """The SHOWN columns of an Exchange value, as a backend without rows stores them."""
    return {
        "id": ex.id,
        "direction": ex.direction.value,
        "source": ex.source,
        "target": ex.target,
        "service": ex.service,
        "idempotency_key": ex.idempotency_key,
        "request_hash": ex.request_hash,
        "state": ex.state.value,
        "attempts": ex.attempts,
        "next_attempt_at": ex.next_attempt_at,
        "lifecycle_state": ex.lifecycle_state,
        "mapping_versions": dumps(ex.mapping_versions) if ex.mapping_versions else None,
        "receipt": None if ex.receipt is None else dumps(ex.receipt),
        "last_error": None if ex.last_error is None else dumps(ex.last_error),
        "created_at": ex.created_at,
        "updated_at": ex.updated_at,
    }


def refusal_values(seal: Seal, r: Refusal) -> tuple[Any, ...]:
    """A refusal's columns as stored (REFUSAL_COLUMNS), its body sealed."""
    body = seal.seal(r.body, refusal_aad(r.at, r.status, r.body_bytes))
    return (
        r.at,
        r.remote,
        r.method,
        r.path,
        r.status,
        r.problem,
        r.detail,
        r.idempotency_key,
        body,
        r.body_bytes,
    )


def refusal_digest(values: Sequence[Any]) -> bytes:
    """The digest of a stored refusal (REFUSAL_COLUMNS in order), as the chain records it."""
    return _digest(b"tongban/refusal/1", values)


def refusal_event(seal: Seal, seq: int, at: float, values: Sequence[Any]) -> EventRow:
    """The chained event that records refusal ``seq`` (no exchange: exchange id '')."""
    data = sealed(seal, "", REFUSAL, at, {"refusal": seq})
    return ("", at, REFUSAL, data, refusal_digest(values))


def read_exchange(
    row: Row, events: Sequence[Event], seal: Seal, sets: MappingSets | None = None
) -> Exchange:
    """The Exchange of an ``exchanges`` row; the application and supplement_of come from its
    ``received`` event, the mapped request from its latest ``mapped`` event, the partner's words
    in its last error are opened with ``seal`` (``replay/lasterror.py``). With ``sets`` (which
    must know every set referred to: ``MappingSets.missing``), references to sets are resolved."""
    if sets is not None:
        events = sets.resolved(events)
    application: Mapping[str, Any] = {}
    mapped: Mapping[str, Any] | None = None
    supplement_of: str | None = None
    traceparent: str | None = None
    for ev in events:
        if ev.kind == "received":
            application = ev.data.get("application", {})
            supplement_of = ev.data.get("supplement_of")
            traceparent = ev.data.get("traceparent")
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
        request_hash=hash_text(row["request_hash"]),
        state=State(row["state"]),
        application=application,
        mapped=mapped,
        mapping_versions=(
            sets.versions_of(row["mapping_versions"])
            if sets is not None
            else loads(row["mapping_versions"]) or {}
        ),
        receipt=loads(row["receipt"]),
        last_error=lasterror.opened(seal, row["id"], loads(row["last_error"])),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        notify_state=row["notify_state"],
        notify_attempts=row["notify_attempts"],
        lifecycle_state=row["lifecycle_state"],
        lifecycle_steps=row["lifecycle_steps"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        events=tuple(events),
        traceparent=traceparent,
    )


def with_supplements(
    found: Sequence[Exchange], received: Iterable[Row], seal: Seal
) -> list[Exchange]:
    """Search results (read from their rows alone) with the ``supplement_of`` their ``received``
    events hold (rows of exchange_id, seq, at, kind, data); nothing else of those events is kept."""
    of: dict[str, str] = {}
    for row in received:
        xid = row["exchange_id"]
        named = event(xid, row, seal).data.get("supplement_of")
        if isinstance(named, str):
            of[xid] = named
    return [replace(ex, supplement_of=of.get(ex.id)) for ex in found]


def current(row: Row | None) -> Current | None:
    """What a guarded write is checked against (``replay.rules.refused``), from the row now."""
    if row is None:
        return None
    return Current(
        state=State(row["state"]),
        lease_owner=row["lease_owner"],
        lifecycle_state=row["lifecycle_state"],
        notify_state=row["notify_state"],
        lifecycle_steps=row["lifecycle_steps"],
    )


def refusal(row: Row, seal: Seal) -> Refusal:
    """A kept refused intake request."""
    aad = refusal_aad(row["at"], row["status"], row["body_bytes"])
    body = seal.open(bytes(row["body"]), aad, f"the body of refusal {row['seq']}")
    return Refusal(
        at=row["at"],
        remote=row["remote"],
        method=row["method"],
        path=row["path"],
        status=row["status"],
        problem=row["problem"],
        detail=row["detail"],
        idempotency_key=row["idempotency_key"],
        body=body,
        body_bytes=row["body_bytes"],
    )


def archive_record(row: Row, sets: MappingSets | None = None) -> dict[str, Any]:
    """The exchange's columns as the archive file holds them (JSON columns decoded, a mapping set
    written out, the request hash spelled as text; the partner's words in the last error stay
    sealed, as the events do)."""
    record = {k: row[k] for k in row.keys()}  # noqa: SIM118 - a Row is no Mapping
    record["request_hash"] = hash_text(record["request_hash"])
    for key in JSON_COLUMNS:
        if key == "mapping_versions" and sets is not None:
            record[key] = sets.versions_of(record[key]) or None
        else:
            record[key] = loads(record[key])
    return record


def archive_event(row: Row, prev: bytes | None) -> dict[str, Any]:
    """An event as the archive file holds it, with the hash of the event before it in the chain."""
    return {
        "seq": row["seq"],
        "at": row["at"],
        "kind": row["kind"],
        "data": as_text(bytes(row["data"])),
        "hash": bytes(row["hash"]).hex(),
        "prev": (GENESIS if prev is None else bytes(prev)).hex(),
        "state": None if row["state"] is None else bytes(row["state"]).hex(),
    }
