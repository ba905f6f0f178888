"""The PostgreSQL journal's SQL: named queries, migrations, the chain append, search, row reading.

Kept apart from ``replay/postgres.py`` (the Journal methods and the pool) so each reads on its own.
Every function takes an open connection inside the caller's transaction; none commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from federation.domain.errors import JournalUnavailable
from federation.domain.models import Event, Exchange
from replay import formats, inherited, rekey, rekeyed, rows, rules, sets, tally
from replay.archive import ArchivedExchange
from replay.audit import Audit
from replay.chain import GENESIS, ChainBroken, EventRow, head_problem, link
from replay.journal import Refusal
from replay.rows import archive_event, archive_record, event, read_exchange
from replay.seal import Seal
from replay.sets import MappingSets

# What the driver and the network raise; FederationErrors are ours and pass through untouched.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InternalClientError,
    OSError,
)


class Record(Protocol):
    """The part of ``asyncpg.Record`` we use: access by column name or position."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> Iterable[str]: ...


class Conn(Protocol):
    """The part of ``asyncpg.Connection`` we use (asyncpg ships no types: Any stops here)."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Record]: ...

    async def fetchrow(self, query: str, *args: Any) -> Record | None: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    async def executemany(self, query: str, args: Iterable[Sequence[Any]]) -> None: ...

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AbstractAsyncContextManager[Any]: ...

    def cursor(self, query: str, *args: Any, prefetch: int | None = None) -> Any: ...


# -- migrations ---------------------------------------------------------------------------------

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, whatever it contains."""
    return '"' + name.replace('"', '""') + '"'


def migration_files() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every numbered file in replay/sql/postgresql, in order."""
    out = []
    for f in resources.files("replay").joinpath("sql/postgresql").iterdir():
        head = f.name.split("_", 1)[0]
        if f.name.endswith(".sql") and head.isdigit():
            out.append((int(head), f.name, f.read_text(encoding="utf-8")))
    return sorted(out)


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"tongban journal migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def applied_migrations(conn: Conn, schema: str | None) -> set[int]:
    """The migration numbers this schema has (none if it has no journal yet)."""
    table = "schema_migrations" if schema is None else f"{quote_ident(schema)}.schema_migrations"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return set()
    return {r[0] for r in await conn.fetch(f"SELECT version FROM {table}")}


async def migrate(conn: Conn, schema: str | None) -> list[str]:
    """Apply the migrations this schema has not seen, all in one transaction; their file names.

    A transaction-scoped advisory lock (one per schema) makes broker instances that start together
    take turns: the first applies, the others then find nothing left to do. When nothing is
    pending no DDL runs at all, so brokers may run as a role that cannot create tables while
    ``tongban journal migrate`` runs as one that can.
    """
    known = {number for number, _, _ in migration_files()}
    if known <= await applied_migrations(conn, schema):
        return []
    async with conn.transaction():
        if schema is None:
            schema = await conn.fetchval("SELECT current_schema()")
            if schema is None:
                raise JournalUnavailable("no schema on the search_path to keep the journal in")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
        # CREATE SCHEMA IF NOT EXISTS would still demand the right to create schemas.
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
        await conn.execute(MIGRATIONS_TABLE)
        done = await applied_migrations(conn, schema)
        applied = []
        for number, name, sql in migration_files():
            if number in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
            )
            applied.append(name)
        return applied


# -- the hash chain -----------------------------------------------------------------------------

# Taken last in every transaction that appends events and held to its commit: the one place where
# broker instances wait for each other (see Chain).
LOCK_HEAD = "SELECT seq, hash, mac FROM chain_head FOR UPDATE"
LAST = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
# What a checkpoint is compared with at open (``replay.checkpoints.rolled_back``): the last
# event's seq and the hash of the checkpointed one, by primary key.
END_AT = "SELECT (SELECT max(seq) FROM events), (SELECT hash FROM events WHERE seq = $1)"


async def end_at(conn: Conn, seq: int) -> tuple[int, bytes | None]:
    """The last event's seq, and the hash of event ``seq`` (None: there is none)."""
    row = await conn.fetchrow(END_AT, seq)
    if row is None:
        return 0, None
    return int(row[0] or 0), None if row[1] is None else bytes(row[1])


APPEND = """
WITH appended AS (
    INSERT INTO events (seq, exchange_id, at, kind, data, hash, state)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[], $5::bytea[],
                         $6::bytea[], $7::bytea[])
)
UPDATE chain_head SET seq = $8, hash = $9, mac = $10"""


