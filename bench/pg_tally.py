"""The /metrics tally on PostgreSQL: grouping every exchange against the counts migration 0009's
triggers keep, and what those triggers cost the journal's writes, in one run.

For each size (``--sizes``), a fresh schema is migrated up to 0008, filled in SQL with exchanges
shaped like a journal's (11 partners, 3 services each, about 10 % failed, 1 % waiting, 0.3 % owing
a callback, the rest delivered), analysed, then migration 0009 is applied and timed (it counts
the rows afresh). Timed there, median of ``--runs`` after a warm-up:

* ``before``: the tally as it ran before 0009, a GROUP BY over every exchange plus the oldest
  waiting exchange per partner and the callbacks owed;
* ``after``: ``replay.tally.pg_tally`` with nothing to fold in, and with COMPACT_AFTER changes
  pending (the most a tally adds up before it folds them in);
* the plans of the oldest-waiting and callbacks queries (EXPLAIN ANALYZE, printed).

Writes, on the largest journal: ``--rounds`` rounds of ``--exchanges`` exchanges through
``PostgresJournal`` as the broker writes them (create, then queued, delivering, delivered, each
with one event; ``--concurrency`` exchanges at a time, so the writer commits them in groups;
sealed and signed), with the count triggers disabled (before) and enabled (after), in turns
(ABBA): writes per second, and CPU per write of the journal's server processes (read from /proc:
the server must run on this machine) and of this process. On a shared machine rounds drift far
more than the triggers cost, so the ratios are medians of after / before within each round.
Then the time to fold in the changes those rounds appended, and the same four writes as a loop
of statements on the server alone, triggers off and on in turns: what the triggers add to the
database's work per write, without client, network or commit.

    .venv/bin/python bench/pg_tally.py [--dsn postgresql://postgres@127.0.0.1:5432/test]
        [--sizes 100000,1000000] [--runs 7] [--rounds 4] [--exchanges 1000] [--concurrency 32]

Last line: ``RESULT name=pg_tally size=<largest> tally_ms_before=… tally_ms_after=…
tally_ms_pending=… migrate_s=… write_per_s_before=… write_per_s_after=… write_ratio=<after /
before> cpu_ratio=<after / before> server_us_per_write_before=… server_us_per_write_after=…
trigger_us_per_write=… compact_ms=… changes=…``. Targets: tally_ms_after a few ms at a million
exchanges; write_ratio ≥ 0.95 (and cpu_ratio ≤ 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay import pgsql, tally
from replay.keys import KeyPlace
from replay.postgres import PostgresJournal

COUNTS_MIGRATION = 9
APPLICATION = "tongban-pg-tally-bench"  # tells the journal's server processes apart
BACKENDS = f"SELECT pid FROM pg_stat_activity WHERE application_name = '{APPLICATION}'"
BASE = 1_700_000_000.0

# r = a spread of the row number over 0..999: the state it is in, and whether a callback is owed.
FILL = """
INSERT INTO exchanges (id, direction, source, target, service, idempotency_key, request_hash,
                       state, attempts, created_at, updated_at, notify_state, notify_at)
SELECT lpad(to_hex(i), 26, '0'), 'outbound', 'gd-portal', p, p || '-S' || (i / 11 % 3),
       'bench-' || i, 'sha256:' || i,
       CASE WHEN r < 2 THEN 'received' WHEN r < 5 THEN 'queued' WHEN r < 6 THEN 'delivering'
            WHEN r < 10 THEN 'retry_wait' WHEN r < 108 THEN 'failed' WHEN r < 114 THEN 'rejected'
            WHEN r < 116 THEN 'unconfirmed' ELSE 'delivered' END,
       CASE WHEN r < 108 AND r >= 10 THEN 4 ELSE 1 END,
       $2 + i * 0.05, $2 + i * 0.05 + 3,
       CASE WHEN r >= 116 AND r < 119 THEN 'delivered' END,
       CASE WHEN r >= 116 AND r < 119 THEN $2 + i * 0.05 + 3 END
