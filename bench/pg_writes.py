"""PostgreSQL journal writes between vacuums: migrations up to 0010 against up to 0011, in one run.

Two schemas, each filled in SQL with ``--size`` exchanges shaped like a journal's (as
bench/pg_tally.py fills them; its waiting ones leased elsewhere, so no claim takes them), then
analysed and vacuumed. Both are migrated to the end (the journal applies what is pending when it
opens), and ``before`` then has what migration 0011 set reset: autovacuum on exchanges at
PostgreSQL's default of 20 % of the rows dead, against 1 % plus 1,000 in ``after``. Then ``--rounds``
rounds each, in turns (ABBA), of ``--exchanges`` exchanges through ``PostgresJournal`` as the
broker writes them (create, queued, delivering, delivered, each with one event; ``--concurrency``
at a time, sealed and signed), while a poller claims due work every ``--poll`` seconds as a
broker's worker does (nothing is due: the walk over ``exchanges_open`` is the whole cost).

Per round: writes per second, the CPU per write of the journal's server processes (read from
/proc: the server must run on this machine), and the median time of a claim. Per schema at the
end: how many of the updates of exchanges and chain_head were HOT, how often autovacuum ran,
and the index sizes. The growth is the median of the last three rounds over the first three.

    .venv/bin/python bench/pg_writes.py [--dsn postgresql://postgres@127.0.0.1:5432/test]
        [--size 300000] [--rounds 12] [--exchanges 1000] [--concurrency 32] [--poll 1.0]

Last line: ``RESULT name=pg_writes size=… rounds=… server_us_first_before=…
server_us_last_before=… growth_before=… server_us_first_after=… server_us_last_after=…
growth_after=… claim_ms_last_before=… claim_ms_last_after=… hot_share_before=…
hot_share_after=… head_hot_share_after=… autovacuum_before=… autovacuum_after=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg

from bench.pg_tally import BASE, FILL, connect, migrate_to, one_exchange, server_cpu
from replay import pgsql
from replay.keys import KeyPlace
from replay.postgres import PostgresJournal

# What migration 0011 sets, reset for the baseline.
UNDO_0011 = (
    "ALTER TABLE exchanges RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)"
)
LEASED_ELSEWHERE = """
UPDATE exchanges SET lease_owner = 'elsewhere', lease_until = 1e12
WHERE state IN ('received', 'queued', 'delivering', 'retry_wait') OR notify_state IS NOT NULL"""
TABLES = """
SELECT relname, n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count
FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('exchanges', 'chain_head')"""
# Whether autovacuum would vacuum exchanges now: its rule, with the table's settings if it has
# them (reloptions) and the server's otherwise.
DUE = """
SELECT s.n_dead_tup > coalesce(o.threshold, current_setting('autovacuum_vacuum_threshold')::float8)
       + coalesce(o.scale, current_setting('autovacuum_vacuum_scale_factor')::float8)
         * greatest(c.reltuples, 0)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid,
LATERAL (SELECT max(split_part(x, '=', 2)::float8)
                    FILTER (WHERE x LIKE 'autovacuum_vacuum_threshold=%') AS threshold,
                max(split_part(x, '=', 2)::float8)
                    FILTER (WHERE x LIKE 'autovacuum_vacuum_scale_factor=%') AS scale
         FROM unnest(coalesce(c.reloptions, '{}')) AS x) AS o