class Chain:
    """The events one transaction appends, written at the end of the chain in as few statements.

    A batch of operations (see ``PostgresJournal``) shares one Chain: ``add`` only buffers, and
    ``flush`` locks the chain head (once per transaction, held to its commit), hashes the buffered
    events after it and inserts them in one statement. The head's row lock serializes appends across
    every instance and connection, so seqs stay gapless and every hash covers the one before,
    exactly as ``replay.chain.Chain`` does on SQLite. The batch flushes last, so the head is taken
    after every other lock of the transaction and held briefly.
    """

    def __init__(self, conn: Conn, seal: Seal, *, refused: str | None = None) -> None:
        self._conn = conn
        self._seal = seal
        self._refused = refused  # why the chain may not be extended at all (found at open)
        self._pending: list[tuple[EventRow, list[int]]] = []
        self._head: tuple[int, bytes] | None = None
        self.signed: tuple[int, bytes] | None = None  # the head this transaction signed

    def add(self, rows: Sequence[EventRow]) -> list[int]:
        """Buffer events; the returned list receives their seqs when they are flushed."""
        seqs: list[int] = []
        self._pending.extend((row, seqs) for row in rows)
        return seqs

    def pending_for(self, ids: Iterable[str]) -> bool:
        """Whether events of any of these exchanges are buffered (not yet readable)."""
        wanted = set(ids)
        return any(row[0] in wanted for row, _ in self._pending)

    async def flush(self) -> None:
        """Write the buffered events at the end of the chain."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        if self._head is None:
            await self.lock()
        assert self._head is not None
        seq, prev = self._head
        cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        for (exchange_id, at, kind, data, state), _ in pending:
            seq += 1
            prev = link(prev, seq, exchange_id, at, kind, data, state)
            for col, value in zip(
                cols, (seq, exchange_id, float(at), kind, data, prev, state), strict=True
            ):
                col.append(value)
        await self._conn.execute(APPEND, *cols, seq, prev, self._seal.sign_head(seq, prev))
        self._head = self.signed = (seq, prev)
        for (_, seqs), n in zip(pending, cols[0], strict=True):
            seqs.append(n)

    async def lock(self) -> None:
        """Lock the head (held to the commit) and check it may be extended (``head_problem``)."""
        if self._refused is not None:
            raise ChainBroken(self._refused)
        head = await self._conn.fetchrow(LOCK_HEAD)
        problem = head_problem(self._seal, head, await self._conn.fetchrow(LAST))
        if problem is not None:
            raise ChainBroken(f"{problem}; run `tongban journal verify`")
        assert head is not None
        self._head = (int(head[0]), bytes(head[1]))

    async def rewritten(self, seq: int, head: bytes) -> None:
        """Sign the head of a chain rewritten in this transaction (rekey); the head is locked."""
        await self._conn.execute(
            "UPDATE chain_head SET seq = $1, hash = $2, mac = $3",
            seq,
            head,
            self._seal.sign_head(seq, head),
        )
        self._head = self.signed = (seq, head)


EVENTS = f"""
SELECT exchange_id, seq, at, kind, data FROM events
WHERE exchange_id = ANY($1::text[]) AND NOT archived AND kind <> '{rows.STATE}'
ORDER BY exchange_id, seq"""


async def histories(conn: Conn, ids: Sequence[str], seal: Seal) -> dict[str, list[Event]]:
    """The live events of each exchange, in order (one query for all)."""
    out: dict[str, list[Event]] = {xid: [] for xid in ids}
    if ids:
        for r in await conn.fetch(EVENTS, list(ids)):
            out[r["exchange_id"]].append(event(r["exchange_id"], r, seal))
    return out


EVENT_COLUMNS = "seq, exchange_id, at, kind, data, hash, archived, state"
VERIFY = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"
HEAD = "SELECT seq, hash, mac FROM chain_head"
AUDIT_CHUNK = 2000


async def audit(conn: Conn, audit: Audit) -> None:
    """Feed ``audit`` the whole journal (the caller holds one snapshot); hashing is CPU work, so
    each chunk is checked off the event loop."""
    cursor = await conn.cursor(VERIFY)
    while chunk := [tuple(r) for r in await cursor.fetch(AUDIT_CHUNK)]:
        await asyncio.to_thread(audit.events, chunk)
        if audit.broken is not None:
            return
    audit.head(await conn.fetchrow(HEAD))
    audit.stored_format(await conn.fetchval(formats.READ))
    audit.exchanges(await conn.fetch(f"SELECT {', '.join(rows.SHOWN)} FROM exchanges"))
    audit.refusals(await conn.fetch("SELECT * FROM refusals"))
    audit.mapping_sets(await conn.fetch(sets.ALL))


async def sign_first_head(conn: Conn, seal: Seal) -> tuple[int, bytes] | None:
    """Sign the head of a journal that gets keys for the first time: its last event, as it is
    (trust on first use, as on SQLite)."""
    head = await conn.fetchrow(LOCK_HEAD)
    last = await conn.fetchrow(LAST)
    last_seq, last_hash = (0, GENESIS) if last is None else (int(last[0]), bytes(last[1]))
    if head is None or head[2] is not None:
        return None
    await conn.execute(
        "UPDATE chain_head SET seq = $1, hash = $2, mac = $3",
        last_seq,
        last_hash,
        seal.sign_head(last_seq, last_hash),
    )
    return last_seq, last_hash


async def reseal(conn: Conn, chain: Chain, old: Seal, new: Seal) -> tuple[int, int, bytes]:
    """Every payload sealed under ``new`` (the partner's words in rows' last errors too), the
    chain recomputed over the rows as they are then and signed; (values, seq, head)."""
    await chain.flush()
    await chain.lock()
    refusals = await conn.fetch("SELECT * FROM refusals ORDER BY seq")
    bodies, digests = rekey.resealed_refusals(refusals, old, new)
    errors = await conn.fetch("SELECT id, last_error FROM exchanges WHERE last_error IS NOT NULL")
    resealed = rekey.resealed_errors(errors, old, new)
    if resealed:
        await conn.executemany("UPDATE exchanges SET last_error = $1 WHERE id = $2", resealed)
    if await inherited.reseal_postgres(conn, chain.add, old):  # the mark's first raise
        await chain.flush()
    await conn.execute(formats.raising(formats.WORDS if resealed else formats.ROWS))  # full digests
    events = [tuple(r) for r in await conn.fetch(VERIFY)]
    shown = await conn.fetch(f"SELECT {', '.join(rows.SHOWN)} FROM exchanges")
    now = {r["id"]: rows.shown_digest(r) for r in shown}
    updates, seq, head = await asyncio.to_thread(
        rekey.resealed_chain, events, old, new, digests, now
    )
    if bodies:
        await conn.execute(
            "UPDATE refusals AS r SET body = b.body"
            " FROM unnest($1::bytea[], $2::bigint[]) AS b(body, seq) WHERE r.seq = b.seq",
            [b for b, _ in bodies],
            [n for _, n in bodies],
        )
    if updates:
        await conn.execute(
            "UPDATE events AS e SET data = u.data, hash = u.hash, state = u.state"
            " FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bigint[])"
            " AS u(data, hash, state, seq) WHERE e.seq = u.seq",
            *(list(col) for col in zip(*updates, strict=True)),
        )
    made = await asyncio.to_thread(rekeyed.statements, events, updates, new, time.time())
    await rekeyed.record(conn, made)  # for the other instances' checkpoints
    await chain.rewritten(seq, head)
    return len(bodies) + len(resealed) + len(updates), seq, head


# -- exchanges ----------------------------------------------------------------------------------

CREATE = """
INSERT INTO exchanges (id, direction, source, target, service, idempotency_key, request_hash,
                       state, lease_owner, lease_until, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8, $9, $10, $10)
