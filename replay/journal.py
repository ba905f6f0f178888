"""The journal interface: every exchange and everything that happened to it, written before acting.

Two faces, as procrastinate's manager and connector: the runtime talks only to ``Journal``; operators
(``tongban journal …``) use ``JournalAdmin`` as well, and ``Backend`` is both, which is what
``replay.factory.open_journal`` returns. The backends (``replay/sqlite.py``, ``replay/postgres.py``,
``replay/memory.py``) only store: the rules they all obey live once in ``replay/rules.py``, search
once in ``replay/search.py``, and ``tests/integration/test_journal_contract.py`` runs every
behaviour on each. Contract, for every backend:

* ``create`` commits the exchange (state ``received``, leased to ``owner``) and its ``received`` event
  atomically before returning; the same (source, idempotency key) with the same request hash returns the
  stored exchange with ``created=False``; with another hash it raises IdempotencyConflict.
* ``record`` appends events and applies a StateChange atomically. With ``owner`` set, it succeeds only
  while that owner holds the lease (else LeaseLost); with ``expect`` set, only from those states.
* ``claim`` leases due work: exchanges whose lease expired (judged by expiry alone) in an unfinished
  state, and ``retry_wait`` exchanges whose ``next_attempt_at`` has come.
* Ended states (``replay.rules.ENDED``: delivered, failed, rejected, unconfirmed) release the lease
  and move again only by a replay.
* A change with ``notify`` marks the end state for the source's callback; ``claim_notifications``
  leases those due, ``finish_notification`` records each try.
* ``append`` adds events to an exchange's history and nothing else: no lease, state or callback
  mark is checked or moved. It keeps what a try did after its lease was lost (another instance
  holds the mark or the work now and tries again): the journal holds every attempt.
* Failures of the storage underneath surface as JournalUnavailable, never as driver exceptions.
* ``note`` appends an audit entry (who read personal data, replayed, reloaded or was refused) as a
  hidden ``~audit`` event of the chain; ``trail`` finds them again, newest first.
* ``announce`` records which instance serves which configuration version (``replay/instances.py``),
  ``withdraw`` removes it at a clean stop, ``instances`` lists those seen since a time.
* ``events_of`` and ``archived_markers`` (``JournalAdmin``, the reads ``ArchiveReads`` names) give
  what an archive is checked against (``replay.archive.compare``): every event of some exchanges,
  live or tombstoned, with its hash and no content; the ``~archived`` markers made in a span.
* ``open_session``, ``session`` and ``end_session`` keep the console's sign-in sessions
  (``replay/sessions.py``): by the hash of their token, shared by every process.
* Payloads are sealed and the chain head signed with the journal's keys (docs/security.md); a
  journal whose chain head does not hold refuses to append (ChainBroken) until someone looks, as
  does one that ends before its latest checkpoint, found at open (``ping`` raises it too: the
  broker does not start on a rolled-back journal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from federation.domain.models import Event, Exchange, NewExchange, StateChange
from replay.chain import Break
from replay.instances import Instance
from replay.sessions import StoredSession
from replay.tally import Tally


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """An intake request we refused: kept so that no submitted application vanishes unrecorded."""

    at: float
    remote: str
    method: str
    path: str
    status: int
    problem: str
    detail: str
    idempotency_key: str | None
    body: bytes  # as received, up to the size limit (empty when over it)
    body_bytes: int


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One audited act: who (principal id and role), what, on what, when, from where and why."""

    at: float
    who: str
    role: str
    action: str  # show, reveal, search, replay, reload, audit, journal-show … or refused:<action>
    target: str = ""  # an exchange id, a filter, a path
    remote: str = ""  # the client address, or 'cli' with the host's name
    reason: str = ""
    outcome: str = "ok"  # or the refusal's problem (forbidden, unauthenticated, …)


@dataclass(frozen=True, kw_only=True)
class TrailQuery:
    """Which audit entries to show (every given filter must hold), newest first."""

    who: str | None = None
    action: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


@dataclass(frozen=True, kw_only=True)
class Query:
    """What support staff look for; every given filter must hold. Newest first."""

    states: tuple[str, ...] = ()
    lifecycle: tuple[str, ...] = ()  # where the application stands at the partner
    partner: str | None = None
    service: str | None = None
    source: str | None = None
    since: float | None = None  # received at or after (epoch seconds)
    until: float | None = None  # received before
    error: str | None = None  # text in the last error
    exchange_id: str | None = None
    idempotency_key: str | None = None
    applicant_ref: bytes | None = None  # keyed hash, see replay/refs.py
    before: str | None = None  # page cursor: exchanges older than this id
    limit: int = 50
    # Not a filter: each result also says which exchange it supplements (补正), read from its
    # ``received`` event (one more read and opening per result, so only where someone sees it).
    with_supplement_of: bool = False