WHERE s.schemaname = $1 AND s.relname = 'exchanges'"""
# The claim with nothing due, as the poller sends it (rolled back).
CLAIM_NOTHING = pgsql.CLAIM.replace("$1", "extract(epoch FROM now())").replace("$2", "100")
CLAIM_NOTHING = CLAIM_NOTHING.replace("$3", "'bench'").replace("$4", "1e12")
INDEXES = """
SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes
WHERE schemaname = $1 AND relname = 'exchanges' ORDER BY indexrelname"""


async def prepare(dsn: str, schema: str, size: int, baseline: bool) -> None:
    """A schema of ``size`` exchanges, analysed and vacuumed; without 0011's settings if
    ``baseline``."""
    conn = await connect(dsn, schema)
    try:
        await migrate_to(conn, schema, max(n for n, _, _ in pgsql.migration_files()))
        if baseline:
            await conn.execute(UNDO_0011)
        for start in range(0, size, 200_000):
            await conn.execute(FILL, start, BASE, min(200_000, size - start))
        await conn.execute(LEASED_ELSEWHERE)
        await conn.execute("TRUNCATE exchange_count_changes")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


class Side:
    """One schema's journal, its server processes and what its rounds measured."""

    def __init__(self, dsn: str, schema: str, label: str, keydir: Path) -> None:
        self.schema = schema
        self.application = f"tongban-pg-writes-{label}"
        keys = KeyPlace(file=keydir / f"{label}.keys", checkpoints=keydir / f"{label}.cp")
        self.journal = PostgresJournal(
            f"{dsn}?application_name={self.application}", schema=schema, keys=keys, pool_size=4
        )
        self.server: list[float] = []
        self.speed: list[float] = []
        self.claims: list[float] = []
        self.vacuums = 0

    async def pids(self, admin: Any) -> list[int]:
        found = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", self.application
        )
        return [r[0] for r in found]


async def poller(journal: PostgresJournal, every: float, took: list[float]) -> None:
    """Claim due work every ``every`` seconds, as a broker's worker polls."""
    while True:
        now = time.time()
        t0 = time.perf_counter()
        await journal.claim(owner="poller", now=now, lease_until=now + 30, limit=100)
        took.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(every)


async def claim_ms(admin: Any, schema: str) -> float:
    """Median milliseconds of three claims with nothing due (rolled back)."""
    await admin.execute(f'SET search_path TO "{schema}"')
    took = []
    for _ in range(3):
        await admin.execute("BEGIN")
        t0 = time.perf_counter()
        await admin.fetch(CLAIM_NOTHING)
        took.append((time.perf_counter() - t0) * 1000)
        await admin.execute("ROLLBACK")
    return statistics.median(took)


async def stand_in_for_autovacuum(side: Side, admin: Any) -> float:
    """VACUUM exchanges where autovacuum would (this server has it off); its server CPU seconds."""
    await asyncio.sleep(1.1)  # the writers' counts of dead rows reach the statistics
    if not await admin.fetchval(DUE, side.schema):
        return 0.0
    pid = await admin.fetchval("SELECT pg_backend_pid()")
    before = server_cpu([pid])
    await admin.execute(f'VACUUM "{side.schema}".exchanges')
    side.vacuums += 1
    return server_cpu([pid]).get(pid, 0.0) - before.get(pid, 0.0)


async def write_round(
    side: Side, admin: Any, label: str, n: int, concurrency: int, poll: float, emulate: bool
) -> None:
    """``n`` exchanges, ``concurrency`` at a time, with a poller claiming alongside; then the
    vacuum autovacuum would run, its CPU counted with the round's."""
    keys = iter(f"{label}-{i}" for i in range(n))
    claims: list[float] = []
    pids = await side.pids(admin)
    server0 = server_cpu(pids)
    t0 = time.perf_counter()

    async def lane() -> None:
        for key in keys:
            await one_exchange(side.journal, key)

    polling = asyncio.create_task(poller(side.journal, poll, claims))
    try:
        await asyncio.gather(*(lane() for _ in range(concurrency)))
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    took = time.perf_counter() - t0
    pids = await side.pids(admin)
    server = sum(cpu - server0.get(pid, 0.0) for pid, cpu in server_cpu(pids).items())
    side.claims.append(await claim_ms(admin, side.schema))
    if emulate:
        server += await stand_in_for_autovacuum(side, admin)
    side.speed.append(4 * n / took)
    side.server.append(server * 1e6 / (4 * n))


async def table_stats(admin: Any, schema: str) -> dict[str, Any]:
    await asyncio.sleep(1.1)  # the writers' counts reach the statistics
    return {r["relname"]: r for r in await admin.fetch(TABLES, schema)}


