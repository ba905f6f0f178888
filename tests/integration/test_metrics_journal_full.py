"""``tongban_journal_writes_refused`` on the real ``/metrics`` over HTTP: 1 while this instance's
journal refuses writes for want of room, 0 before and once room is back, on every journal.

``tongban_journal_up`` is a read, and a journal on a full disk still reads, so before this gauge
only /readyz told; the alert TongbanJournalFull is driven by it. A scrape looks for room again
itself (as /readyz does), so the gauge falls back to 0 with no readiness probe and no application.
SQLite's full disk is the writer's page limit; PostgreSQL's is SQLSTATE 53100 raised by triggers in
the test's own schema (tests/integration/test_pg_ready_while_full.py). Under ``serve --workers``
each worker publishes its own journal's state and a scrape shows 1 if any live worker's is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from replay import pgroom
from replay.memory import InMemoryJournal
from tests.conftest import HK_APPLICATION, REPO
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
    pg: PgSchema, make_config: Any, broker_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: 0 while writes work; 1 once an application is refused 53100, still 1 at the
    next scrape (its probe is refused too); 0 once the server has room, with no /readyz asked."""
    async with (
        broker_at(make_config(), journal_obj=pg.journal()) as (_broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        before = await refused(http), await apply(http, "k0")
        # every scrape probes: room comes back between two of them far sooner than PROBE_EVERY
        monkeypatch.setattr(pgroom, "PROBE_EVERY", 0.0)
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


WORKER = """
import json, os, sys
from federation.runtime.metrics import Metrics

class Journal:
    writes_refused = json.loads(sys.argv[1])

class Host:
    journal = Journal()
    catalogue = None
    owner = "h:" + str(os.getpid())
    def breaker_states(self):
        return {}
    def poll_backlog(self):
        return 0

m = Metrics(Host.owner)
assert m.multiprocess
m.refresh(Host())
if len(sys.argv) > 2:
    sys.stdout.write(__import__("prometheus_client").generate_latest(m._exposed).decode())
"""


def worker(directory: Path, refused: bool, *, render: bool = False) -> str:
    """One `serve --workers` worker publishing its journal's state; what it rendered, if asked."""
    directory.mkdir(exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    args = [sys.executable, "-c", WORKER, json.dumps(refused)] + (["render"] if render else [])
    done = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_workers_show_one_if_any_worker_refuses(tmp_path: Path) -> None:
    """Under `serve --workers`: a scrape of any worker shows 1 (not a count) while live workers'
    journals refuse writes and another's does not, and 0 when none does."""
    worker(tmp_path / "one", True)
    worker(tmp_path / "one", True)
    one = worker(tmp_path / "one", False, render=True)
    worker(tmp_path / "none", False)
    none = worker(tmp_path / "none", False, render=True)
    values = [
        [s.value for f in text_string_to_metric_families(t) for s in f.samples if s.name == GAUGE]
        for t in (one, none)
    ]
    assert values == [[1.0], [0.0]]
