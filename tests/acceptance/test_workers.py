"""`tongban serve --workers N`: real worker processes on one port, sharing one SQLite journal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.conftest import Proc, http, run, serve
from tests.conftest import HK_APPLICATION
from tests.waiting import wait_until

BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}


def workers_of(parent: Proc) -> list[int]:
    """The pids of the parent's worker processes."""
    pid = parent.popen.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(p) for p in text.split())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def delivered(url: str) -> int:
    status, body = http("GET", f"{url}/v1/stats")
    assert status == 200
    return int(body["exchanges"].get("delivered", 0))


def submit(url: str, keys: range, prefix: str) -> None:
    """Submit one application per key, each on a new connection, as a client does: a request
    that fails or times out is sent again with the same key, until it is accepted."""
    for i in keys:
        while True:
            try:
                status, answer = http(
                    "POST", f"{url}/v1/exchanges", BODY, {"Idempotency-Key": f"{prefix}-{i}"}
                )
            except OSError:
                continue
            assert status in (200, 202), answer
            break


def start(tmp_path: Path, root: Path, procs: list[Proc], *extra: str) -> tuple[Proc, str, Path]:
    """A partner simulator and `tongban serve --workers 2`; the parent, its URL, the journal."""
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0.02})  # deliveries stay in flight a while
    journal = tmp_path / "workers.sqlite"
    parent = serve(root, journal, sim_url, tmp_path / "b.log", "--workers", "2", *extra)
    procs.append(parent)
    return parent, parent.first_line.rsplit(" ", 1)[1], journal


@pytest.mark.slow
async def test_two_workers_share_port_and_journal_and_a_killed_one_is_replaced(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """Both workers take applications; SIGKILL of one: replaced, its work taken over, none lost."""
    parent, url, journal = start(tmp_path, make_config(max_attempts=50), procs, "--log-level=info")
    first = workers_of(parent)
    assert len(first) == 2
    await asyncio.to_thread(submit, url, range(60), "a")
    await wait_until(lambda: delivered(url) == 60, timeout=60, what="60 delivered")
    owners = {
        line["owner"]
        for line in map(json.loads, parent.log.read_text().splitlines())
        if line.get("event") == "exchange_received"
    }
    assert len(owners) == 2  # the kernel spread the connections over both workers

    submitting = asyncio.create_task(asyncio.to_thread(submit, url, range(200), "b"))
    await wait_until(lambda: delivered(url) >= 80, timeout=60, what="deliveries under way")
    victim = first[0]
    os.kill(victim, signal.SIGKILL)
    await wait_until(
        lambda: len(workers_of(parent)) == 2 and victim not in workers_of(parent),
        timeout=60,
        what="the killed worker replaced",
    )
    await asyncio.wait_for(submitting, 120)
    await wait_until(lambda: delivered(url) == 260, timeout=120, what="all 260 delivered")
    with sqlite3.connect(journal) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM exchanges"
        ).fetchone()
    assert rows == keys == 260
    assert "worker_restarted" in parent.log.read_text()


@pytest.mark.slow
async def test_sighup_restarts_workers_one_at_a_time_refusing_nothing(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """SIGHUP: every worker replaced while a client keeps submitting, no request refused; SIGTERM
    then stops the parent and every worker."""
    parent, url, _ = start(tmp_path, make_config(), procs)
    before = workers_of(parent)
    answers: list[int] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http_:
            i = 0
            while not stop.is_set():
                # a new connection each time: every request meets whichever worker listens now
                async with http_.post(
                    f"{url}/v1/exchanges",
                    json=BODY,
                    headers={"Idempotency-Key": f"hup-{n}-{i}", "Connection": "close"},
                ) as r:
                    answers.append(r.status)
                i += 1

    clients = [asyncio.create_task(client(n)) for n in range(4)]
    await wait_until(lambda: len(answers) >= 20, timeout=60, what="requests answered")
    parent.popen.send_signal(signal.SIGHUP)
    await wait_until(
        lambda: not set(workers_of(parent)) & set(before) and len(workers_of(parent)) == 2,
        timeout=120,
        what="both workers replaced",
    )
    stop.set()
    await asyncio.gather(*clients)
    assert set(answers) == {202}
    await wait_until(lambda: delivered(url) == len(answers), timeout=60, what="all delivered")
    last = workers_of(parent)
    assert parent.stop(signal.SIGTERM) == 0
    assert not [pid for pid in last if alive(pid)]


@pytest.mark.slow
async def test_a_reload_through_one_worker_reaches_every_worker(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """POST /v1/admin/reload is taken by one worker; that worker has its parent restart every
    worker in turn, so all of them serve the configuration it checked (a new mapping on disk),
    not only the one the request happened to reach. A refused reload restarts nothing."""
    root = make_config()
    parent, url, _ = start(tmp_path, root, procs)
    before = workers_of(parent)
    status, answer = http("POST", f"{url}/v1/admin/reload")
    assert status == 200 and answer["status"] == "reloaded", answer
    await wait_until(
        lambda: not set(workers_of(parent)) & set(before) and len(workers_of(parent)) == 2,
        timeout=120,
        what="both workers restarted after the reload",
    )
    after = workers_of(parent)
    (root / "partners.yaml").write_text("partners: [", encoding="utf-8")  # not YAML
    status, answer = http("POST", f"{url}/v1/admin/reload")
    assert status == 422 and answer["type"].endswith("invalid-configuration"), answer
    await asyncio.sleep(1.0)
    assert workers_of(parent) == after  # nothing restarted for a refused reload


def test_workers_refuse_a_journal_they_cannot_share(make_config) -> None:
    """--workers on memory: (one journal per process) is exit 2 saying why, before any worker."""
    result = run("serve", "--config", str(make_config()), "--journal", "memory:", "--workers", "2")
    assert result.returncode == 2
    assert "--workers needs a journal the workers share" in result.stderr
