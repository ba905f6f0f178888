"""The in-memory journal: the whole contract without a file, for tests and tools (``memory:``).

Unit tests of the worker and the intake use it instead of a file; integration tests use the real
backends. It keeps Exchange values in dictionaries and asks ``replay.rules`` and ``replay.search``
every question the SQL backends answer in SQL, so the contract suite holds it to the same answers.
Its events are hash-chained like theirs, sealed with keys that live as long as it does, its head
signed and checkpointed in memory, so ``verify``, ``archive`` and ``rekey`` behave the same too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from federation.domain.errors import JournalDamaged, JournalError, JournalUnavailable, LeaseLost
from federation.domain.models import Event, Exchange, NewExchange, StateChange
from replay import inherited, instances, lasterror, rekey, rows, rules, tally, trail
from replay.archive import ArchivedExchange, ArchiveWriter
from replay.audit import Audit
from replay.chain import GENESIS, Break, ChainBroken, head_problem, link
from replay.checkpoints import Checkpoints, rolled_back
from replay.instances import Instance
from replay.journal import AuditEntry, JournalEvent, Query, Refusal, TrailQuery
from replay.keys import KeyPlace, ephemeral
from replay.lasterror import column as error_column
from replay.rekey import Staged
from replay.seal import Seal, as_text
from replay.search import matches, page_size
from replay.sessions import MAC_TAG, StoredSession

HIDDEN = (
    rows.STATE,
    rows.ARCHIVED,
    rows.REFUSAL,
    rows.AUDIT,
    inherited.INHERITED,
)  # chained, never in an exchange's history


@dataclass
class _Stored:
    """One event as the SQL backends keep it: its stored bytes and its link in the hash chain."""

    event: Event
    data: bytes
    hash: bytes
    state: bytes | None = None
    archived: bool = False

    def row(self) -> tuple[Any, ...]:
        """(seq, exchange_id, at, kind, data, hash, archived, state), as the SQL tables hold it."""
        e = self.event
        return (e.seq, e.exchange_id, e.at, e.kind, self.data, self.hash, self.archived, self.state)


class InMemoryJournal:
    """A Journal kept in dictionaries; ``fail_writes`` simulates an unavailable store."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, keys: KeyPlace | None = None
    ) -> None:
        self._clock = clock
        self.keys = keys if keys is not None else ephemeral()
        self.seal = Seal(None)
        self.checkpoints = Checkpoints(self.keys.checkpoints, self.seal)
        self.head: tuple[int, bytes, bytes | None] = (0, GENESIS, None)  # seq, hash, mac
        self.announced: dict[str, Instance] = {}
        self.console_sessions: dict[bytes, StoredSession] = {}
        self.refusal_rows: list[dict[str, Any]] = []  # seq and REFUSAL_COLUMNS, body sealed
        self.exchanges: dict[str, Exchange] = {}
        self.events: list[Event] = []
        self.leases: dict[str, tuple[str, float]] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self.notify_at: dict[str, float] = {}
        self.refs: dict[str, tuple[bytes, ...]] = {}
        # Each last error as a SQL row's column keeps it (``replay/lasterror.py``): the partner's
        # words and the problems sealed once, when written. The chain records the row digest over
        # these bytes, and the archive writes them, as on SQL.
        self.error_columns: dict[str, bytes] = {}
        self._chain: list[_Stored] = []
        self.fail_writes = False
        self.refused: str | None = None  # a rollback found at open (``replay.checkpoints``)
        self.opened = False

    def __repr__(self) -> str:
        return "InMemoryJournal()"

    async def open(self) -> None:
        if self.seal.ring is None:
            ring = self.keys.open_ring(signed=self.head[2] is not None)
            self.use(Seal(ring, where=self.keys.describe()))
            self.head = (*self.head[:2], self.seal.sign_head(*self.head[:2]))
        await rekey.settle_interrupted(self, self._end_at)  # as the stores check at open
        point = self.checkpoints.latest()
        if point is not None:
            self.refused = rolled_back(point, *await self._end_at(point.seq))
        self.opened = True

    async def _end_at(self, seq: int) -> tuple[int, bytes | None]:
        """The last event's seq and the hash of event ``seq``, as the stores read them."""
        end = len(self._chain)  # event n is at n - 1, as on the stores' seq
        return end, self._chain[seq - 1].hash if 0 < seq <= end else None

    def use(self, seal: Seal) -> None:
        """Seal and sign with ``seal`` from now on."""
        self.seal = seal
        self.checkpoints = self.checkpoints.under(seal)  # a rekey's staged line kept

    async def close(self) -> None:
        if self.opened and self._chain:
            self.checkpoints.write(self.head[0], self.head[1], self._clock())
        self.opened = False

    def _check(self) -> None:
        if not self.opened or self.fail_writes:
            raise JournalUnavailable("in-memory journal is unavailable")
        if self.refused is not None:
            raise ChainBroken(f"in-memory journal: {self.refused}")
        last = (self._chain[-1].event.seq, self._chain[-1].hash) if self._chain else None
        problem = head_problem(self.seal, self.head, last)
        if problem is not None:
            raise ChainBroken(f"in-memory journal: {problem}")

    @property
    def writes_refused(self) -> bool:
        """Never: there is no disk to fill (``fail_writes`` simulates an unavailable store)."""
        return False

    async def ping(self) -> None:
        self._check()

    def _append(self, xid: str, events: Sequence[Event], state: bytes | None = None) -> None:
        """Chain ``events`` (sealed; ``state`` on the last) and sign the new head."""
        if not events and state is None:
            return
        stored_rows = rows.stored_events(self.seal, xid, events, state, now=self._clock())
        if not events:
            events = [Event(exchange_id=xid, kind=rows.STATE, at=stored_rows[0][1], data={})]
        for event, (_, _, _, data, digest) in zip(events, stored_rows, strict=True):
            self._link(event, data, digest)

    def _link(self, event: Event, data: bytes, state: bytes | None) -> None:
        seq = len(self._chain) + 1
        event = replace(event, seq=seq)
        prev = self._chain[-1].hash if self._chain else GENESIS
        digest = link(prev, seq, event.exchange_id, event.at, event.kind, data, state)
        self._chain.append(_Stored(event=event, data=data, hash=digest, state=state))
        if event.kind not in HIDDEN:
            self.events.append(event)
        self.head = (seq, digest, self.seal.sign_head(seq, digest))

    def _history(self, exchange_id: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.exchange_id == exchange_id)

    def _shown(self, ex: Exchange) -> dict[str, Any]:
        """What ``ex``'s row shows, as a SQL journal stores it: its last error's column, while
        that opens to the error ``ex`` holds (else what ``ex`` holds, which verify then finds
        is not what the chain recorded: the exchange was changed in memory)."""
        shown = rows.shown_of(ex)
        column = self.error_columns.get(ex.id)
        with contextlib.suppress(JournalDamaged):
            if column is not None and shown["last_error"] == rows.dumps(
                lasterror.opened(self.seal, ex.id, rows.loads(column))
            ):
                shown["last_error"] = column
        return shown

    def _current(self, exchange_id: str) -> rules.Current | None:
        ex = self.exchanges.get(exchange_id)
        if ex is None:
            return None
        holder = self.leases.get(exchange_id)
        return rules.Current(
            state=ex.state,
            lease_owner=None if holder is None else holder[0],
            lifecycle_state=ex.lifecycle_state,
            notify_state=ex.notify_state,
            lifecycle_steps=ex.lifecycle_steps,
        )

    # -- Journal --------------------------------------------------------------------------------

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        self._check()
        existing = self._keys.get((new.source, new.idempotency_key))
        if existing is not None:
            ex = self.exchanges[existing]
            rules.repeat_of(new, exchange_id=existing, request_hash=ex.request_hash)
            return replace(ex, events=self._history(existing)), False
        ex = new.as_received()
        self.exchanges[new.id] = ex
        self.refs[new.id] = new.applicant_refs
        self._keys[(new.source, new.idempotency_key)] = new.id
        self.leases[new.id] = (owner, lease_until)
        received = Event(
            exchange_id=new.id, kind="received", at=new.received_at, data=new.received_data()
        )
        self._append(new.id, [received], rows.shown_digest(self._shown(ex)))
        return ex, True

    async def record(
        self,
        exchange_id: str,
        events: Sequence[Event],
        change: StateChange,
        *,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> None:
        self._check()
        refusal = rules.refused(exchange_id, self._current(exchange_id), change, owner)
        if refusal is not None:
            raise refusal
        now = self._clock()
        moved = rules.applied(self.exchanges[exchange_id], change, events, now)
        stored = error_column(self.seal, exchange_id, change.last_error)
        if stored is not None:  # as on SQL: the last error kept unless a new one is given
            self.error_columns[exchange_id] = stored
        self._append(exchange_id, events, rows.shown_digest(self._shown(moved)))
        self.exchanges[exchange_id] = moved
        if change.notify:
            self.notify_at[exchange_id] = now
        holder = self.leases.get(exchange_id)
        if rules.releases_lease(change):
            self.leases.pop(exchange_id, None)
        elif lease_until is not None and holder is not None:
            self.leases[exchange_id] = (holder[0], lease_until)

    async def get(self, exchange_id: str) -> Exchange | None:
        ex = self.exchanges.get(exchange_id)
        return None if ex is None else replace(ex, events=self._history(exchange_id))

    async def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        self._check()
        out: list[Exchange] = []
        for xid in sorted(self.exchanges):
            if len(out) >= limit:
                break
            ex = self.exchanges[xid]
            holder = self.leases.get(xid)
            if not rules.due(
                ex.state,
                next_attempt_at=ex.next_attempt_at,
                lease_until=None if holder is None else holder[1],
                now=now,
            ):
                continue
            if holder is not None and holder[0] != owner:
                reclaim = {"from": holder[0], "to": owner, "state": ex.state.value}
                reclaimed = Event(exchange_id=xid, kind="lease_reclaimed", at=now, data=reclaim)
                self._append(xid, [reclaimed])
            self.leases[xid] = (owner, lease_until)
            out.append(replace(ex, events=self._history(xid)))
        return out

    async def renew(self, *, owner: str, ids: Sequence[str], lease_until: float) -> int:
        self._check()
        n = 0
        for xid in ids:
            holder = self.leases.get(xid)
            if holder is not None and holder[0] == owner:
                self.leases[xid] = (owner, lease_until)
                n += 1
        return n

    async def release(self, *, owner: str) -> int:
        self._check()
        mine = [xid for xid, (holder, _) in self.leases.items() if holder == owner]
        for xid in mine:
            del self.leases[xid]
        return len(mine)

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        self._check()
        out: list[Exchange] = []
        for xid, at in sorted(self.notify_at.items(), key=lambda kv: (kv[1], kv[0])):
            holder = self.leases.get(xid)
            if len(out) < limit and at <= now and (holder is None or holder[1] < now):
                self.leases[xid] = (owner, lease_until)
                out.append(without_history(self.exchanges[xid]))
        return out

    async def finish_notification(
        self,
        exchange_id: str,
        events: Sequence[Event],
        *,
        owner: str,
        done: bool,
        next_at: float | None = None,
    ) -> None:
        self._check()
        holder = self.leases.get(exchange_id)
        if holder is None or holder[0] != owner or exchange_id not in self.notify_at:
            raise LeaseLost(f"callback of exchange {exchange_id} is no longer leased to {owner}")
        self._append(exchange_id, events)
        self.leases.pop(exchange_id, None)
        ex = self.exchanges[exchange_id]
        tried = replace(ex, notify_attempts=ex.notify_attempts + 1)
        if done or next_at is None:
            del self.notify_at[exchange_id]
            tried = replace(tried, notify_state=None)
        else:
            self.notify_at[exchange_id] = next_at
        self.exchanges[exchange_id] = tried

    async def append(self, exchange_id: str, events: Sequence[Event]) -> None:
        self._check()
        if exchange_id not in self.exchanges:
            raise JournalError(f"no exchange {exchange_id}")
        self._append(exchange_id, events)

    async def search(self, query: Query) -> list[Exchange]:
        found = (
            without_history(self.exchanges[xid], keep_supplement_of=query.with_supplement_of)
            for xid in sorted(self.exchanges, reverse=True)
            if matches(query, self.exchanges[xid], self.refs.get(xid, ()))
        )
        return list(islice(found, page_size(query)))

    async def tally(self) -> tally.Tally:
        self._check()
        return tally.of_exchanges(self.exchanges.values(), len(self.notify_at))

    async def counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for ex in self.exchanges.values():
            out[ex.state.value] = out.get(ex.state.value, 0) + 1
        return out

    async def announce(self, instance: Instance) -> None:
        self._check()
        known = self.announced.get(instance.id)
        if known is not None:  # as the SQL upsert: the version and the time seen change
            instance = replace(
                known, config_version=instance.config_version, seen_at=instance.seen_at
            )
        self.announced[instance.id] = instance
        gone = instance.seen_at - instances.FORGET_AFTER
        self.announced = {k: i for k, i in self.announced.items() if i.seen_at >= gone}

    async def withdraw(self, instance_id: str) -> None:
        self._check()
        self.announced.pop(instance_id, None)

    async def instances(self, *, seen_since: float) -> list[Instance]:
        self._check()
        seen = [i for i in self.announced.values() if i.seen_at >= seen_since]
        return sorted(seen, key=lambda i: (i.host, i.pid, i.id))

    async def open_session(self, session: StoredSession, *, now: float) -> None:
        self._check()
        self.console_sessions = {
            k: s for k, s in self.console_sessions.items() if s.expires_at > now
        }
        self.console_sessions[session.token_hash] = session

    async def session(self, token_hash: bytes, *, now: float) -> StoredSession | None:
        self._check()
        found = self.console_sessions.get(token_hash)
        return found if found is not None and found.expires_at > now else None

    async def end_session(self, token_hash: bytes) -> None:
        self._check()
        self.console_sessions.pop(token_hash, None)

    def session_mac(self, parts: Sequence[bytes]) -> bytes | None:
        return self.seal.sign(MAC_TAG, parts)

    async def refuse(self, refusal: Refusal) -> None:
        self._check()
        values = rows.refusal_values(self.seal, refusal)
        seq = len(self.refusal_rows) + 1
        self.refusal_rows.append(
            {"seq": seq, **dict(zip(rows.REFUSAL_COLUMNS, values, strict=True))}
        )
        stored = rows.refusal_event(self.seal, seq, refusal.at, values)
        self._link(Event(exchange_id="", kind=rows.REFUSAL, at=refusal.at), stored[3], stored[4])

    async def note(self, entry: AuditEntry) -> None:
        self._check()
        stored = trail.audit_event(self.seal, entry)
        self._link(Event(exchange_id="", kind=rows.AUDIT, at=entry.at), stored[3], None)

    async def trail(self, query: TrailQuery) -> list[AuditEntry]:
        found = [
            {"seq": s.event.seq, "at": s.event.at, "data": s.data}
            for s in reversed(self._chain)
            if s.event.kind == rows.AUDIT and not s.event.exchange_id and not s.archived
        ]
        return trail.entries(found, self.seal, query)

    # -- JournalAdmin ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Nothing to migrate: the schema is this module."""
        return []

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        return [rows.refusal(r, self.seal) for r in self.refusal_rows[::-1][:limit]]

    async def verify(self) -> tuple[int, Break | None]:
        audit = Audit(self.seal, self.checkpoints)
        audit.events([s.row() for s in self._chain])
        audit.head(self.head)
        audit.exchanges(self._shown(ex) for ex in self.exchanges.values())
        audit.refusals(self.refusal_rows)
        return audit.result()

    async def rekey(self) -> int:
        """Seal everything again under a new data key (``replay/rekey.py``)."""
        return await rekey.rotate(self)

    async def reseal(self, new: Seal, staged: Staged) -> tuple[int, int, bytes]:
        """Every payload sealed under ``new`` and the chain recomputed, as on SQL (``staged``
        told the new head before anything changes, as before a commit)."""
        bodies, digests = rekey.resealed_refusals(self.refusal_rows, self.seal, new)
        errors = rekey.resealed_errors(list(self.error_columns.items()), self.seal, new)
        columns = {**self.error_columns, **{xid: column for column, xid in errors}}
        shown = {
            xid: rows.shown_digest({**rows.shown_of(ex), "last_error": columns.get(xid)})
            for xid, ex in self.exchanges.items()
        }
        updates, seq, head = rekey.resealed_chain(
            [s.row() for s in self._chain], self.seal, new, digests, shown
        )
        staged(seq, head)
        for body, number in bodies:
            self.refusal_rows[number - 1]["body"] = body
        self.error_columns = columns
        for data, digest, state, number in updates:
            stored = self._chain[number - 1]
            stored.data, stored.hash, stored.state = data, digest, state
        self.head = (seq, head, new.sign_head(seq, head))
        self.use(new)  # as the stores do: in force before anything else is written
        return len(bodies) + len(errors) + len(updates), seq, head

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        self._check()
        writer = ArchiveWriter(out, created_at=self._clock(), older_than=older_than)
        try:
            gone = sorted(
                (ex for ex in self.exchanges.values() if self._archivable(ex, older_than)),
                key=lambda ex: (ex.updated_at, ex.id),
            )
            for i in range(0, len(gone), chunk):
                batch = [self._archived(ex) for ex in gone[i : i + chunk]]
                writer.write(batch)
                for ex in gone[i : i + chunk]:
                    self._tombstone(ex.id)
        finally:
            writer.close()
        return writer.exchanges, writer.events

    async def events_of(self, ids: Sequence[str]) -> list[JournalEvent]:
        """Every event of those exchanges, live or tombstoned, in chain order; no content."""
        wanted = set(ids)
        return [
            JournalEvent.of((e.seq, e.exchange_id, e.at, e.kind, s.hash, s.archived))
            for s in self._chain
            if (e := s.event).exchange_id in wanted
        ]

    async def archived_markers(self, first: float, last: float) -> list[tuple[str, float]]:
        """(exchange id, time) of the ``~archived`` markers made at ``first`` … ``last``."""
        return [
            (s.event.exchange_id, s.event.at)
            for s in self._chain
            if s.event.kind == rows.ARCHIVED and first <= s.event.at <= last
        ]

    def _archivable(self, ex: Exchange, older_than: float) -> bool:
        leased = ex.id in self.leases
        return rules.archivable(ex, leased=leased, older_than=older_than)

    def _archived(self, ex: Exchange) -> ArchivedExchange:
        """``ex`` as the SQL backends' archive writes it: its columns (its last error as its row
        keeps it, the partner's words sealed) and its chained events."""
        error = self.error_columns.get(ex.id)
        row: dict[str, Any] = {
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
            "lease_owner": None,
            "lease_until": None,
            "mapping_versions": dict(ex.mapping_versions) or None,
            "receipt": ex.receipt,
            "last_error": None if error is None else rows.loads(error),
            "created_at": ex.created_at,
            "updated_at": ex.updated_at,
            "notify_state": ex.notify_state,
            "notify_attempts": ex.notify_attempts,
            "notify_at": self.notify_at.get(ex.id),
            "lifecycle_state": ex.lifecycle_state,
            "lifecycle_steps": ex.lifecycle_steps,
        }
        events = []
        for n, stored in enumerate(self._chain):
            if stored.event.exchange_id == ex.id and not stored.archived:
                events.append(
                    {
                        "seq": stored.event.seq,
                        "at": stored.event.at,
                        "kind": stored.event.kind,
                        "data": as_text(stored.data),
                        "hash": stored.hash.hex(),
                        "prev": (self._chain[n - 1].hash if n else GENESIS).hex(),
                        "state": None if stored.state is None else stored.state.hex(),
                    }
                )
        return ArchivedExchange(row=row, events=events)

    def _tombstone(self, exchange_id: str) -> None:
        """The exchange leaves; its events stay in the chain without content, as on SQL."""
        ex = self.exchanges.pop(exchange_id)
        self._keys.pop((ex.source, ex.idempotency_key), None)
        self.refs.pop(exchange_id, None)
        self.notify_at.pop(exchange_id, None)
        self.error_columns.pop(exchange_id, None)
        tombstoned = 0
        for stored in self._chain:
            if stored.event.exchange_id == exchange_id and not stored.archived:
                stored.archived, stored.data, stored.state = True, b"", None
                tombstoned += 1
        self.events = [e for e in self.events if e.exchange_id != exchange_id]
        marker = Event(exchange_id=exchange_id, kind=rows.ARCHIVED, at=self._clock(), data={})
        self._append(exchange_id, [replace(marker, data={"events": tombstoned})])


def without_history(ex: Exchange, *, keep_supplement_of: bool = False) -> Exchange:
    """``ex`` as a SQL journal reads it from its row alone (a search, a claimed callback): what
    its events hold (the application, the mapped request, supplement_of, the trace context and the
    events themselves) left out, so that no caller can come to rely on them here alone; but
    supplement_of with ``keep_supplement_of``, as a SQL journal reads it then
    (``Query.with_supplement_of``)."""
    supplement_of = ex.supplement_of if keep_supplement_of else None
    return replace(
        ex, application={}, mapped=None, supplement_of=supplement_of, traceparent=None, events=()
    )
