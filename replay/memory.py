"""The in-memory journal: the Journal contract without a file, for tests and tools.

Unit tests of the worker and the intake use it instead of a file; integration tests use the real
backends. Keep its behaviour identical to ``replay/sqlite.py``: the contract tests run against both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from federation.domain.errors import (
    IdempotencyConflict,
    JournalError,
    JournalUnavailable,
    LeaseLost,
    LifecycleMoved,
)
from federation.domain.models import (
    TRANSITIONS,
    Event,
    Exchange,
    NewExchange,
    State,
    StateChange,
)
from replay.journal import Query, Refusal

_OPEN = frozenset({State.RECEIVED, State.QUEUED, State.DELIVERING})


class InMemoryJournal:
    """A Journal kept in dictionaries; ``fail_writes`` simulates an unavailable store."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.exchanges: dict[str, Exchange] = {}
        self.events: list[Event] = []
        self.leases: dict[str, tuple[str, float]] = {}
        self.refusals: list[Refusal] = []
        self._keys: dict[tuple[str, str], str] = {}
        self.notify_at: dict[str, float] = {}
        self.refs: dict[str, tuple[bytes, ...]] = {}
        self.fail_writes = False
        self.opened = False

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
        self.events.append(replace(event, seq=len(self.events) + 1))

    def _history(self, exchange_id: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.exchange_id == exchange_id)

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        self._check()
        existing = self._keys.get((new.source, new.idempotency_key))
        if existing is not None:
            ex = self.exchanges[existing]
            if ex.request_hash != new.request_hash:
                raise IdempotencyConflict(existing)
            return replace(ex, events=self._history(existing)), False
        ex = new.as_received()
        self.exchanges[new.id] = ex
        self.refs[new.id] = new.applicant_refs
        self._keys[(new.source, new.idempotency_key)] = new.id
        self.leases[new.id] = (owner, lease_until)
        self._append(
            Event(
                exchange_id=new.id,
                kind="received",
                at=new.received_at,
                data=new.received_data(),
            )
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
        ex = self.exchanges.get(exchange_id)
        if ex is None:
            raise JournalError(f"no exchange {exchange_id}")
        holder = self.leases.get(exchange_id)
        if owner is not None and (holder is None or holder[0] != owner):
            raise LeaseLost(
                f"exchange {exchange_id} is leased to {holder[0] if holder else None!r}"
            )
        if change.expect is not None and ex.state not in change.expect:
            raise JournalError(f"exchange {exchange_id} is {ex.state.value}")
        if change.expect_lifecycle not in (None, ex.lifecycle_state):
            raise LifecycleMoved(f"exchange {exchange_id} is {ex.lifecycle_state} now")
        if change.state != ex.state and change.state not in TRANSITIONS[ex.state]:
            raise JournalError(f"no transition {ex.state.value} → {change.state.value}")
        for e in events:
            self._append(e)
        mapped = ex.mapped
        for e in events:
            if e.kind == "mapped":
                mapped = e.data.get("mapped")
        updated = replace(
            ex,
            state=change.state,
            updated_at=self._clock(),
            mapped=mapped,
            mapping_versions=change.mapping_versions
            if change.mapping_versions is not None
            else ex.mapping_versions,
            receipt=change.receipt if change.receipt is not None else ex.receipt,
            last_error=change.last_error if change.last_error is not None else ex.last_error,
            attempts=change.attempts if change.attempts is not None else ex.attempts,
            next_attempt_at=change.next_attempt_at,
            notify_state=(change.notify_as or change.state.value)
            if change.notify
            else ex.notify_state,
            notify_attempts=0 if change.notify else ex.notify_attempts,
            lifecycle_state=change.lifecycle_state or ex.lifecycle_state,
        )
        if change.notify:
            self.notify_at[exchange_id] = self._clock()
        self.exchanges[exchange_id] = updated
        if change.release_lease or change.state.terminal:
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
        out = []
        for xid in sorted(self.exchanges):
            ex = self.exchanges[xid]
            holder = self.leases.get(xid)
            free = holder is None or holder[1] < now
            due = ex.state in _OPEN or (
                ex.state is State.RETRY_WAIT
                and ex.next_attempt_at is not None
                and ex.next_attempt_at <= now
            )
            if not (free and due):
                continue
            if holder is not None and holder[0] != owner:
                self._append(
                    Event(
                        exchange_id=xid,
                        kind="lease_reclaimed",
                        at=now,
                        data={"from": holder[0], "to": owner, "state": ex.state.value},
                    )
                )
            self.leases[xid] = (owner, lease_until)
            out.append(replace(ex, events=self._history(xid)))
            if len(out) >= limit:
                break
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
        out = []
        for xid, at in sorted(self.notify_at.items(), key=lambda kv: kv[1]):
            holder = self.leases.get(xid)
            if at <= now and (holder is None or holder[1] < now):
                self.leases[xid] = (owner, lease_until)
                out.append(self.exchanges[xid])
                if len(out) >= limit:
                    break
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
        if done or next_at is None:
            del self.notify_at[exchange_id]
            self.exchanges[exchange_id] = replace(
                ex, notify_state=None, notify_attempts=ex.notify_attempts + 1
            )
        else:
            self.notify_at[exchange_id] = next_at
            self.exchanges[exchange_id] = replace(ex, notify_attempts=ex.notify_attempts + 1)

    async def search(self, query: Query) -> list[Exchange]:
        q = query
        out = []
        for xid in sorted(self.exchanges, reverse=True):
            ex = self.exchanges[xid]
            if (
                (q.states and ex.state.value not in q.states)
                or (q.lifecycle and ex.lifecycle_state not in q.lifecycle)
                or (q.partner is not None and ex.target != q.partner)
                or (q.service is not None and ex.service != q.service)
                or (q.source is not None and ex.source != q.source)
                or (q.exchange_id is not None and ex.id != q.exchange_id)
                or (q.idempotency_key is not None and ex.idempotency_key != q.idempotency_key)
                or (q.since is not None and ex.created_at < q.since)
                or (q.until is not None and ex.created_at >= q.until)
                or (q.before is not None and ex.id >= q.before)
                or (q.error and q.error not in str(ex.last_error or ""))
                or (q.applicant_ref is not None and q.applicant_ref not in self.refs.get(xid, ()))
            ):
                continue
            out.append(ex)
            if len(out) >= q.limit:
                break
        return out

    async def counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for ex in self.exchanges.values():
            out[ex.state.value] = out.get(ex.state.value, 0) + 1
        return out

    async def refuse(self, refusal: Refusal) -> None:
        self._check()
        self.refusals.append(refusal)