FROM (SELECT i, (i * 7919) % 1000 AS r, 'p' || lpad((i % 11)::text, 2, '0') AS p
      FROM generate_series($1::bigint + 1, $1 + $3) AS i) AS s"""


async def connect(dsn: str, schema: str) -> Any:
    return await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})


async def migrate_to(conn: Any, schema: str, last: int) -> float:
    """Apply the migrations up to ``last`` not yet applied; the seconds it took."""
    t0 = time.perf_counter()
    async with conn.transaction():
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(pgsql.MIGRATIONS_TABLE)
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for number, name, sql in pgsql.migration_files():
            if number <= last and number not in done:
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
    return time.perf_counter() - t0


async def prepare(dsn: str, schema: str, size: int) -> float:
    """A schema of ``size`` exchanges; the seconds migration 0009 took on it."""
    conn = await connect(dsn, schema)
    try:
        await migrate_to(conn, schema, COUNTS_MIGRATION - 1)
        step = 200_000
        for start in range(0, size, step):
            await conn.execute(FILL, start, BASE, min(step, size - start))
        await conn.execute("VACUUM ANALYZE exchanges")
        took = await migrate_to(conn, schema, COUNTS_MIGRATION)
        await conn.execute("VACUUM ANALYZE")
        return took
    finally:
        await conn.close()


async def old_tally(conn: Any) -> tally.Tally:
    """The tally as pg_tally ran it before migration 0009."""
    return tally.from_rows(
        [tuple(r) for r in await conn.fetch(tally.BY_STATE_SQL)],
        [tuple(r) for r in await conn.fetch(tally.OLDEST_SQL)],
        await conn.fetchval(tally.CALLBACKS_SQL),
    )


async def timed(work: Callable[[], Awaitable[Any]], runs: int) -> float:
    """Median milliseconds of ``runs`` calls after one warm-up."""
    await work()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def plan(conn: Any, sql: str) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}")
    return "\n    ".join(r[0] for r in rows)


async def measure_tally(dsn: str, schema: str, size: int, runs: int) -> dict[str, float]:
    conn = await connect(dsn, schema)
    try:
        before = await old_tally(conn)
        after = await tally.pg_tally(conn)
        if before != after:
            raise SystemExit(f"the counts differ from the rows at {size:,}: {after} vs {before}")
        result = {
            "before": await timed(lambda: old_tally(conn), runs),
            "after": await timed(lambda: tally.pg_tally(conn), runs),
            "oldest": await timed(lambda: conn.fetch(tally.OLDEST_SQL), runs),
            "callbacks": await timed(lambda: conn.fetchval(tally.CALLBACKS_SQL), runs),
        }
        # The most a tally adds up: COMPACT_AFTER changes pending (+1 and -1, so counts stay).
        await conn.execute(
            "INSERT INTO exchange_count_changes SELECT 'queued', 'p00', 'p00-S0', 1 - 2 * (i % 2)"
            " FROM generate_series(1, $1) AS i",
            tally.COMPACT_AFTER,
        )
        await conn.execute("ANALYZE exchange_count_changes")
        result["pending"] = await timed(lambda: conn.fetch(tally.COUNTED_PG), runs)
        await tally.pg_compact(conn)
        for sql in (tally.OLDEST_SQL, tally.CALLBACKS_SQL):
            print(f"  {sql}\n    {await plan(conn, sql)}", flush=True)
        return result
    finally:
        await conn.close()


def exchange(key: str) -> NewExchange:
    at = time.time()
    return NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="p03",
        service="p03-S1",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"applicant": {"name": "陳大文", "id_no": "A123456(7)"}, "plate": "AB 1234"},
        received_at=at,
    )


async def one_exchange(journal: PostgresJournal, key: str) -> None:
    """Create, queued, delivering, delivered: the broker's four writes for a delivery."""
    ex, _ = await journal.create(exchange(key), owner="w", lease_until=time.time() + 60)
    steps = [
        ("mapped", StateChange(state=State.QUEUED)),
        ("attempt_started", StateChange(state=State.DELIVERING, attempts=1)),
        ("attempt_finished", StateChange(state=State.DELIVERED, receipt={"ref": key})),
    ]
    for kind, change in steps:
        event = Event(exchange_id=ex.id, kind=kind, at=time.time(), data={"step": kind})
        await journal.record(ex.id, [event], change, owner="w")


