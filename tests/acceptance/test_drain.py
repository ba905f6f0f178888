"""SIGTERM drains a real `tongban serve` process: attempts finish or are released, within a deadline.

Each broker is a subprocess on a SQLite journal with a partner simulator (another subprocess) whose
answers are delayed; systemd is played by a Unix datagram socket the test binds (NOTIFY_SOCKET).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.acceptance.conftest import Proc, http, serve
from tests.conftest import HK_APPLICATION
from tests.waiting import wait_until

BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}
LONG_LEASE = "600"  # far beyond the test: only a released lease lets another instance take over


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A notify socket (abstract address) that the brokers started by the test report to."""
    name = f"tongban-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


def messages(sock: socket.socket, until: str) -> list[dict[str, str]]:
    """Datagrams received, each as its KEY=value lines, up to the first one that holds ``until``."""
    out = []
    while True:
        lines = sock.recv(4096).decode().splitlines()
        out.append(dict(line.split("=", 1) for line in lines))
        if until in out[-1]:
            return out


def row(journal: Path, key: str) -> sqlite3.Row:
    """The exchange's row as the journal file holds it."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute(
            "SELECT state, lease_owner, attempts FROM exchanges WHERE idempotency_key = ?", (key,)
        ).fetchone()
    finally:
        conn.close()
    assert found is not None
    return found


def submit(proc: Proc, key: str) -> None:
    url = proc.first_line.rsplit(" ", 1)[1]
    status, _ = http("POST", f"{url}/v1/exchanges", BODY, {"Idempotency-Key": key})
    assert status == 202


def simulator(root: Path, tmp_path: Path, procs: list[Proc], delay: float) -> str:
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url: str = json.loads(sim.first_line)["hk"]
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": delay})
    return sim_url


@pytest.mark.slow
async def test_sigterm_lets_an_attempt_in_flight_finish(
    tmp_path: Path, make_config, procs: list[Proc], systemd: socket.socket
) -> None:
    """READY once listening; on SIGTERM, STOPPING, the slow attempt delivered, exit 0, no lease."""
    root = make_config(read="30s", total="60s")
    journal = tmp_path / "drain.sqlite"
    sim_url = simulator(root, tmp_path, procs, delay=1.0)  # well inside the worker's 5 s grace
    broker = serve(root, journal, sim_url, tmp_path / "b.log", "--lease", LONG_LEASE)
    procs.append(broker)
    ready = messages(systemd, until="READY")[-1]
    assert ready["READY"] == "1" and ready["MAINPID"] == str(broker.popen.pid)
    submit(broker, "drain-finish")
    await wait_until(
        lambda: row(journal, "drain-finish")["state"] == "delivering", what="attempt on the wire"
    )
    status = broker.stop()
    assert status == 0, broker.log.read_text()[-2000:]
    assert messages(systemd, until="STOPPING")[-1]["STOPPING"] == "1"
    done = row(journal, "drain-finish")
    assert (done["state"], done["lease_owner"], done["attempts"]) == ("delivered", None, 1)


@pytest.mark.slow
async def test_sigterm_releases_a_stuck_attempt_for_the_next_instance(
    tmp_path: Path, make_config, procs: list[Proc], systemd: socket.socket
) -> None:
    """An attempt longer than the grace is cut and its lease released: another instance delivers
    it at once, though the lease it had would have lasted ten minutes."""
    root = make_config(read="120s", total="180s")
    journal = tmp_path / "drain.sqlite"
    sim_url = simulator(root, tmp_path, procs, delay=90)  # far beyond the worker's grace
    first = serve(root, journal, sim_url, tmp_path / "b1.log", "--lease", LONG_LEASE)
    procs.append(first)
    submit(first, "drain-stuck")
    await wait_until(
        lambda: row(journal, "drain-stuck")["state"] == "delivering", what="attempt on the wire"
    )
    assert first.stop() == 0, first.log.read_text()[-2000:]
    cut = row(journal, "drain-stuck")
    assert (cut["state"], cut["lease_owner"]) == ("delivering", None)
    http("POST", f"{sim_url}/_sim/behaviour", {"delay": 0})
    second = serve(root, journal, sim_url, tmp_path / "b2.log", "--lease", LONG_LEASE)
    procs.append(second)
    await wait_until(
        lambda: row(journal, "drain-stuck")["state"] == "delivered",
        what="the released attempt delivered by the next instance",
        timeout=30,
    )


@pytest.mark.slow
@pytest.mark.parametrize("drain", ["1", "3"])
async def test_a_short_drain_cuts_the_attempt_sooner_and_still_releases_it(
    tmp_path: Path, make_config, procs: list[Proc], systemd: socket.socket, drain: str
) -> None:
    """With --drain-timeout shorter than the worker's 5 s grace, and an idle keep-alive
    connection to linger for, the grace shrinks to fit: the stuck attempt is cut, its lease
    released and the journal closed within the deadline, exit 0 (before, the full 5 s grace ran
    past the deadline: exit 70, the lease still held until it expired)."""
    root = make_config(read="120s", total="180s")
    journal = tmp_path / "drain.sqlite"
    sim_url = simulator(root, tmp_path, procs, delay=90)
    broker = serve(
        root, journal, sim_url, tmp_path / "b.log", "--lease", LONG_LEASE, "--drain-timeout", drain
    )
    procs.append(broker)
    submit(broker, "drain-short")
    await wait_until(
        lambda: row(journal, "drain-short")["state"] == "delivering", what="attempt on the wire"
    )
    idle = idle_connection(broker)
    try:
        began = time.monotonic()
        status = broker.stop()
        took = time.monotonic() - began
    finally:
        idle.close()
    assert status == 0, broker.log.read_text()[-2000:]
    assert took < float(drain), f"the stop took {took:.2f} s"
    assert "drain_overrun" not in broker.log.read_text()
    cut = row(journal, "drain-short")
    assert (cut["state"], cut["lease_owner"]) == ("delivering", None)


@pytest.mark.slow
async def test_a_drain_longer_than_its_deadline_is_cut_short(
    tmp_path: Path, make_config, procs: list[Proc], systemd: socket.socket
) -> None:
    """A drain the journal holds up (another process keeps SQLite's write lock, so releasing the
    leases waits out the busy timeout) exits 70 at the deadline and says so in its log; what it
    had committed stays in the journal."""
    root = make_config(read="120s", total="180s")
    journal = tmp_path / "drain.sqlite"
    sim_url = simulator(root, tmp_path, procs, delay=90)
    broker = serve(
        root, journal, sim_url, tmp_path / "b.log", "--lease", LONG_LEASE, "--drain-timeout", "1"
    )
    procs.append(broker)
    submit(broker, "drain-overrun")
    await wait_until(
        lambda: row(journal, "drain-overrun")["state"] == "delivering", what="attempt on the wire"
    )
    holder = sqlite3.connect(journal, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held through the drain
        assert broker.stop() == 70
    finally:
        holder.close()
    assert "drain_overrun" in broker.log.read_text()
    assert row(journal, "drain-overrun")["state"] == "delivering"


def idle_connection(proc: Proc) -> socket.socket:
    """A keep-alive connection that was answered once and then sends nothing more."""
    where = urlsplit(proc.first_line.rsplit(" ", 1)[1])
    assert where.hostname is not None and where.port is not None
    conn = socket.create_connection((where.hostname, where.port), timeout=10)
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n")
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    return conn