async def stats(admin: Any, schema: str, start: dict[str, Any]) -> dict[str, Any]:
    """HOT shares of the rounds' updates, autovacuum runs and index sizes of one schema."""
    tables_now = await table_stats(admin, schema)

    def share(table: str) -> float:
        upd = tables_now[table]["n_tup_upd"] - start[table]["n_tup_upd"]
        hot = tables_now[table]["n_tup_hot_upd"] - start[table]["n_tup_hot_upd"]
        return hot / upd if upd else 0.0

    return {
        "hot": share("exchanges"),
        "head_hot": share("chain_head"),
        "dead": tables_now["exchanges"]["n_dead_tup"],
        "autovacuum": tables_now["exchanges"]["autovacuum_count"]
        - start["exchanges"]["autovacuum_count"],
        "indexes": {r[0]: r[1] for r in await admin.fetch(INDEXES, schema)},
    }


def ends(values: list[float]) -> tuple[float, float, float]:
    """First, last, and the median of the last three rounds over that of the first three."""
    k = min(3, len(values))
    growth = statistics.median(values[-k:]) / statistics.median(values[:k])
    return values[0], values[-1], growth


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--size", type=int, default=300_000, help="exchanges already journalled")
    parser.add_argument("--rounds", type=int, default=12, help="write rounds, each way")
    parser.add_argument("--exchanges", type=int, default=1000, help="exchanges per write round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between claims")
    args = parser.parse_args()
    token = secrets.token_hex(3)
    schemas = {label: f"bench_writes_{label}_{token}" for label in ("before", "after")}
    admin = await asyncpg.connect(args.dsn)
    keydir = tempfile.TemporaryDirectory(prefix="pg-writes-keys-")
    sides: dict[str, Side] = {}
    try:
        for label in ("before", "after"):
            t0 = time.perf_counter()
            await prepare(args.dsn, schemas[label], args.size, baseline=label == "before")
            took = time.perf_counter() - t0
            print(
                f"{label}: {args.size:,} exchanges in {schemas[label]} ({took:.0f} s)", flush=True
            )
            sides[label] = Side(args.dsn, schemas[label], label, Path(keydir.name))
            await sides[label].journal.open()
        emulate = await admin.fetchval("SHOW autovacuum") == "off"
        if emulate:
            print("autovacuum is off on this server: the bench vacuums where it would", flush=True)
        for label, side in sides.items():
            await write_round(
                side, admin, f"warm-{label}", args.exchanges // 4, 32, args.poll, emulate
            )
            side.vacuums = 0
            for values in (side.server, side.speed, side.claims):
                values.clear()
        start = {label: await table_stats(admin, side.schema) for label, side in sides.items()}
        for r in range(args.rounds):
            for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                side = sides[label]
                await write_round(
                    side, admin, f"{label}{r}", args.exchanges, args.concurrency, args.poll, emulate
                )
                print(
                    f"  round {r:2} {label:6}: {side.speed[-1]:5.0f} writes/s, server"
                    f" {side.server[-1]:4.0f} µs per write, claim {side.claims[-1]:6.2f} ms,"
                    f" vacuums so far {side.vacuums}",
                    flush=True,
                )
        found = {
            label: await stats(admin, side.schema, start[label]) for label, side in sides.items()
        }
    finally:
        for side in sides.values():
            await side.journal.close()
        for schema in schemas.values():
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
        keydir.cleanup()
    out = []
    for label, side in sides.items():
        first, last, growth = ends(side.server)
        s = found[label]
        print(
            f"{label}: server µs per write first {first:.0f}, last {last:.0f}, growth"
            f" {growth:.2f}; claim ms first {side.claims[0]:.2f}, last {side.claims[-1]:.2f};"
            f" HOT {s['hot']:.1%} of exchanges' updates, {s['head_hot']:.1%} of chain_head's;"
            f" vacuumed {side.vacuums + s['autovacuum']} times, {s['dead']:,} dead rows at the end"
        )
        print("  index MB: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in s["indexes"].items()))
        out += [
            f"server_us_first_{label}={first:.0f}",
            f"server_us_last_{label}={last:.0f}",
            f"growth_{label}={growth:.2f}",
            f"claim_ms_last_{label}={side.claims[-1]:.2f}",
            f"hot_share_{label}={s['hot']:.3f}",
            f"vacuums_{label}={side.vacuums + s['autovacuum']}",
        ]
    out.append(f"head_hot_share_after={found['after']['head_hot']:.3f}")
    print(f"RESULT name=pg_writes size={args.size} rounds={args.rounds} " + " ".join(out))


if __name__ == "__main__":
    asyncio.run(main())
