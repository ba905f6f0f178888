"""The embedded SQLite journal: WAL, ``synchronous=FULL``, group commit on a writer thread.

No SQLite call runs on the event loop: writes go to one writer thread (see ``dbthread``), reads to one
reader thread with its own connection (WAL lets it read while the writer commits).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from federation.domain.errors import (
    FederationError,
    IdempotencyConflict,
    JournalError,
    JournalUnavailable,
    LeaseLost,
    LifecycleMoved,
)
from federation.domain.ids import id_floor
from federation.domain.models import (
    TRANSITIONS,
    Direction,
    Event,
    Exchange,
    NewExchange,
    State,
    StateChange,
    json_default,
)
from replay.archive import ArchivedExchange, ArchiveWriter
from replay.chain import GENESIS, Break, Chain, verify
from replay.dbthread import DbThread
from replay.journal import Query, Refusal

OPEN_STATES = ("received", "queued", "delivering")
TERMINAL = ("delivered", "failed", "rejected")


def dumps(value: Any) -> bytes:
    """JSON for the journal: Decimals keep their exact digits as strings."""
    return orjson.dumps(value, default=json_default)


def _loads(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


class SQLiteJournal:
    """Journal backend on one SQLite file."""

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, busy_timeout: float = 5.0
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_ms = int(busy_timeout * 1000)
        self._chain = Chain()
        self._writer: DbThread | None = None
        self._reader: DbThread | None = None

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    # -- lifetime -----------------------------------------------------------------------------

    async def open(self) -> None:
        if not self.path.parent.is_dir():
            raise JournalUnavailable(f"journal directory {self.path.parent} does not exist")
        loop = asyncio.get_running_loop()
        self._writer = DbThread(
            self._connect_writer,
            loop,
            name="journal-writer",
            transactional=True,
            translate=self._translate,
            expected=(FederationError,),
            on_begin=self._chain.begin,
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

    async def close(self) -> None:
        for thread in (self._reader, self._writer):
            if thread is not None and thread.is_alive():
                thread.stop()
                await asyncio.to_thread(thread.join)
        self._reader = self._writer = None

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn)
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only=ON")
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        return conn

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, FederationError):
            return exc
        if isinstance(exc, sqlite3.Error):
            err = JournalUnavailable(f"journal {self.path}: {exc}")
            err.__cause__ = exc
            return err
        return exc

    def _write(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        if self._writer is None or not self._writer.is_alive():
            raise JournalUnavailable(f"journal {self.path} is not open")
        return self._writer.submit(op)

    def _read(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        if self._reader is None or not self._reader.is_alive():
            raise JournalUnavailable(f"journal {self.path} is not open")
        return self._reader.submit(op)

    # -- the Journal interface ---------------------------------------------------------------

    async def ping(self) -> None:
        await self._write(lambda conn: conn.execute("SELECT 1").fetchone())

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        def op(conn: sqlite3.Connection) -> tuple[Exchange, bool]:
            cur = conn.execute(
                "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
                " request_hash, state, lease_owner, lease_until, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?)"
                " ON CONFLICT (source, idempotency_key) DO NOTHING",
                (
                    new.id,
                    new.direction.value,
                    new.source,
                    new.target,
                    new.service,
                    new.idempotency_key,
                    new.request_hash,
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
                if row["request_hash"] != new.request_hash:
                    raise IdempotencyConflict(row["id"])
                return _exchange(row, _events(conn, row["id"])), False
            data = new.received_data()
            self._chain.append(conn, [(new.id, new.received_at, "received", dumps(data))])
            if new.applicant_refs:
                conn.executemany(
                    "INSERT OR IGNORE INTO exchange_refs (ref, exchange_id) VALUES (?, ?)",
                    [(ref, new.id) for ref in new.applicant_refs],
                )
            return new.as_received(), True

        result: tuple[Exchange, bool] = await self._write(op)
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

        allowed = PREDECESSORS[change.state]
        if change.expect is not None:
            allowed = allowed & change.expect
        sets = ["state = ?", "updated_at = ?", "next_attempt_at = ?"]
        args: list[Any] = [change.state.value, now, change.next_attempt_at]
        for column, value in (
            ("mapping_versions", change.mapping_versions),
            ("receipt", change.receipt),
            ("last_error", change.last_error),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(dumps(value))
        if change.attempts is not None:
            sets.append("attempts = ?")
            args.append(change.attempts)
        if change.lifecycle_state is not None:
            sets.append("lifecycle_state = ?")
            args.append(change.lifecycle_state)
        if change.notify:
            sets.append("notify_state = ?, notify_attempts = 0, notify_at = ?")
            args += [change.notify_as or change.state.value, now]
        if change.release_lease or change.state.terminal:
            sets.append("lease_owner = NULL, lease_until = NULL")
        elif lease_until is not None:
            sets.append("lease_until = ?")
            args.append(lease_until)
        where = f"id = ? AND state IN ({','.join('?' * len(allowed))})"
        args += [exchange_id, *sorted(s.value for s in allowed)]
        if owner is not None:
            where += " AND lease_owner = ?"
            args.append(owner)
        if change.expect_lifecycle is not None:
            where += " AND lifecycle_state = ?"
            args.append(change.expect_lifecycle)
        sql = f"UPDATE exchanges SET {', '.join(sets)} WHERE {where}"
        rows = [(exchange_id, e.at, e.kind, dumps(e.data)) for e in events]

        def op(conn: sqlite3.Connection) -> None:
            # The guarded UPDATE runs first: if it matches nothing, nothing has been written.
            if conn.execute(sql, args).rowcount == 0:
                raise _refusal(conn, exchange_id, change, owner)
            self._chain.append(conn, rows)

        await self._write(op)

    async def get(self, exchange_id: str) -> Exchange | None:
        def op(conn: sqlite3.Connection) -> Exchange | None:
            row = conn.execute("SELECT * FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
            return None if row is None else _exchange(row, _events(conn, exchange_id))

        result: Exchange | None = await self._read(op)
        return result

    async def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        def op(conn: sqlite3.Connection) -> list[Exchange]:
            rows = conn.execute(
                "SELECT id, lease_owner, state FROM exchanges"
                " WHERE state IN ('received', 'queued', 'delivering')"
                "   AND (lease_until IS NULL OR lease_until < :now)"
                " UNION ALL"
                " SELECT id, lease_owner, state FROM exchanges"
                " WHERE state = 'retry_wait' AND next_attempt_at <= :now"
                "   AND (lease_until IS NULL OR lease_until < :now)"
                " ORDER BY id LIMIT :limit",
                {"now": now, "limit": limit},
            ).fetchall()
            out = []
            for r in rows:
                if r["lease_owner"] is not None and r["lease_owner"] != owner:
                    reclaim = {"from": r["lease_owner"], "to": owner, "state": r["state"]}
                    self._chain.append(conn, [(r["id"], now, "lease_reclaimed", dumps(reclaim))])
                conn.execute(
                    "UPDATE exchanges SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, lease_until, r["id"]),
                )
                row = conn.execute("SELECT * FROM exchanges WHERE id = ?", (r["id"],)).fetchone()
                out.append(_exchange(row, _events(conn, r["id"])))
            return out

        result: list[Exchange] = await self._write(op)
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
        result: int = await self._write(op)
        return result

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        def op(conn: sqlite3.Connection) -> list[Exchange]:
            rows = conn.execute(
                "UPDATE exchanges SET lease_owner = ?, lease_until = ?"
                " WHERE id IN (SELECT id FROM exchanges WHERE notify_state IS NOT NULL"
                "   AND notify_at <= ? AND (lease_until IS NULL OR lease_until < ?)"
                "   ORDER BY notify_at LIMIT ?)"
                " RETURNING *",
                (owner, lease_until, now, now, limit),
            ).fetchall()
            return [_exchange(r, ()) for r in rows]

        result: list[Exchange] = await self._write(op)
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
        rows = [(exchange_id, e.at, e.kind, dumps(e.data)) for e in events]
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
            self._chain.append(conn, rows)

        await self._write(op)

    async def migrate(self) -> list[str]:
        """Apply pending migrations (``tongban journal migrate``); the files applied, in order."""

        def run() -> list[str]:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return migrate(conn)
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(run)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"journal {self.path}: {exc}") from exc

    async def verify(self) -> tuple[int, Break | None]:
        """Walk the hash chain of every event; the number checked and the first break, if any."""

        def op(conn: sqlite3.Connection) -> tuple[int, Break | None]:
            cur = conn.execute(
                "SELECT seq, exchange_id, at, kind, data, hash, archived FROM events ORDER BY seq"
            )
            count, broken, _ = verify(iter(cur))
            return count, broken

        result: tuple[int, Break | None] = await self._read(op)
        return result

    async def search(self, query: Query) -> list[Exchange]:
        sql, args = search_sql(query)

        def op(conn: sqlite3.Connection) -> list[Exchange]:
            return [_exchange(r, ()) for r in conn.execute(sql, args).fetchall()]

        result: list[Exchange] = await self._read(op)
        return result

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        """Move closed exchanges last changed before ``older_than`` to an archive file.

        Open exchanges, and ended ones with a callback still pending, are never archived. Works in
        chunks so intake is never held up for long; returns (exchanges, events) archived.
        """
        writer = await asyncio.to_thread(
            ArchiveWriter, out, created_at=self._clock(), older_than=older_than
        )
        try:
            while True:
                batch: list[ArchivedExchange] = await self._write(
                    lambda conn: _archive_candidates(conn, older_than, chunk)
                )
                if not batch:
                    break
                await asyncio.to_thread(writer.write, batch)
                await self._write(lambda conn, b=batch: _tombstone(conn, b))  # type: ignore[misc]
        finally:
            await asyncio.to_thread(writer.close)
        return writer.exchanges, writer.events

    async def counts(self) -> Mapping[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT state, count(*) FROM exchanges GROUP BY state").fetchall()
            return {r[0]: r[1] for r in rows}

        result: dict[str, int] = await self._read(op)
        return result

    async def refuse(self, refusal: Refusal) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO refusals (at, remote, method, path, status, problem, detail,"
                " idempotency_key, body, body_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    refusal.at,
                    refusal.remote,
                    refusal.method,
                    refusal.path,
                    refusal.status,
                    refusal.problem,
                    refusal.detail,
                    refusal.idempotency_key,
                    refusal.body,
                    refusal.body_bytes,
                ),
            )

        await self._write(op)

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        """The most recent refused intake requests, newest first."""

        def op(conn: sqlite3.Connection) -> list[Refusal]:
            rows = conn.execute(
                "SELECT * FROM refusals ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
            return [
                Refusal(
                    at=r["at"],
                    remote=r["remote"],
                    method=r["method"],
                    path=r["path"],
                    status=r["status"],
                    problem=r["problem"],
                    detail=r["detail"],
                    idempotency_key=r["idempotency_key"],
                    body=bytes(r["body"]),
                    body_bytes=r["body_bytes"],
                )
                for r in rows
            ]

        result: list[Refusal] = await self._read(op)
        return result


def search_sql(q: Query) -> tuple[str, list[Any]]:
    """The SELECT for a search: index-friendly filters, newest first by id (ids sort by time)."""
    where: list[str] = []
    args: list[Any] = []
    if q.states:
        where.append(f"state IN ({','.join('?' * len(q.states))})")
        args += list(q.states)
    if q.lifecycle:
        where.append(f"lifecycle_state IN ({','.join('?' * len(q.lifecycle))})")
        args += list(q.lifecycle)
    for column, value in (
        ("target", q.partner),
        ("service", q.service),
        ("source", q.source),
        ("id", q.exchange_id),
        ("idempotency_key", q.idempotency_key),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    # Ids begin with their creation time, so a time range is an id range (an index range scan).
    if q.since is not None:
        where.append("id >= ?")
        args.append(id_floor(q.since))
    if q.until is not None:
        where.append("id < ?")
        args.append(id_floor(q.until))
    if q.before is not None:
        where.append("id < ?")
        args.append(q.before)
    if q.error:
        where.append("instr(CAST(last_error AS TEXT), ?) > 0")
        args.append(q.error)
    if q.applicant_ref is not None:
        where.append("id IN (SELECT exchange_id FROM exchange_refs WHERE ref = ?)")
        args.append(q.applicant_ref)
    sql = "SELECT * FROM exchanges"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(max(1, min(q.limit, 1000)))
    return sql, args


PREDECESSORS: dict[State, frozenset[State]] = {
    target: frozenset({target} | {s for s, nexts in TRANSITIONS.items() if target in nexts})
    for target in State
}


def _refusal(
    conn: sqlite3.Connection, exchange_id: str, change: StateChange, owner: str | None
) -> JournalError:
    """Why a guarded UPDATE matched no row."""
    row = conn.execute(
        "SELECT state, lease_owner, lifecycle_state FROM exchanges WHERE id = ?", (exchange_id,)
    ).fetchone()
    return refusal_reason(exchange_id, row, change, owner)


def refusal_reason(
    exchange_id: str, row: Any, change: StateChange, owner: str | None
) -> JournalError:
    """Why a guarded UPDATE matched no row, from the exchange's row now (or None): the same
    messages on every backend."""
    if row is None:
        return JournalError(f"no exchange {exchange_id}")
    if owner is not None and row["lease_owner"] != owner:
        return LeaseLost(f"exchange {exchange_id} is leased to {row['lease_owner']!r} now")
    current = State(row["state"])
    if change.expect is not None and current not in change.expect:
        return JournalError(
            f"exchange {exchange_id} is {current.value}, expected one of "
            f"{', '.join(sorted(s.value for s in change.expect))}"
        )
    if change.expect_lifecycle not in (None, row["lifecycle_state"]):
        return LifecycleMoved(
            f"exchange {exchange_id} is {row['lifecycle_state']} at the partner now, "
            f"not {change.expect_lifecycle}"
        )
    return JournalError(
        f"exchange {exchange_id}: no transition {current.value} → {change.state.value}"
    )


def _archive_candidates(
    conn: sqlite3.Connection, older_than: float, limit: int
) -> list[ArchivedExchange]:
    rows = conn.execute(
        "SELECT * FROM exchanges WHERE state IN ('delivered', 'failed', 'rejected')"
        " AND updated_at < ? AND notify_state IS NULL AND lease_owner IS NULL"
        " ORDER BY updated_at LIMIT ?",
        (older_than, limit),
    ).fetchall()
    out = []
    for row in rows:
        events = []
        for seq, at, kind, data, hash_ in conn.execute(
            "SELECT seq, at, kind, data, hash FROM events"
            " WHERE exchange_id = ? AND archived = 0 ORDER BY seq",
            (row["id"],),
        ):
            prev = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq - 1,)).fetchone()
            events.append(
                {
                    "seq": seq,
                    "at": at,
                    "kind": kind,
                    "data": bytes(data).decode(),
                    "hash": bytes(hash_).hex(),
                    "prev": (bytes(prev[0]) if prev else GENESIS).hex(),
                }
            )
        record = {k: row[k] for k in row.keys()}  # noqa: SIM118 - sqlite3.Row
        for key in ("mapping_versions", "receipt", "last_error"):
            record[key] = _loads(record[key])
        out.append(ArchivedExchange(row=record, events=events))
    return out


def _tombstone(conn: sqlite3.Connection, batch: list[ArchivedExchange]) -> None:
    for ex in batch:
        xid, updated = ex.row["id"], ex.row["updated_at"]
        gone = conn.execute(
            "DELETE FROM exchanges WHERE id = ? AND updated_at = ? AND lease_owner IS NULL",
            (xid, updated),
        ).rowcount
        if not gone:
            continue  # it moved (a replay) after being copied: it stays live, the copy is harmless
        conn.execute(
            "UPDATE events SET data = x'', archived = 1 WHERE exchange_id = ? AND archived = 0",
            (xid,),
        )
        conn.execute("DELETE FROM exchange_refs WHERE exchange_id = ?", (xid,))


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the numbered SQL files in replay/sql/sqlite that this database has not seen."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    files = sorted(
        (
            f
            for f in resources.files("replay").joinpath("sql/sqlite").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    for f in files:
        number = int(f.name.split("_", 1)[0])
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(f.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(f.name)
    return applied


def _statements(script: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _events(conn: sqlite3.Connection, exchange_id: str) -> tuple[Event, ...]:
    rows = conn.execute(
        "SELECT seq, at, kind, data FROM events WHERE exchange_id = ? ORDER BY seq", (exchange_id,)
    ).fetchall()
    return tuple(
        Event(
            exchange_id=exchange_id,
            seq=r["seq"],
            at=r["at"],
            kind=r["kind"],
            data=orjson.loads(r["data"]),
        )
        for r in rows
    )


def _exchange(row: sqlite3.Row, events: Sequence[Event]) -> Exchange:
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
        mapping_versions=_loads(row["mapping_versions"]) or {},
        receipt=_loads(row["receipt"]),
        last_error=_loads(row["last_error"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        notify_state=row["notify_state"],
        notify_attempts=row["notify_attempts"],
        lifecycle_state=row["lifecycle_state"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        events=tuple(events),
    )
