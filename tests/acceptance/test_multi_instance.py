"""Several broker processes on one PostgreSQL journal: shared work, one crash, nothing lost."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.conftest import Proc, http, serve
from tests.conftest import HK_APPLICATION
from tests.waiting import wait_for, wait_until

PG = os.environ.get("TONGBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}
N = 2000


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (skip without one, fail in CI)."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f"CREATE SCHEMA {name}"))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG} is not reachable: {exc}")
    yield name
    asyncio.run(run(f"DROP SCHEMA {name} CASCADE"))


async def submit_round_robin(urls: list[str], alive: list[bool], accepted: set[str]) -> None:
    """N applications over the instances in turn; a dead instance's share goes to the others.
    ``accepted`` gets the exchange id of each (the key the partner is sent)."""
    keys = asyncio.Queue[str]()
    for i in range(N):
        keys.put_nowait(f"multi-{i:05d}")
    timeout = aiohttp.ClientTimeout(total=5)

    async def client(n: int) -> None:
        async with aiohttp.ClientSession(timeout=timeout) as s:
            turn = n
            while not keys.empty():
                key = keys.get_nowait()
                while True:
                    turn += 1
                    target = turn % len(urls)
                    if not alive[target]:
                        continue
                    try:
                        async with s.post(
                            f"{urls[target]}/v1/exchanges",
                            json=BODY,
                            headers={"Idempotency-Key": key},
                        ) as r:
                            if r.status in (200, 202):
                                accepted.add((await r.json())["id"])
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        await asyncio.sleep(0.02)

    await asyncio.gather(*(client(n) for n in range(24)))


@pytest.mark.slow
async def test_three_instances_one_killed(
    tmp_path: Path, make_config, procs: list[Proc], pg_schema: str
) -> None:
    """3 instances, 2,000 applications round-robin, kill -9 of one half-way: all delivered once."""
    import asyncpg

    root = make_config(max_attempts=100)
    journal = f"{PG}?schema={pg_schema}"
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0.01})
    brokers = [serve(root, journal, sim_url, tmp_path / f"b{i}.log") for i in range(3)]
    procs.extend(brokers)
    urls = [b.first_line.rsplit(" ", 1)[1] for b in brokers]
    alive = [True, True, True]
    accepted: set[str] = set()
    submitting = asyncio.create_task(submit_round_robin(urls, alive, accepted))
    await wait_until(lambda: len(accepted) >= N // 2, what="half the applications", timeout=120)
    # Kill it while it holds work (a lease it has not finished), so that there is work to take over.
    victim = f"%:{brokers[1].popen.pid}:%"
    watch = await asyncpg.connect(PG, server_settings={"search_path": pg_schema})

    async def held() -> int:
        return int(
            await watch.fetchval(
                "SELECT count(*) FROM exchanges WHERE lease_owner LIKE $1"
                " AND state IN ('received', 'queued', 'delivering')",
                victim,
            )
        )

    try:
        await wait_for(held, bool, what="the victim to hold unfinished work", interval=0.005)
        brokers[1].popen.send_signal(signal.SIGKILL)
    finally:
        await watch.close()
    brokers[1].popen.wait()
    alive[1] = False
    await asyncio.wait_for(submitting, 180)

    async def exchanges() -> dict[str, int]:
        return dict(http("GET", f"{urls[0]}/v1/stats")[1]["exchanges"])

    stats = await wait_for(
        exchanges, lambda s: s.get("delivered", 0) == N, what="all delivered", timeout=180
    )
    assert stats == {"delivered": N}
    seen = http("GET", f"{sim_url}/_sim/requests")[1]["keys"]
    assert set(seen) == accepted and len(accepted) == N

    conn = await asyncpg.connect(PG, server_settings={"search_path": pg_schema})
    try:
        rows = await conn.fetch(
            "SELECT exchange_id, at, data FROM events"
            " WHERE kind = 'attempt_finished' ORDER BY exchange_id, seq"
        )
        reclaimed = await conn.fetchval(
            "SELECT count(*) FROM events WHERE kind = 'lease_reclaimed'"
        )
    finally:
        await conn.close()
    # No exchange was delivering on two instances at once: its attempts (each from its start to
    # its end, as its attempt_finished event says) never overlap in time.
    spans: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        data = json.loads(bytes(row["data"]))
        spans.setdefault(row["exchange_id"], []).append((float(data["started_at"]), row["at"]))
    assert spans, "the instances recorded their attempts"
    for xid, attempts in spans.items():
        attempts.sort()
        for (_, end), (start, _) in itertools.pairwise(attempts):
            assert start >= end, xid
    assert reclaimed > 0  # the killed instance's work was taken over by lease expiry
