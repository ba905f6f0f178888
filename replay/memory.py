"""The in-memory journal: the whole contract without a file, for tests and tools (``memory:``).

Unit tests of the worker and the intake use it instead of a file; integration tests use the real
backends. It keeps Exchange values in dictionaries and asks ``replay.rules`` and ``replay.search``
every question the SQL backends answer in SQL, so the contract suite holds it to the same answers.
Its events are hash-chained like theirs, so ``verify`` and ``archive`` behave the same too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from federation.domain.errors import JournalUnavailable, LeaseLost
from federation.domain.models import Event, Exchange, NewExchange, StateChange
from replay import rules
from replay.archive import ArchivedExchange, ArchiveWriter
from replay.chain import GENESIS, Break, link, verify
from replay.journal import Query, Refusal
from replay.rows import dumps
from replay.search import matches, page_size


@dataclass
class _Stored:
    """One event as the SQL backends keep it: its JSON bytes and its link in the hash chain."""

    event: Event
    data: bytes
    hash: bytes
    archived: bool = False


class InMemoryJournal:
    """A Journal kept in dictionaries; ``fail_writes`` simulates an unavailable store."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.exchanges: dict[str, Exchange] = {}
        self.events: list[Event] = []
        self.leases: dict[str, tuple[str, float]] = {}
        self.refused: list[Refusal] = []
        self._keys: dict[tuple[str, str], str] = {}
        self.notify_at: dict[str, float] = {}
        self.refs: dict[str, tuple[bytes, ...]] = {}
        self._chain: list[_Stored] = []
        self.fail_writes = False
        self.opened = False

    def __repr__(self) -> str:
        return "InMemoryJournal()"

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    def _check(self) -> None:
        if not self.opened or self.fail_writes:
            raise JournalUnavailable("in-memory journal is unavailable")

    async def ping(self) -> None:
        self._check()

    def _append(self, event: Event) -> None:
        seq = len(self._chain) + 1
        stored = replace(event, seq=seq)
        data = dumps(stored.data)
        prev = self._chain[-1].hash if self._chain else GENESIS
        digest = link(prev, seq, stored.exchange_id, stored.at, stored.kind, data)
        self._chain.append(_Stored(event=stored, data=data, hash=digest))
        self.events.append(stored)

    def _history(self, exchange_id: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.exchange_id == exchange_id)

    def _current(self, exchange_id: str) -> rules.Current | None:
        ex = self.exchanges.get(exchange_id)
        if ex is None:
            return None
        holder = self.leases.get(exchange_id)
        return rules.Current(
            state=ex.state,
            lease_owner=None if holder is None else holder[0],
            lifecycle_state=ex.lifecycle_state,
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
        self._append(
            Event(exchange_id=new.id, kind="received", at=new.received_at, data=new.received_data())
        )
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
        for e in events:
            self._append(e)
        now = self._clock()
        self.exchanges[exchange_id] = rules.applied(
            self.exchanges[exchange_id], change, events, now
        )
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
                self._append(Event(exchange_id=xid, kind="lease_reclaimed", at=now, data=reclaim))
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

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        self._check()
        out: list[Exchange] = []
        for xid, at in sorted(self.notify_at.items(), key=lambda kv: (kv[1], kv[0])):
            holder = self.leases.get(xid)
            if len(out) < limit and at <= now and (holder is None or holder[1] < now):
                self.leases[xid] = (owner, lease_until)
                out.append(self.exchanges[xid])
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
        for e in events:
            self._append(e)
        self.leases.pop(exchange_id, None)
        ex = self.exchanges[exchange_id]
        tried = replace(ex, notify_attempts=ex.notify_attempts + 1)
        if done or next_at is None:
            del self.notify_at[exchange_id]
            tried = replace(tried, notify_state=None)
        else:
            self.notify_at[exchange_id] = next_at
        self.exchanges[exchange_id] = tried

    async def search(self, query: Query) -> list[Exchange]:
        found = (
            self.exchanges[xid]
            for xid in sorted(self.exchanges, reverse=True)
            if matches(query, self.exchanges[xid], self.refs.get(xid, ()))
        )
        return list(islice(found, page_size(query)))

    async def counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for ex in self.exchanges.values():
            out[ex.state.value] = out.get(ex.state.value, 0) + 1
        return out

    async def refuse(self, refusal: Refusal) -> None:
        self._check()
        self.refused.append(refusal)

    # -- JournalAdmin ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Nothing to migrate: the schema is this module."""
        return []

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        return self.refused[::-1][:limit]

    async def verify(self) -> tuple[int, Break | None]:
        rows = (
            (s.event.seq, s.event.exchange_id, s.event.at, s.event.kind, s.data, s.hash, s.archived)
            for s in self._chain
        )
        count, broken, _ = verify(rows)
        return count, broken

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
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

    def _archivable(self, ex: Exchange, older_than: float) -> bool:
        leased = ex.id in self.leases
        return rules.archivable(ex, leased=leased, older_than=older_than)

    def _archived(self, ex: Exchange) -> ArchivedExchange:
        """``ex`` as the SQL backends' archive writes it: its columns and its chained events."""
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
            "last_error": ex.last_error,
            "created_at": ex.created_at,
            "updated_at": ex.updated_at,
            "notify_state": ex.notify_state,
            "notify_attempts": ex.notify_attempts,
            "notify_at": self.notify_at.get(ex.id),
            "lifecycle_state": ex.lifecycle_state,
        }
        events = []
        for n, stored in enumerate(self._chain):
            if stored.event.exchange_id == ex.id and not stored.archived:
                events.append(
                    {
                        "seq": stored.event.seq,
                        "at": stored.event.at,
                        "kind": stored.event.kind,
                        "data": stored.data.decode(),
                        "hash": stored.hash.hex(),
                        "prev": (self._chain[n - 1].hash if n else GENESIS).hex(),
                    }
                )
        return ArchivedExchange(row=row, events=events)

    def _tombstone(self, exchange_id: str) -> None:
        """The exchange leaves; its events stay in the chain without content, as on SQL."""
        ex = self.exchanges.pop(exchange_id)
        self._keys.pop((ex.source, ex.idempotency_key), None)
        self.refs.pop(exchange_id, None)
        self.notify_at.pop(exchange_id, None)
        for stored in self._chain:
            if stored.event.exchange_id == exchange_id:
                stored.archived = True
                stored.data = b""
        self.events = [e for e in self.events if e.exchange_id != exchange_id]