class Journal(Protocol):
    """Durable store of exchanges, their events and refused intake requests."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Flush and disconnect."""

    async def ping(self) -> None:
        """Raise JournalUnavailable unless a write could succeed now (ChainBroken when the
        journal's checkpoints showed it rolled back at open)."""

    @property
    def writes_refused(self) -> bool:
        """True while this process's journal refuses writes for want of the disk's room, from
        the refused write until it finds room again (``tongban_journal_writes_refused``)."""
        ...

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        """Store a new exchange, or return the one its idempotency key already names."""

    async def record(
        self,
        exchange_id: str,
        events: Sequence[Event],
        change: StateChange,
        *,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> None:
        """Append events and move the exchange's current state."""

    async def get(self, exchange_id: str) -> Exchange | None:
        """The exchange with its full event history."""

    async def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        """Lease up to ``limit`` exchanges that need work, with history."""

    async def renew(self, *, owner: str, ids: Sequence[str], lease_until: float) -> int:
        """Extend the owner's leases; returns how many it still held."""

    async def release(self, *, owner: str) -> int:
        """Give up every lease ``owner`` holds (a draining instance): due work is claimable by
        any instance at once, not when the leases expire; returns how many it held."""

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        """Lease ended exchanges whose callback is due (without history)."""

    async def finish_notification(
        self,
        exchange_id: str,
        events: Sequence[Event],
        *,
        owner: str,
        done: bool,
        next_at: float | None = None,
    ) -> None:
        """Record a callback attempt: ``done`` clears it, else it is due again at ``next_at``."""

    async def append(self, exchange_id: str, events: Sequence[Event]) -> None:
        """Append ``events`` to the exchange's history (chained and sealed as any), its row
        untouched: neither its lease, state, callback mark nor next try is checked or moved."""

    async def search(self, query: Query) -> list[Exchange]:
        """Exchanges matching ``query``, newest first, without history (``supplement_of`` only
        with ``query.with_supplement_of``)."""

    async def counts(self) -> Mapping[str, int]:
        """Number of exchanges per state."""

    async def tally(self) -> Tally:
        """Exchanges per state, partner and service, the oldest waiting per partner and the
        callbacks owed (``replay/tally.py``), for /metrics."""

    async def announce(self, instance: Instance) -> None:
        """Record (or refresh) a running instance and the configuration version it serves."""

    async def withdraw(self, instance_id: str) -> None:
        """Forget an instance that stops cleanly."""

    async def instances(self, *, seen_since: float) -> list[Instance]:
        """The instances that announced themselves at or after ``seen_since``."""

    async def open_session(self, session: StoredSession, *, now: float) -> None:
        """Keep a new console session (dropping expired ones)."""

    async def session(self, token_hash: bytes, *, now: float) -> StoredSession | None:
        """The live session of a token's hash, or None (unknown, ended or expired)."""

    async def end_session(self, token_hash: bytes) -> None:
        """End a console session (sign-out)."""

    def session_mac(self, parts: Sequence[bytes]) -> bytes | None:
        """HMAC-SHA256 of a console session's parts under the journal's MAC key, which is kept
        outside the journal; None when the journal has no keys."""

    async def refuse(self, refusal: Refusal) -> None:
        """Keep a refused intake request."""

    async def note(self, entry: AuditEntry) -> None:
        """Append an audit entry to the chain (``replay/trail.py``)."""

    async def trail(self, query: TrailQuery) -> list[AuditEntry]:
        """The audit entries ``query`` matches, newest first."""


class JournalEvent(NamedTuple):
    """An event as an archive is compared with the journal: where it is in the chain, whose it
    is, when, what kind, its hash, and whether its content left for an archive (a tombstone)."""

    seq: int
    exchange_id: str
    at: float
    kind: str
    hash: bytes
    archived: bool

    @classmethod
    def of(cls, row: Iterable[Any]) -> JournalEvent:
        """From a stored row (seq, exchange_id, at, kind, hash, archived), as a driver reads it."""
        seq, xid, at, kind, digest, archived = row
        return cls(int(seq), str(xid), float(at), str(kind), bytes(digest), bool(archived))


@runtime_checkable
class ArchiveReads(Protocol):
    """The journal's reads an archive is checked against (``replay.archive.compare``)."""

    async def events_of(self, ids: Sequence[str]) -> list[JournalEvent]:
        """Every event of the exchanges ``ids`` names, live or tombstoned (their ``~archived``
        markers too), in chain order; none of their content."""

    async def archived_markers(self, first: float, last: float) -> list[tuple[str, float]]:
        """(exchange id, time) of every ``~archived`` marker made at ``first`` … ``last``
        (both included), in chain order: which exchanges were archived in that span."""


class JournalAdmin(ArchiveReads, Protocol):
    """What operators do to a journal besides running the broker on it (``tongban journal …``)."""

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations without opening for work; the names applied, in order."""

    async def verify(self) -> tuple[int, Break | None]:
        """Check the hash chain, its signed head, the checkpoints and the rows readers are shown
        (``replay/audit.py``): the number of events checked and the first problem, if any."""

    async def rekey(self) -> int:
        """Seal every payload again under a new data key, the chain kept whole
        (``replay/rekey.py``); the number of values sealed again."""

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        """Move ended exchanges last changed before ``older_than`` to the archive file ``out``
        (never overwritten); returns (exchanges, events) archived."""

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        """The most recent refused intake requests, newest first."""


class Backend(Journal, JournalAdmin, Protocol):
    """A journal backend: the runtime's face and the operators' (what ``open_journal`` returns)."""
