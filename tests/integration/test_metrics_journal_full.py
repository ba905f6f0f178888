"""``tongban_journal_writes_refused`` on the real ``/metrics`` over HTTP: 1 while this instance's
journal refuses writes for want of room, 0 before and once room is back, on every journal.

``tongban_journal_up`` is a read, and a journal on a full disk still reads, so before this gauge
only /readyz told; the alert TongbanJournalFull is driven by it. A scrape looks for room again
itself (as /readyz does), so the gauge falls back to 0 with no readiness probe and no application.
SQLite's full disk is the writer's page limit; PostgreSQL's is SQLSTATE 53100 raised by triggers in
the test's own schema (tests/integration/test_pg_ready_while_full.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from replay.memory import InMemoryJournal
from tests.conftest import HK_APPLICATION
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_pg_ready_while_full import _full, _room
from tests.integration.test_ready_while_writes_fail import MANY, capped

GAUGE = "tongban_journal_writes_refused"


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema (dropped afterwards, with the triggers it holds)."""
    async with fresh_schema() as schema:
        yield schema


async def refused(http: aiohttp.ClientSession) -> float:
    """The gauge as a scrape of /metrics reads it."""
    async with http.get("/metrics") as r:
        assert r.status == 200
        text = await r.text()
    [value] = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == GAUGE
    ]
    return value


async def apply(http: aiohttp.ClientSession, key: str) -> int:
    body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
    application = {**body, "application": {**HK_APPLICATION, "note": "x" * 2000}}
    async with http.post("/v1/exchanges", json=application, headers={"Idempotency-Key": key}) as r:
        return r.status


async def test_sqlite_gauge_follows_a_full_journal(make_config: Any, broker_at: Any) -> None:
    """SQLite: 0 while writes work; 1 once an application is refused for the full journal, still
    1 at the next scrape; 0 once the page limit is raised, with nothing else written."""
    async with (
        broker_at(make_config()) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        before = await refused(http), await apply(http, "k0")
        await capped(broker.journal, None)
        statuses = [await apply(http, "k1")]
        while statuses[-1] != 503 and len(statuses) < MANY:
            statuses.append(await apply(http, f"k{len(statuses) + 1}"))
        full = await refused(http), await refused(http)
        await capped(broker.journal, 1_000_000)
        again = await refused(http)
        accepted = await apply(http, "k-again")
    assert (before, statuses[-1], full, again, accepted) == ((0.0, 202), 503, (1.0, 1.0), 0.0, 202)


async def test_postgres_gauge_follows_a_full_server(
    pg: PgSchema, make_config: Any, broker_at: Any
) -> None:
    """PostgreSQL: 0 while writes work; 1 once an application is refused 53100, still 1 at the
    next scrape (its probe is refused too); 0 once the server has room, with no /readyz asked."""
    async with (
        broker_at(make_config(), journal_obj=pg.journal()) as (_broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        before = await refused(http), await apply(http, "k0")
        await _full(pg)
        status = await apply(http, "k1")
        full = await refused(http), await refused(http)
        await _room(pg)
        again = await refused(http)
        accepted = await apply(http, "k2")
    assert (before, status, full, again, accepted) == ((0.0, 202), 503, (1.0, 1.0), 0.0, 202)


async def test_memory_gauge_stays_zero(make_config: Any, broker_at: Any) -> None:
    """In memory there is no disk to fill: 0 before, and 0 while its writes fail (an unavailable
    store, not a full one), which tongban_journal_up and /readyz tell instead."""
    journal = InMemoryJournal()
    async with (
        broker_at(make_config(), journal_obj=journal) as (_broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        before = await refused(http), await apply(http, "k0")
        journal.fail_writes = True
        status = await apply(http, "k1")
        during = await refused(http)
        journal.fail_writes = False
    assert (before, status, during) == ((0.0, 202), 503, 0.0)
