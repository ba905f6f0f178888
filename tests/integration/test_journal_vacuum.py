"""PostgreSQL's exchanges are vacuumed by the work done (migration 0011), and what that leaves
alone: every search answers as before, and lease updates stay HOT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from federation.domain.ids import new_id
from replay import pgsql
from replay.journal import Query
from replay.search import POSTGRESQL, search_sql
from tests.integration.pg import PgSchema, fresh_schema

NOW = 1_790_000_000.0
STATES = ("received", "queued", "delivering", "retry_wait", "delivered", "failed", "rejected")
INSERT = (
    "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
    " request_hash, state, attempts, lease_owner, lease_until, created_at, updated_at)"
    " VALUES ($1, 'outbound', $2, $3, 'S', $4, 'h', $5, 1, $6, $7, $8, $8)"
)
SEARCHES = [
    Query(limit=20),
    Query(states=("failed",), limit=5),
    Query(states=("delivered", "rejected"), partner="mo", limit=7),
    Query(partner="hk", limit=9),
    Query(source="portal-b", limit=4),
    Query(idempotency_key="k17", limit=3),
    Query(states=("queued",), source="portal-a", until=NOW + 30, limit=50),
]


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema (fails under CI when there is no server)."""
    async with fresh_schema() as schema:
        yield schema


async def connect(pg: PgSchema) -> Any:
    return await asyncpg.connect(pg.dsn, server_settings={"search_path": f'"{pg.schema}"'})


async def migrated_before_0011(pg: PgSchema, exchanges: int = 60) -> Any:
    """A connection to a journal as a release before migration 0011 left it, with exchanges in
    every state but unconfirmed (those that may be leased leased elsewhere)."""
    conn = await connect(pg)
    async with conn.transaction():
        await conn.execute(f'CREATE SCHEMA "{pg.schema}"')
        await conn.execute(pgsql.MIGRATIONS_TABLE)
        for number, name, sql in pgsql.migration_files():
            if number < 11:
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
    for n in range(exchanges):
        state = STATES[n % len(STATES)]
        leased = state in ("received", "queued", "delivering")
        await conn.execute(
            INSERT,
            new_id(NOW + n),
            "portal-a" if n % 3 else "portal-b",
            ("hk", "mo", "sc")[n % 4 % 3],
            f"k{n}",
            state,
            "elsewhere" if leased else None,
            NOW + 3600 if leased else None,
            NOW + n,
        )
    return conn


async def reloptions(pg: PgSchema, table: str) -> set[str]:
    conn = await connect(pg)
    try:
        found = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)", f'"{pg.schema}".{table}'
        )
        return set(found or ())
    finally:
        await conn.close()


async def test_pg_exchanges_are_vacuumed_after_a_hundredth_of_them_changed(pg: PgSchema) -> None:
    """Autovacuum comes to exchanges after 1 % of its rows (plus 1,000) are dead versions, not
    PostgreSQL's 20 %: on a journal of a million exchanges, about 3,700 deliveries instead of
    67,000 leave dead entries for claim() to walk past. The room for HOT updates stays."""
    j = pg.journal()
    await j.open()
    await j.close()
    assert {
        "autovacuum_vacuum_scale_factor=0.01",
        "autovacuum_vacuum_threshold=1000",
        "fillfactor=90",
    } <= await reloptions(pg, "exchanges")


async def test_pg_a_journal_migrated_to_0011_answers_every_search_as_before(pg: PgSchema) -> None:
    """The same exchanges, in the same order, for each search, before and after the migration."""
    conn = await migrated_before_0011(pg)
    try:
        before = []
        for query in SEARCHES:
            sql, args = search_sql(query, POSTGRESQL)
            before.append([r["id"] for r in await conn.fetch(sql, *args)])
    finally:
        await conn.close()
    j = pg.journal()
    await j.open()  # applies 0011
    try:
        after = [[ex.id for ex in await j.search(query)] for query in SEARCHES]
        assert after == before
        assert all(before[:-1]) and len(before[0]) == 20  # the searches found something
        now = NOW + 60
        assert await j.claim(owner="w", now=now, lease_until=now + 30, limit=100) == []
    finally:
        await j.close()


async def test_pg_lease_renewals_and_claims_are_hot_updates(pg: PgSchema) -> None:
    """Heartbeats and claims touch no indexed column, so PostgreSQL updates those rows in place
    (HOT): no new index entries, nothing for vacuum to clear from the indexes. (A few rows, so
    that one page has room for every new version.)"""
    conn = await migrated_before_0011(pg, exchanges=len(STATES))
    try:
        await conn.close()
        j = pg.journal()
        await j.open()
        await j.close()
        conn = await connect(pg)
        ids = [
            r[0]
            for r in await conn.fetch("SELECT id FROM exchanges WHERE lease_owner = 'elsewhere'")
        ]
        assert ids
        async with conn.transaction():
            renewed = await conn.execute(pgsql.RENEW, NOW + 7200, "elsewhere", ids)
            released = await conn.execute(pgsql.RELEASE, "elsewhere")
            claimed = await conn.fetch(pgsql.CLAIM, NOW + 60, 100, "w", NOW + 90)
            updated, hot = await conn.fetchrow(
                "SELECT pg_stat_get_xact_tuples_updated(c), pg_stat_get_xact_tuples_hot_updated(c)"
                " FROM to_regclass('exchanges') AS c"
            )
        assert pgsql.affected(renewed) == pgsql.affected(released) == len(ids) == len(claimed)
        assert updated == hot == 3 * len(ids)
    finally:
        await conn.close()