ON CONFLICT (source, idempotency_key) DO NOTHING
RETURNING id"""

BY_KEY = "SELECT * FROM exchanges WHERE source = $1 AND idempotency_key = $2"
BY_ID = "SELECT * FROM exchanges WHERE id = $1"
# The exchange is there, and stays till the commit (Journal.append).
HELD = "SELECT 1 FROM exchanges WHERE id = $1 FOR SHARE"

REFS = (
    "INSERT INTO exchange_refs (ref, exchange_id) SELECT unnest($1::bytea[]), $2"
    " ON CONFLICT DO NOTHING"
)

# One statement for every StateChange (NULL leaves a column as it is), so each connection
# prepares it once. $9: notify (as $14: replay.rules.notify_as); $10: release the lease
# (replay.rules.releases_lease); $12: the states it may start from (replay.rules.allowed_from);
# $13: the owner the lease must be with; $16: the lifecycle word expected, $17: no callback pending,
# $18: the count of lifecycle steps expected (StateChange.expect_lifecycle, expect_quiet,
# expect_steps). A lifecycle word set ($15) is a step: the count goes up (rules.steps_after).
RECORD = """
UPDATE exchanges SET
    state = $2,
    updated_at = $3,
    next_attempt_at = $4,
    mapping_versions = COALESCE($5, mapping_versions),
    receipt = COALESCE($6, receipt),
    last_error = COALESCE($7, last_error),
    attempts = COALESCE($8, attempts),
    notify_state = CASE WHEN $9 THEN $14::text ELSE notify_state END,
    notify_attempts = CASE WHEN $9 THEN 0 ELSE notify_attempts END,
    notify_at = CASE WHEN $9 THEN $3 ELSE notify_at END,
    lifecycle_state = COALESCE($15::text, lifecycle_state),
    lifecycle_steps = lifecycle_steps + CASE WHEN $15::text IS NULL THEN 0 ELSE 1 END,
    lease_owner = CASE WHEN $10 THEN NULL ELSE lease_owner END,
    lease_until = CASE WHEN $10 THEN NULL ELSE COALESCE($11, lease_until) END
