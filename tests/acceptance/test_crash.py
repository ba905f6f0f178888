"""Zero lost applications: real broker processes killed with SIGKILL, partner outages, slow partners."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.acceptance.conftest import Proc, http, serve
from tests.conftest import HK_APPLICATION
from tests.integration.test_delivery import free_port
from tests.waiting import wait_until

BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}
N = 1000


def url_of(proc: Proc) -> str:
    return proc.first_line.rsplit(" ", 1)[1]


async def submit_all(target: dict[str, str], accepted: set[str]) -> None:
    """Submit N applications, 32 at a time, retrying refused connections with the same key;
    ``accepted`` gets the exchange id of each (the key the partner is sent)."""
    keys = asyncio.Queue[str]()
    for i in range(N):
        keys.put_nowait(f"crash-{i:04d}")
    timeout = aiohttp.ClientTimeout(total=5)

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=timeout) as s:
            while not keys.empty():
                key = keys.get_nowait()
                while True:
                    try:
                        async with s.post(
                            f"{target['url']}/v1/exchanges",
                            json=BODY,
                            headers={"Idempotency-Key": key},
                        ) as r:
                            if r.status in (200, 202):
                                accepted.add((await r.json())["id"])
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    await asyncio.sleep(0.05)  # broker down: try the same key again

    await asyncio.gather(*(client() for _ in range(32)))


def stats(url: str) -> dict[str, Any]:
    status, body = http("GET", f"{url}/v1/stats")
    assert status == 200
    return body["exchanges"]


@pytest.mark.slow
async def test_kill_9_twice_loses_nothing(tmp_path: Path, make_config, procs: list[Proc]) -> None:
    """SIGKILL during intake and during deliveries: every application delivered once, same keys."""
    root = make_config(max_attempts=100, read="5s", total="10s")
    journal = tmp_path / "crash.sqlite"
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0.03})  # keep deliveries in flight

    broker = serve(root, journal, sim_url, tmp_path / "b1.log")
    procs.append(broker)
    target = {"url": url_of(broker)}
    accepted: set[str] = set()
    submitting = asyncio.create_task(submit_all(target, accepted))

    # Kill 1: in the middle of intake.
    await wait_until(lambda: len(accepted) >= 300, timeout=60, what="300 accepted")
    broker.popen.send_signal(signal.SIGKILL)
    broker.popen.wait()
    broker = serve(root, journal, sim_url, tmp_path / "b2.log")
    procs.append(broker)
    target["url"] = url_of(broker)
    await asyncio.wait_for(submitting, 120)
    assert len(accepted) == N

    # Kill 2: while deliveries are in flight.
    def seen() -> dict[str, Any]:
        return http("GET", f"{sim_url}/_sim/requests")[1]["keys"]

    await wait_until(lambda: len(seen()) >= N // 2, timeout=60, what="half delivered")
    assert stats(target["url"]).get("delivered", 0) < N
    broker.popen.send_signal(signal.SIGKILL)
    broker.popen.wait()
    broker = serve(root, journal, sim_url, tmp_path / "b3.log")
    procs.append(broker)
    target["url"] = url_of(broker)
    await wait_until(
        lambda: stats(target["url"]).get("delivered", 0) == N, timeout=120, what="all delivered"
    )

    final = stats(target["url"])
    partner_saw = seen()
    broker.stop()
    assert final == {"delivered": N}
    assert set(partner_saw) == accepted  # every key reached the partner; no unknown key did
    with sqlite3.connect(journal) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM exchanges"
        ).fetchone()
        reclaimed = conn.execute(
            "SELECT count(DISTINCT exchange_id) FROM events WHERE kind = 'lease_reclaimed'"
        ).fetchone()[0]
    assert rows == keys == N  # one exchange per accepted application
    assert reclaimed > 0  # the killed broker's work was taken over by lease expiry
    duplicates = {k: v["count"] for k, v in partner_saw.items() if v["count"] > 1}
    # A duplicate is possible only for work in flight at a kill, and it carried the same key.
    assert len(duplicates) <= 2 * 8 * 2


async def test_outage_then_recovery_with_processes(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """Partner refuses connections, then comes back: all delivered, breaker opened and closed."""
    root = make_config(max_attempts=40)
    partners = root / "partners.yaml"
    partners.write_text(
        partners.read_text().replace(
            "    concurrency: 8\n",
            "    concurrency: 8\n    breaker: {failures: 3, cool_down: 500ms}\n",
        ),
        encoding="utf-8",
    )
    port = free_port()
    journal = tmp_path / "outage.sqlite"
    broker = serve(root, journal, f"http://127.0.0.1:{port}", tmp_path / "b.log")
    procs.append(broker)
    url = url_of(broker)
    for i in range(50):
        status, _ = http("POST", f"{url}/v1/exchanges", BODY, {"Idempotency-Key": f"out-{i}"})
        assert status == 202
    await wait_until(
        lambda: http("GET", f"{url}/v1/partners")[1]["partners"][0]["breaker"]["state"] != "closed",
        timeout=20,
        what="the breaker to open",
    )
    await wait_until(  # stay down until a probe has failed and opened it again
        lambda: http("GET", f"{url}/v1/partners")[1]["partners"][0]["breaker"]["times_opened"] >= 2,
        timeout=20,
        what="a failed probe to open the breaker again",
    )
    sim = Proc(
        "simulate",
        "--config",
        str(root),
        "--partner",
        "hk",
        "--port",
        str(port),
        log=tmp_path / "sim.log",
    )
    procs.append(sim)
    await wait_until(lambda: stats(url).get("delivered", 0) == 50, timeout=60, what="all delivered")
    partner = http("GET", f"{url}/v1/partners")[1]["partners"][0]
    assert partner["breaker"]["state"] == "closed"
    assert partner["breaker"]["times_opened"] >= 1
    with sqlite3.connect(journal) as conn:
        most = conn.execute("SELECT max(attempts) FROM exchanges").fetchone()[0]
    assert most <= 40
    assert "breaker_open" in broker.log.read_text()


async def test_slow_partner_is_unknown_outcome_retried_with_same_key(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """Replies after the read timeout: unknown_outcome recorded, the retry carries the same key."""
    root = make_config(read="300ms", total="2s", max_attempts=10)
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0.8})
    broker = serve(root, tmp_path / "slow.sqlite", sim_url, tmp_path / "b.log")
    procs.append(broker)
    url = url_of(broker)
    status, answer = http("POST", f"{url}/v1/exchanges", BODY, {"Idempotency-Key": "slow-1"})
    assert status == 202
    await wait_until(
        lambda: any(
            a["outcome"] == "unknown_outcome"
            for a in http("GET", f"{url}/v1/exchanges/{answer['id']}")[1]["attempts"]
        ),
        timeout=20,
        what="an unknown outcome",
    )
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0})
    await wait_until(
        lambda: http("GET", f"{url}/v1/exchanges/{answer['id']}")[1]["state"] == "delivered",
        timeout=30,
        what="delivery",
    )
    view = http("GET", f"{url}/v1/exchanges/{answer['id']}")[1]
    keys = {a["request"]["headers"]["Idempotency-Key"] for a in view["attempts"]}
    assert keys == {answer["id"]}  # one key on every attempt: the exchange's id
    assert http("GET", f"{sim_url}/_sim/requests")[1]["keys"][answer["id"]]["count"] >= 2