def server_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds each of these server processes has used (they run on this machine)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


async def write_round(
    journal: PostgresJournal, admin: Any, label: str, n: int, concurrency: int
) -> tuple[float, float, float]:
    """For ``n`` exchanges, ``concurrency`` at a time: writes per second, and the CPU
    microseconds per write of the journal's server processes and of this process."""
    keys = iter(f"{label}-{i}" for i in range(n))
    pids = [r[0] for r in await admin.fetch(BACKENDS)]
    server0, client0 = server_cpu(pids), time.process_time()
    t0 = time.perf_counter()

    async def lane() -> None:
        for key in keys:
            await one_exchange(journal, key)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    took = time.perf_counter() - t0
    client = time.process_time() - client0
    pids = [r[0] for r in await admin.fetch(BACKENDS)]
    server = sum(cpu - server0.get(pid, 0.0) for pid, cpu in server_cpu(pids).items())
    writes = 4 * n
    return writes / took, server * 1e6 / writes, client * 1e6 / writes


async def measure_writes(
    dsn: str, schema: str, rounds: int, n: int, concurrency: int
) -> dict[str, float]:
    admin = await connect(dsn, schema)
    keydir = tempfile.TemporaryDirectory(prefix="pg-tally-keys-")
    keys = KeyPlace(file=Path(keydir.name) / "k", checkpoints=Path(keydir.name) / "c")
    journal = PostgresJournal(
        f"{dsn}?application_name={APPLICATION}", schema=schema, keys=keys, pool_size=4
    )
    await journal.open()
    speeds: dict[str, list[float]] = {"before": [], "after": []}
    servers: dict[str, list[float]] = {"before": [], "after": []}
    clients: dict[str, list[float]] = {"before": [], "after": []}
    try:
        await write_round(journal, admin, "warm", n // 4, concurrency)
        for r in range(rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for label in order:
                toggle = "DISABLE" if label == "before" else "ENABLE"
                await admin.execute(f"ALTER TABLE exchanges {toggle} TRIGGER USER")
                speed, server, client = await write_round(
                    journal, admin, f"{label}{r}", n, concurrency
                )
                speeds[label].append(speed)
                servers[label].append(server)
                clients[label].append(client)
                print(
                    f"  round {r} {label}: {speed:.0f} writes/s, CPU per write: server"
                    f" {server:.0f} µs, broker {client:.0f} µs",
                    flush=True,
                )
        changes = await admin.fetchval("SELECT count(*) FROM exchange_count_changes")
        t0 = time.perf_counter()
        await tally.pg_compact(admin)
        compact_ms = (time.perf_counter() - t0) * 1000
    finally:
        await journal.close()
        await admin.close()
        keydir.cleanup()

    def paired(values: dict[str, list[float]]) -> float:
        """Median of after / before within each round: the drift of a shared machine cancels."""
        return statistics.median(
            a / b for a, b in zip(values["after"], values["before"], strict=True)
        )

    cpu = {k: [x + y for x, y in zip(servers[k], clients[k], strict=True)] for k in servers}
    return {
        "before": statistics.median(speeds["before"]),
        "after": statistics.median(speeds["after"]),
        "write_ratio": paired(speeds),
        "server_before": statistics.median(servers["before"]),
        "server_after": statistics.median(servers["after"]),
        "cpu_ratio": paired(cpu),
        "compact_ms": compact_ms,
        "changes": changes,
    }


# The statements of the four writes of one delivery, run in a loop on the server: what the
# triggers add to the database's own work for a write, without the client and the network.
LOOP = """
CREATE FUNCTION bench_loop(k text, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); st text;
BEGIN
    FOR i IN 1..n LOOP
        INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,
                               request_hash, state, lease_owner, created_at, updated_at)
        VALUES (k || i, 'outbound', 'gd-portal', 'p03', 'p03-S1', k || i, 'h', 'received', 'w',
                1, 1)
        ON CONFLICT (source, idempotency_key) DO NOTHING;
    END LOOP;
    FOREACH st IN ARRAY ARRAY['queued', 'delivering', 'delivered'] LOOP
        FOR i IN 1..n LOOP
            UPDATE exchanges SET state = st, updated_at = 2 WHERE id = k || i AND lease_owner = 'w';
        END LOOP;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / (4 * n);
END $$"""


async def measure_loop(dsn: str, schema: str, rounds: int) -> dict[str, float]:
    """Microseconds per write on the server, triggers off and on in turns; the median of the
    differences within a round."""
    conn = await connect(dsn, schema)
    took: dict[str, list[float]] = {"before": [], "after": []}
    try:
        await conn.execute(LOOP)
        for r in range(rounds * 2):
            for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                toggle = "DISABLE" if label == "before" else "ENABLE"
                await conn.execute(f"ALTER TABLE exchanges {toggle} TRIGGER USER")
                took[label].append(
                    await conn.fetchval("SELECT bench_loop($1, 1500)", f"L{label}{r}-")
                )
        await conn.execute("ALTER TABLE exchanges ENABLE TRIGGER USER")
        await conn.execute("DROP FUNCTION bench_loop")
    finally:
        await conn.close()
    return {
        "before": statistics.median(took["before"]),
        "after": statistics.median(took["after"]),
        "added": statistics.median(
            a - b for a, b in zip(took["after"], took["before"], strict=True)
        ),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated exchanges")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per tally")
    parser.add_argument("--rounds", type=int, default=4, help="write rounds, each way")
    parser.add_argument("--exchanges", type=int, default=1000, help="exchanges per write round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="keep the schemas (printed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    admin = await asyncpg.connect(args.dsn)
    schemas = {size: f"bench_tally_{size}_{secrets.token_hex(3)}" for size in sizes}
    try:
        tallies = {}
        migrations = {}
        for size in sizes:
            print(f"{size:,} exchanges ({schemas[size]})", flush=True)
            migrations[size] = await prepare(args.dsn, schemas[size], size)
            tallies[size] = await measure_tally(args.dsn, schemas[size], size, args.runs)
            t = tallies[size]
            print(
                f"  migration 0009 {migrations[size]:.2f} s; tally before {t['before']:.1f} ms,"
                f" after {t['after']:.2f} ms, with {tally.COMPACT_AFTER} changes pending"
                f" {t['pending']:.2f} ms; oldest {t['oldest']:.2f} ms,"
                f" callbacks {t['callbacks']:.2f} ms",
                flush=True,
            )
        largest = max(sizes)
        print(f"writes on {largest:,} exchanges", flush=True)
        w = await measure_writes(
            args.dsn, schemas[largest], args.rounds, args.exchanges, args.concurrency
        )
        print(f"  folding {w['changes']:,} changes in: {w['compact_ms']:.0f} ms", flush=True)
        loop = await measure_loop(args.dsn, schemas[largest], args.rounds)
        print(
            f"  on the server alone: {loop['before']:.1f} µs per write, with the triggers"
            f" {loop['after']:.1f} µs (+{loop['added']:.1f} µs, median of pairs)",
            flush=True,
        )
    finally:
        if not args.keep:
            for schema in schemas.values():
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    t = tallies[largest]
    print(
        f"RESULT name=pg_tally size={largest} tally_ms_before={t['before']:.1f}"
        f" tally_ms_after={t['after']:.2f} tally_ms_pending={t['pending']:.2f}"
        f" migrate_s={migrations[largest]:.2f} write_per_s_before={w['before']:.0f}"
        f" write_per_s_after={w['after']:.0f} write_ratio={w['write_ratio']:.3f}"
        f" cpu_ratio={w['cpu_ratio']:.3f} server_us_per_write_before={w['server_before']:.0f}"
        f" server_us_per_write_after={w['server_after']:.0f}"
        f" trigger_us_per_write={loop['added']:.1f} compact_ms={w['compact_ms']:.0f}"
        f" changes={w['changes']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