WHERE id = $1 AND state = ANY($12::text[]) AND ($13::text IS NULL OR lease_owner = $13)
  AND ($16::text IS NULL OR lifecycle_state = $16)
  AND (NOT $17::boolean OR notify_state IS NULL)
  AND ($18::bigint IS NULL OR lifecycle_steps = $18)
RETURNING """ + ", ".join(rows.SHOWN)

# Due work, oldest first: open work whose lease has expired and retries whose time has come, as
# on SQLite. Each half is its own CTE so that each walks its own partial index; a single OR makes
# the planner walk the primary key past every ended exchange. SKIP LOCKED lets instances claim
# side by side without waiting, and no two ever lock the same row. A row locked by one half but
# beyond the limit is only locked, not leased, and free again at commit. The state lists are
# literals so the partial indexes apply.
CLAIM = f"""
WITH open_work AS (
    SELECT id, lease_owner FROM exchanges
    WHERE state IN ({rules.in_list(rules.OPEN)})
      AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), retries AS (
    SELECT id, lease_owner FROM exchanges
    WHERE state = 'retry_wait' AND next_attempt_at <= $1
      AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, lease_owner FROM open_work
    UNION ALL
    SELECT id, lease_owner FROM retries
    ORDER BY id
    LIMIT $2
)
UPDATE exchanges AS e SET lease_owner = $3, lease_until = $4
FROM due WHERE e.id = due.id
RETURNING e.*, due.lease_owner AS previous_owner"""

RENEW = "UPDATE exchanges SET lease_until = $1 WHERE lease_owner = $2 AND id = ANY($3::text[])"
# A draining instance gives up its leases: open work, retries and callbacks it held.
RELEASE = """
UPDATE exchanges SET lease_owner = NULL, lease_until = NULL
WHERE lease_owner = $1 AND (state IN ('received', 'queued', 'delivering', 'retry_wait')
                            OR notify_state IS NOT NULL)
