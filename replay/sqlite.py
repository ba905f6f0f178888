"""The embedded SQLite journal: WAL, ``synchronous=FULL``, group commit on a writer thread.

No SQLite call runs on the event loop: writes go to one writer thread (see ``dbthread``), reads to one
reader thread with its own connection (WAL lets it read while the writer commits).

Payloads are sealed with the keys in ``<journal>.keys`` (made on first open; see ``replay/keys.py``),
the chain head is signed in every transaction that appends, and checkpoints go to
``<journal>.checkpoints`` after commits (at most every ``checkpoint_every`` seconds) and at close.
The journal file is created with mode 0600 (its -wal and -shm files take the same mode), and an
existing one open to group or others is narrowed to 0600 at open. Processes that write the same
file take turns through ``<journal>-turn`` (mode 0600 too; see ``replay/turn.py``). The file's
modes and its connections' settings are in ``replay/sqlitefile.py``.

This module is the request path's journal; what operators do to it (migrate, verify, rekey,
archive, the refusals list) is in ``replay/sqliteadmin.py``, run on the same two threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from federation.domain.errors import (
    FederationError,
    JournalDamaged,
    JournalError,
    JournalUnavailable,
    LeaseLost,
)
from federation.domain.models import Event, Exchange, NewExchange, StateChange
from replay import (
    formats,
    inherited,
    instances,
    refs,
    rekey,
    rows,
    rules,
    sessions,
    sqlitesql,
    tally,
    trail,
)
from replay import sets as mapping_sets
from replay.chain import ChainBroken, EventRow, HeadBroken
from replay.checkpoints import Cadence, Checkpoints, Timer, rolled_back
from replay.dbthread import DbThread
from replay.instances import Instance
from replay.journal import AuditEntry, Query, Refusal, TrailQuery
from replay.keys import KeyPlace, beside
from replay.rows import current
from replay.seal import Seal
from replay.search import SQLITE, UNREADABLE_ERROR, received_sql
from replay.search import search_sql as replay_search_sql
from replay.sessions import StoredSession
from replay.sets import MappingSets
from replay.sqliteadmin import SQLiteAdmin
from replay.sqlitefile import PAGE_SIZE as PAGE_SIZE  # where tests read it
from replay.sqlitefile import connect, private_file
from replay.turn import Turn

SHOWN = ", ".join(rows.SHOWN)

# Due work: replay.rules.due in SQL. Each half walks its own partial index (exchanges_open,
# exchanges_retry); the state lists are literals so that those indexes apply.
CLAIM = (
    "SELECT id, lease_owner, state FROM exchanges"
    f" WHERE state IN ({rules.in_list(rules.OPEN)})"
    "   AND (lease_until IS NULL OR lease_until < :now)"
    " UNION ALL"
    " SELECT id, lease_owner, state FROM exchanges"
    " WHERE state = 'retry_wait' AND next_attempt_at <= :now"
    "   AND (lease_until IS NULL OR lease_until < :now)"
    " ORDER BY id LIMIT :limit"
)


def search_sql(query: Query) -> tuple[str, list[Any]]:
    """The SQLite SELECT for a search (bench/journal.py asks SQLite for its plan)."""
    return replay_search_sql(query, SQLITE)


class SQLiteJournal(SQLiteAdmin):
    """Journal backend on one SQLite file (its JournalAdmin side in ``replay/sqliteadmin.py``)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        keys: KeyPlace | None = None,
        checkpoint_every: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_ms = int(busy_timeout * 1000)
        self._chain = inherited.FirstChain()
        self._chain.first = self._inherited
        self._inherit = (
            inherited.Inheritance()
        )  # what the first releases left (replay/inherited.py)
        self._writer: DbThread | None = None
        self._reader: DbThread | None = None
        self.keys = keys if keys is not None else beside(self.path)
        self.seal = Seal(None)
        self.sets = MappingSets()  # the mapping sets this process has read or written
        self.checkpoints = Checkpoints(self.keys.checkpoints, self.seal)
        self._cadence = Cadence(checkpoint_every)
        self._timer = Timer.of(self, self._cadence, clock)  # an idle journal's owed checkpoint
        self._mark = formats.Mark()  # the stored-format mark (replay/formats.py)

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    # -- lifetime -----------------------------------------------------------------------------

    async def open(self) -> None:
        if not self.path.parent.is_dir():
            raise JournalUnavailable(f"journal directory {self.path.parent} does not exist")
        await asyncio.to_thread(private_file, self.path)
        loop = asyncio.get_running_loop()
        self._writer = DbThread(
            self._connect_writer,
            loop,
            name="journal-writer",
            transactional=True,
            translate=self._translate,
            expected=(FederationError,),
            on_begin=self._begin,
            on_commit=self._end,
            after_commit=self._after_commit,
            observe=lambda seconds, writes: tally.committed(self, seconds, writes),
            turn=lambda: Turn.beside(self.path, self._busy_ms / 1000),
        )
        await asyncio.to_thread(self._writer.start_and_wait)
        self._reader = DbThread(
            self._connect_reader,
            loop,
            name="journal-reader",
            transactional=False,
            translate=self._translate,
        )
        await asyncio.to_thread(self._reader.start_and_wait)
        self._timer.start(loop)
        try:
            await self._use_keys()
            await self._check_end()
        except BaseException:
            await self.close()
            raise

    async def _check_end(self) -> None:
        """The journal's end against its latest checkpoint: one its own checkpoints show rolled
        back takes no more writes, and ``ping`` says why (the broker checks it at start). Cheap:
        the checkpoints file's last lines and two rows by primary key, never the chain. A
        checkpoints file a rekey left pending is settled first (``rekey.settle_interrupted``)."""

        def end_at(seq: int) -> Awaitable[tuple[int, bytes | None]]:
            return self._read(lambda conn: sqlitesql.end_at(conn, seq))

        await rekey.settle_interrupted(self, end_at)
        point = await asyncio.to_thread(self.checkpoints.latest)
        if point is not None:
            end, held = await end_at(point.seq)
            self._chain.refused = rolled_back(point, end, held)

    async def _use_keys(self) -> None:
        head = await self._read(lambda conn: conn.execute("SELECT mac FROM chain_head").fetchone())

        async def sign_first(seal: Seal) -> tuple[int, bytes] | None:
            point: tuple[int, bytes] | None = await self._write(
                lambda conn: sqlitesql.sign_first_head(conn, seal)
            )
            return point

        signed = head is not None and head[0] is not None
        await rekey.open_keys(self, signed, sign_first, self._clock())

    def use(self, seal: Seal) -> None:
        """Seal and sign with ``seal`` from now on."""
        self.seal = self._chain.seal = seal
        self.checkpoints = Checkpoints(self.keys.checkpoints, seal)

    def _begin(self, conn: sqlite3.Connection, early: bool) -> None:
        """As a batch begins (writer thread): the chain's head taken, the mark to raise reset, the
        ``~inherited`` plan made now if an op of the batch is not ``_late``'s, else left to the
        batch's first append (``replay/inherited.py``)."""
        self._mark.begin()
        self._chain.begin(conn)
        self._inherit.begin(lambda: inherited.plan_sqlite(conn), early=early)

    def _inherited(self, conn: sqlite3.Connection) -> EventRow | None:
        """At a transaction's first append: the ``~inherited`` event planned as it began (or now,
        if it was left to this append), if the journal's mark is still none."""
        counts = self._inherit.take(lambda: inherited.plan_sqlite(conn))
        if counts is None or not inherited.unmarked_sqlite(conn):
            return None
        return inherited.record(self.seal, self._clock(), counts)

    def _end(self, conn: sqlite3.Connection) -> None:
        """Last in a batch's transaction: the stored-format mark raised to the generation of what
        it wrote (``replay/formats.py``; any event the chain took is sealed), the head signed."""
        if self._chain.moved:
            self._mark.need(formats.SEALED)
        raising = self._mark.due()
        if raising is not None:
            conn.execute(raising)
        self._chain.end(conn)

    def _after_commit(self) -> None:
        """In the writer thread, after a commit: a checkpoint if one is due."""
        self._mark.committed()
        now = self._clock()
        point = self._cadence.due(self._chain.commit(), now)
        if point is not None:
            self.checkpoints.write(*point, now)
        elif self._cadence.wait(now) is not None:  # owed: written when due, however idle
            self._timer.owed_threadsafe()

    async def close(self) -> None:
        await self._timer.stop()
        writer = self._writer
        for thread in (self._reader, self._writer):
            if thread is not None and thread.is_alive():
                thread.stop()
                await asyncio.to_thread(thread.join)
        self._reader = self._writer = None
        if writer is not None:
            await asyncio.to_thread(self._final_checkpoint)

    def _final_checkpoint(self) -> None:
        """At close: a checkpoint of the head we last wrote, if it has none yet."""
        now = self._clock()
        point = self._cadence.due(None, now, closing=True)
        if point is not None:
            self.checkpoints.write(*point, now)

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            sqlitesql.migrate(conn)
            formats.check_sqlite(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only=ON")
        return conn

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, self._busy_ms)

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, FederationError):
            return exc
        if isinstance(exc, HeadBroken):
            return ChainBroken(f"journal {self.path}: {exc}")
        if isinstance(exc, sqlite3.Error):
            err = JournalUnavailable(f"journal {self.path}: {exc}")
            err.__cause__ = exc
            return err
        return exc

    def _write(
        self, op: Callable[[sqlite3.Connection], Any], prepare: Callable[[], None] | None = None
    ) -> asyncio.Future[Any]:
        if self._writer is None or not self._writer.is_alive():
            raise JournalUnavailable(f"journal {self.path} is not open")
        return self._writer.submit(op, prepare)

    def _late(
        self, op: Callable[[sqlite3.Connection], Any], prepare: Callable[[], None] | None = None
    ) -> asyncio.Future[Any]:
        """``_write`` for an op that writes no event, refusal row or mark before it appends to the
        chain: the ``~inherited`` plan (a read of every event) is left to its first append."""
        if self._writer is None or not self._writer.is_alive():
            raise JournalUnavailable(f"journal {self.path} is not open")
        return self._writer.submit(op, prepare, early=False)

    def _current_seal(self) -> Seal:
        return self.seal

    def _read(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        if self._reader is None or not self._reader.is_alive():
            raise JournalUnavailable(f"journal {self.path} is not open")
        return self._reader.submit(op)

    # -- the Journal interface ---------------------------------------------------------------

    @property
    def writes_refused(self) -> bool:
        """The writer's last write failed for want of the disk and it has found no room since."""
        return self._writer is not None and self._writer.failing is not None

    async def ping(self) -> None:
        if self._chain.refused is not None:
            raise ChainBroken(f"journal {self.path}: {self._chain.refused}")
        await self._late(lambda conn: conn.execute("SELECT 1").fetchone())
        if self._writer is not None and self._writer.failing:  # reads answer, writes do not
            raise JournalUnavailable(f"journal {self.path}: writes fail: {self._writer.failing}")

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        received = Event(
            exchange_id=new.id, kind="received", at=new.received_at, data=new.received_data()
        )
        sealing = rows.Sealing(self._current_seal, new.id, [received], new.received_at)

        def op(conn: sqlite3.Connection) -> tuple[Exchange, bool]:
            cur = conn.execute(
                "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
                " request_hash, state, lease_owner, lease_until, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?)"
                " ON CONFLICT (idempotency_key, source) DO NOTHING",
                (
                    new.id,
                    new.direction.value,
                    new.source,
                    new.target,
                    new.service,
                    new.idempotency_key,
                    rows.hash_column(new.request_hash),
                    owner,
                    lease_until,
                    new.received_at,
                    new.received_at,
                ),
            )
            if cur.rowcount == 0:
                row = conn.execute(
                    "SELECT * FROM exchanges WHERE source = ? AND idempotency_key = ?",
                    (new.source, new.idempotency_key),
                ).fetchone()
                rules.repeat_of(
                    new, exchange_id=row["id"], request_hash=rows.hash_text(row["request_hash"])
                )
                history = sqlitesql.history(conn, row["id"], self.seal)
                return sqlitesql.exchange(conn, row, history, self.seal, self.sets), False
            self._mark.row(self.seal, new.id)
            self._chain.append(conn, sealing.rows(rows.shown_digest(rows.created(new))))
            if new.applicant_refs:
                conn.executemany(
                    "INSERT OR IGNORE INTO exchange_refs (ref, exchange_id) VALUES (?, ?)",
                    [(ref, new.id) for ref in refs.kept_all(new.applicant_refs)],
                )
            return new.as_received(), True

        result: tuple[Exchange, bool] = await self._late(op, sealing.prepare)
        return result

    async def record(
        self,
        exchange_id: str,
        events: Sequence[Event],
        change: StateChange,
        *,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> None:
        now = self._clock()
        items: list[mapping_sets.Item] = []  # the mapping sets this write refers to
        versions = self.sets.column(change.mapping_versions, items)
        events = self.sets.referring(events, items)

        def op(conn: sqlite3.Connection) -> None:
            # The guarded UPDATE runs first: if it matches nothing, nothing has been written. It
            # is made here, its partner's words sealed with the seal in force now (as the events:
            # ``rows.Sealing``), never with one a rekey retired while the write waited.
            sql, args = sqlitesql.record_update(
                exchange_id, change, now, versions, owner, lease_until, self.seal
            )
            shown = conn.execute(sql, args).fetchone()
            if shown is None:
                row = conn.execute(
                    "SELECT state, lease_owner, lifecycle_state, notify_state, lifecycle_steps"
                    " FROM exchanges WHERE id = ?",
                    (exchange_id,),
                ).fetchone()
                raise rules.refusal_reason(exchange_id, current(row), change, owner)
            self._mark.row(self.seal, exchange_id, change.last_error)
            conn.executemany(mapping_sets.INSERT_SQLITE, items)
            self._chain.append(conn, sealing.rows(rows.shown_digest(shown)))

        sealing = rows.Sealing(self._current_seal, exchange_id, events, now)
        await self._late(op, sealing.prepare)

    async def get(self, exchange_id: str) -> Exchange | None:
        def op(conn: sqlite3.Connection) -> Exchange | None:
            row = conn.execute("SELECT * FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
            if row is None:
                return None
            history = sqlitesql.history(conn, exchange_id, self.seal)
            return sqlitesql.exchange(conn, row, history, self.seal, self.sets)

        result: Exchange | None = await self._read(op)
        return result

    async def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        def op(conn: sqlite3.Connection) -> list[Exchange]:
            due = conn.execute(CLAIM, {"now": now, "limit": limit}).fetchall()
            out = []
            for r in due:
                if r["lease_owner"] is not None and r["lease_owner"] != owner:
                    reclaim = {"from": r["lease_owner"], "to": owner, "state": r["state"]}
                    event = Event(exchange_id=r["id"], kind="lease_reclaimed", at=now, data=reclaim)
                    self._chain.append(conn, rows.stored_events(self.seal, r["id"], [event]))
                conn.execute(
                    "UPDATE exchanges SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, lease_until, r["id"]),
                )
                row = conn.execute("SELECT * FROM exchanges WHERE id = ?", (r["id"],)).fetchone()
                history = sqlitesql.history(conn, r["id"], self.seal)
                out.append(sqlitesql.exchange(conn, row, history, self.seal, self.sets))
            return out

        result: list[Exchange] = await self._late(op)
        return result

    async def renew(self, *, owner: str, ids: Sequence[str], lease_until: float) -> int:
        id_list = list(ids)

        def op(conn: sqlite3.Connection) -> int:
            total = 0
            for i in range(0, len(id_list), 500):
                chunk = id_list[i : i + 500]
                marks = ",".join("?" * len(chunk))
                cur = conn.execute(
                    f"UPDATE exchanges SET lease_until = ? WHERE lease_owner = ? AND id IN ({marks})",
                    (lease_until, owner, *chunk),
                )
                total += cur.rowcount
            return total

        if not id_list:
            return 0
        result: int = await self._late(op)
        return result

    async def release(self, *, owner: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(sql, (owner,)).rowcount for sql in sqlitesql.RELEASE)

        released: int = await self._late(op)
        return released

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        def op(conn: sqlite3.Connection) -> list[Exchange]:
            claimed = conn.execute(
                "UPDATE exchanges SET lease_owner = ?, lease_until = ?"
                " WHERE id IN (SELECT id FROM exchanges WHERE notify_state IS NOT NULL"
                "   AND notify_at <= ? AND (lease_until IS NULL OR lease_until < ?)"
                "   ORDER BY notify_at LIMIT ?)"
                " RETURNING *",
                (owner, lease_until, now, now, limit),
            ).fetchall()
            return [sqlitesql.exchange(conn, r, (), self.seal, self.sets) for r in claimed]

        result: list[Exchange] = await self._late(op)
        return result

    async def finish_notification(
        self,
        exchange_id: str,
        events: Sequence[Event],
        *,
        owner: str,
        done: bool,
        next_at: float | None = None,
    ) -> None:
        give_up = done or next_at is None

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE exchanges SET lease_owner = NULL, lease_until = NULL,"
                " notify_attempts = notify_attempts + 1, notify_at = ?,"
                " notify_state = CASE WHEN ? THEN NULL ELSE notify_state END"
                " WHERE id = ? AND lease_owner = ? AND notify_state IS NOT NULL",
                (next_at, give_up, exchange_id, owner),
            )
            if cur.rowcount == 0:
                raise LeaseLost(
                    f"callback of exchange {exchange_id} is no longer leased to {owner}"
                )
            self._chain.append(conn, rows.stored_events(self.seal, exchange_id, events))

        await self._late(op)

    async def append(self, exchange_id: str, events: Sequence[Event]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            found = conn.execute("SELECT 1 FROM exchanges WHERE id = ?", (exchange_id,))
            if found.fetchone() is None:
                raise JournalError(f"no exchange {exchange_id}")
            self._chain.append(conn, rows.stored_events(self.seal, exchange_id, events))

        await self._late(op)

    async def search(self, query: Query) -> list[Exchange]:
        sql, args = search_sql(query)

        def op(conn: sqlite3.Connection) -> list[Exchange]:
            try:
                found = conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:  # only the search by error reads JSON in SQL
                if not query.error or "JSON" not in str(exc):
                    raise
                raise JournalDamaged(f"{UNREADABLE_ERROR} ({exc})") from None
            out = [sqlitesql.exchange(conn, r, (), self.seal, self.sets) for r in found]
            if not (query.with_supplement_of and out):
                return out
            received = conn.execute(*received_sql([x.id for x in out], SQLITE)).fetchall()
            return rows.with_supplements(out, received, self.seal)

        result: list[Exchange] = await self._read(op)
        return result

    async def tally(self) -> tally.Tally:
        result: tally.Tally = await self._read(tally.sqlite_tally)
        return result

    async def counts(self) -> Mapping[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(tally.STATES_SQLITE).fetchall()
            return {r[0]: r[1] for r in rows}

        result: dict[str, int] = await self._read(op)
        return result

    async def announce(self, instance: Instance) -> None:
        await self._late(lambda conn: instances.sqlite_announce(conn, instance))

    async def withdraw(self, instance_id: str) -> None:
        await self._late(lambda conn: conn.execute(instances.WITHDRAW_SQLITE, (instance_id,)))

    async def instances(self, *, seen_since: float) -> list[Instance]:
        result: list[Instance] = await self._read(lambda c: instances.sqlite_seen(c, seen_since))
        return result

    async def open_session(self, session: StoredSession, *, now: float) -> None:
        await self._late(lambda conn: sessions.sqlite_open(conn, session, now))

    async def session(self, token_hash: bytes, *, now: float) -> StoredSession | None:
        found: StoredSession | None = await self._read(
            lambda conn: sessions.sqlite_get(conn, token_hash, now)
        )
        return found

    async def end_session(self, token_hash: bytes) -> None:
        await self._late(lambda conn: conn.execute(sessions.END_SQLITE, (token_hash,)))

    def session_mac(self, parts: Sequence[bytes]) -> bytes | None:
        return self.seal.sign(sessions.MAC_TAG, parts)

    async def refuse(self, refusal: Refusal) -> None:
        # Sealed in the write, under the seal in force then (a rekey may come between): a
        # refusal is rare enough that its turn can hold the sealing too.
        def op(conn: sqlite3.Connection) -> None:
            values = rows.refusal_values(self.seal, refusal)
            seq = conn.execute(
                "INSERT INTO refusals (at, remote, method, path, status, problem, detail,"
                " idempotency_key, body, body_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            ).lastrowid
            assert seq is not None  # an INSERT into a rowid table always has one
            self._chain.append(conn, [rows.refusal_event(self.seal, seq, refusal.at, values)])

        await self._write(op)

    async def note(self, entry: AuditEntry) -> None:
        # Sealed in the write, as a refusal is.
        await self._late(
            lambda conn: self._chain.append(conn, [trail.audit_event(self.seal, entry)])
        )

    async def trail(self, query: TrailQuery) -> list[AuditEntry]:
        def op(conn: sqlite3.Connection) -> list[AuditEntry]:
            return trail.entries(conn.execute(trail.TRAIL_SQL), self.seal, query)

        result: list[AuditEntry] = await self._read(op)
        return result
