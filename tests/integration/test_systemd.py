"""sd_notify over a real Unix datagram socket: readiness, stopping, the watchdog and its conditions."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from federation.domain.errors import JournalUnavailable
from federation.runtime.shutdown import EXIT_OVERRUN, Deadline
from federation.runtime.systemd import SystemdNotifier


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket at a filesystem path (short: sun_path holds 108 bytes) and that path."""
    with tempfile.TemporaryDirectory(prefix="tb-") as tmp:
        path = str(Path(tmp) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        yield sock, path
        sock.close()


def fields(sock: socket.socket) -> dict[str, str]:
    lines = sock.recv(4096).decode().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_ready_and_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    """READY=1 carries our pid and a status; STOPPING=1 follows, one datagram each."""
    sock, path = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("listening on http://127.0.0.1:8080")
    assert notifier.stopping("draining")
    assert fields(sock) == {
        "READY": "1",
        "STATUS": "listening on http://127.0.0.1:8080",
        "MAINPID": str(os.getpid()),
    }
    assert fields(sock) == {"STOPPING": "1", "STATUS": "draining"}


def test_an_abstract_socket_address_is_used_as_systemd_writes_it() -> None:
    """NOTIFY_SOCKET=@name means the abstract namespace (a leading NUL byte)."""
    name = f"tb-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).notify(STATUS="hello")
        assert fields(sock) == {"STATUS": "hello"}


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    """No NOTIFY_SOCKET: every call is a no-op; a socket that went away is a warning, no error."""
    assert not SystemdNotifier({}).ready("x")
    gone = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent/tongban-notify"})
    assert gone.enabled and not gone.ready("x")


def test_the_watchdog_interval_is_half_the_period_and_ours_only() -> None:
    """WATCHDOG_USEC halves to the ping interval; one meant for another pid is not ours."""
    mine = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier(mine).watchdog_interval == 10.0
    assert SystemdNotifier({**mine, "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert SystemdNotifier({"WATCHDOG_USEC": "nonsense"}).watchdog_interval is None
    assert SystemdNotifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None


async def test_the_watchdog_pings_while_the_journal_answers(
    listener: tuple[socket.socket, str],
) -> None:
    """WATCHDOG=1 arrives when the journal answers, and also when it answers with an error."""
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}  # every 100 ms
    answers: list[str] = []

    async def ping() -> None:
        answers.append("ping")
        if len(answers) > 1:
            raise JournalUnavailable("database down")  # down, not wedged: still alive

    async with SystemdNotifier(env).watchdog(ping):
        got = [await asyncio.to_thread(fields, sock) for _ in range(2)]
    assert got == [{"WATCHDOG": "1"}, {"WATCHDOG": "1"}]


async def test_a_hung_journal_holds_the_watchdog_back(listener: tuple[socket.socket, str]) -> None:
    """A ping that never returns sends no WATCHDOG=1: systemd restarts the wedged process."""
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    hung = asyncio.Event()
    calls = 0

    async def ping() -> None:
        nonlocal calls
        calls += 1
        await hung.wait()

    async with SystemdNotifier(env).watchdog(ping):
        while calls < 3:  # three periods passed, each ping abandoned at its deadline
            await asyncio.sleep(0.01)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


def test_the_drain_deadline_exits_unless_cancelled() -> None:
    """The deadline calls exit with EXIT_OVERRUN when it fires, and never once cancelled."""
    fired: list[int] = []
    deadline = Deadline(0.01, exit=fired.append)
    deadline._timer.join(10)
    cancelled = Deadline(60, exit=fired.append)
    cancelled.cancel()
    cancelled._timer.join(10)
    assert fired == [EXIT_OVERRUN]