"""

CLAIM_NOTIFICATIONS = """
WITH due AS (
    SELECT id FROM exchanges
    WHERE notify_state IS NOT NULL AND notify_at <= $1
      AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY notify_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE exchanges AS e SET lease_owner = $3, lease_until = $4
FROM due WHERE e.id = due.id
RETURNING e.*"""

FINISH_NOTIFICATION = """
UPDATE exchanges SET lease_owner = NULL, lease_until = NULL,
    notify_attempts = notify_attempts + 1, notify_at = $1,
    notify_state = CASE WHEN $2 THEN NULL ELSE notify_state END
WHERE id = $3 AND lease_owner = $4 AND notify_state IS NOT NULL"""

# Exchanges per state, from the counts the triggers of migration 0009 keep (replay/tally.py).
COUNTS = tally.STATES_PG

REFUSE = """
INSERT INTO refusals (at, remote, method, path, status, problem, detail, idempotency_key, body,
                      body_bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING seq"""

REFUSALS = "SELECT * FROM refusals ORDER BY seq DESC LIMIT $1"

# -- retention ----------------------------------------------------------------------------------

# Ended, unleased, no callback pending: replay.rules.archivable in SQL (literals, for the partial
# index exchanges_closed).
ARCHIVE_CANDIDATES = f"""
SELECT * FROM exchanges
WHERE state IN ({rules.in_list(rules.ENDED)}) AND updated_at < $1
  AND notify_state IS NULL AND lease_owner IS NULL
ORDER BY updated_at
LIMIT $2"""

# Each event with the hash of the one before it in the chain (GENESIS when there is none).
ARCHIVE_EVENTS = """
SELECT e.exchange_id, e.seq, e.at, e.kind, e.data, e.hash, e.state, p.hash AS prev
FROM events e LEFT JOIN events p ON p.seq = e.seq - 1
WHERE e.exchange_id = ANY($1::text[]) AND NOT e.archived
ORDER BY e.exchange_id, e.seq"""

# Exchanges that moved since they were copied (a replay) stay live; the copy is harmless.
TOMBSTONE = """
WITH gone AS (
    DELETE FROM exchanges AS x
    USING unnest($1::text[], $2::float8[]) AS b(id, updated_at)
    WHERE x.id = b.id AND x.updated_at = b.updated_at AND x.lease_owner IS NULL
    RETURNING x.id
), emptied AS (
    UPDATE events SET data = '', state = NULL, archived = true
    WHERE exchange_id IN (SELECT id FROM gone) AND NOT archived
    RETURNING exchange_id
), unreferenced AS (
    DELETE FROM exchange_refs WHERE exchange_id IN (SELECT id FROM gone)
)
SELECT exchange_id, count(*) AS events FROM emptied GROUP BY exchange_id ORDER BY exchange_id"""


async def archive_candidates(
    conn: Conn, older_than: float, limit: int, known: MappingSets
) -> list[ArchivedExchange]:
    """The next closed exchanges to archive, with their events as the archive file holds them."""
    found = await conn.fetch(ARCHIVE_CANDIDATES, older_than, limit)
    await learn(conn, known, known.missing([r["mapping_versions"] for r in found], ()))
    events: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in found}
    if found:
        for e in await conn.fetch(ARCHIVE_EVENTS, list(events)):
            events[e["exchange_id"]].append(archive_event(e, e["prev"]))
    return [ArchivedExchange(row=archive_record(r, known), events=events[r["id"]]) for r in found]


async def learn(conn: Conn, known: MappingSets, missing: list[bytes]) -> None:
    """Read the mapping sets ``known`` lacks."""
    if missing:
        known.learn(await conn.fetch(sets.SELECT_PG, missing))


async def exchanges(
    conn: Conn,
    found: Sequence[Any],
    history: Mapping[str, Sequence[Event]],
    seal: Seal,
    known: MappingSets,
) -> list[Exchange]:
    """The Exchanges of rows and their events, the mapping sets they refer to read as needed."""
    everything = [e for r in found for e in history.get(r["id"], ())]
    await learn(conn, known, known.missing([r["mapping_versions"] for r in found], everything))
    return [read_exchange(r, history.get(r["id"], ()), seal, known) for r in found]


def masked(dsn: str) -> str:
    """The DSN without its password, for messages: the one after the user name, and one given
    as a query parameter (``?password=…``, which libpq and asyncpg read too)."""
    try:
        parts = urlsplit(dsn)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "postgresql://…"
    in_query = any(k.lower() == "password" for k, _ in query)
    if parts.password is None and not in_query:
        return dsn
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    if in_query:
        kept = [(k, "***" if k.lower() == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(kept, safe="*"))
    return urlunsplit(parts)


async def tombstone(
    conn: Conn, chain: Chain, seal: Seal, batch: Sequence[ArchivedExchange], now: float
) -> int:
    """Delete archived exchanges, leaving their events as tombstones and recording in the chain
    that each was archived; how many went."""
    ids = [ex.row["id"] for ex in batch]
    updated = [ex.row["updated_at"] for ex in batch]
    gone = await conn.fetch(TOMBSTONE, ids, updated)
    for row in gone:
        xid = row["exchange_id"]
        chain.add([rows.archived_record(seal, xid, now, int(row["events"]))])
    return len(gone)


def affected(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def storable(refusal: Refusal) -> Refusal:
    """``refusal`` with its text storable in PostgreSQL (see ``text``)."""
    key = refusal.idempotency_key
    return replace(
        refusal,
        remote=text(refusal.remote),
        method=text(refusal.method),
        path=text(refusal.path),
        problem=text(refusal.problem),
        detail=text(refusal.detail),
        idempotency_key=None if key is None else text(key),
    )


def text(value: str) -> str:
    """``value`` storable in a text column: PostgreSQL refuses NUL and lone surrogates.

    Only for what a client sent us (a refused request's path, key, detail): keeping the refusal
    matters more than those few code points, which are escaped rather than dropped.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode()
    return value.replace("\x00", "\\x00")
