"""The systemd watchdog goes on through errors nobody foresaw, over a real NOTIFY_SOCKET (a Unix
datagram socket in a temp dir) that records what arrives: a ping that fails so is no answer that
round, logged by its type; a WATCHDOG=1 that does not reach systemd (its socket gone, or full
while systemd is busy) is logged by its type and tried again, without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from federation.logging import capture_logs
from federation.runtime.systemd import SystemdNotifier
from tests.waiting import wait_for_sync, wait_until

NAME = "陳大文"
WATCHDOG = {"WATCHDOG": "1"}


@pytest.fixture
def path() -> Iterator[str]:
    """Where systemd's notify socket is (short: sun_path holds 108 bytes); nothing bound yet."""
    with tempfile.TemporaryDirectory(prefix="tb-") as tmp:
        yield str(Path(tmp) / "notify")


def bound(path: str) -> socket.socket:
    """systemd's end: a datagram socket bound at ``path``, reads waiting at most 10 s."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    return sock


def fields(sock: socket.socket) -> dict[str, str]:
    lines = sock.recv(4096).decode().splitlines()
    return dict(line.split("=", 1) for line in lines)


class Recorder:
    """systemd's end, reading as systemd does: every datagram that arrives at ``path`` is kept,
    read in a thread of its own whatever the event loop does; once closed, all of them."""

    def __init__(self, path: str) -> None:
        self.sock = bound(path)
        self.sock.settimeout(0.05)
        self.got: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                self.got.append(fields(self.sock))
            except TimeoutError:  # nothing waiting: done once asked to stop
                if self._stop.is_set():
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


@contextlib.contextmanager
def recording(path: str) -> Iterator[Recorder]:
    """A :class:`Recorder` at ``path`` until the block ends; the path is free again after."""
    recorder = Recorder(path)
    try:
        yield recorder
    finally:
        recorder.close()
        os.unlink(path)


def entries(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    """The entries of ``event``; none names the applicant."""
    assert all(NAME not in repr(e) for e in logs)
    return [e for e in logs if e["event"] == event]


async def logged(logs: Sequence[Mapping[str, Any]], event: str, count: int) -> None:
    """Wait until ``event`` has been logged ``count`` times."""
    await wait_until(lambda: len(entries(logs, event)) == count, what=f"{count} {event}")


def watching(path: str) -> SystemdNotifier:
    return SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # every 100 ms


@pytest.mark.parametrize(
    "error",
    [RuntimeError(f"row of {NAME}"), KeyError(NAME), asyncio.CancelledError(NAME)],
    ids=["RuntimeError", "KeyError", "CancelledError"],
)
async def test_a_ping_that_fails_unforeseen_is_no_answer_and_the_watchdog_goes_on(
    path: str, error: BaseException
) -> None:
    """The first two pings fail in a way nobody foresaw (a stray cancellation among them): no
    WATCHDOG=1 for those rounds, each logged by its type alone; the next pings answer, and
    WATCHDOG=1 arrives for each of them."""
    calls: list[bool] = []  # whether each ping answered

    async def ping() -> None:
        calls.append(len(calls) >= 2)
        if not calls[-1]:
            raise error

    with capture_logs() as logs, recording(path) as systemd:
        async with watching(path).watchdog(ping) as task:
            await wait_until(lambda: len(systemd.got) >= 2, what="two WATCHDOG=1")
            assert task is not None and not task.done()
    assert calls[:3] == [False, False, True]
    assert systemd.got == [WATCHDOG] * calls.count(True)  # one for each ping that answered
    failed = entries(logs, "watchdog_ping_failed")
    assert [e["error"] for e in failed] == [type(error).__name__] * 2


async def test_a_notification_that_does_not_reach_systemd_is_logged_and_tried_again(
    path: str,
) -> None:
    """No socket yet: WATCHDOG=1 fails, logged by its type once for the run of failures; the
    socket comes: WATCHDOG=1 arrives, the run's end logged; it goes away and comes back: the new
    run is logged again and WATCHDOG=1 arrives again. The watchdog never stopped."""

    async def ping() -> None:
        return None

    with capture_logs() as logs:
        async with watching(path).watchdog(ping) as task:
            assert task is not None
            for run in (1, 2):
                await logged(logs, "systemd_notify_failed", run)
                with recording(path) as systemd:
                    await wait_until(lambda: WATCHDOG in systemd.got, what="WATCHDOG=1")
                    await logged(logs, "systemd_notify_recovered", run)
            assert not task.done()
    failed = entries(logs, "systemd_notify_failed")
    assert [(e["error"], e["log_level"]) for e in failed] == [("FileNotFoundError", "warning")] * 2
    assert all(e["failed"] >= 1 for e in entries(logs, "systemd_notify_recovered"))


def full(path: str) -> int:
    """Fill the queue of the socket at ``path`` (systemd busy, reading nothing): how many
    datagrams it took."""
    n = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        while True:
            try:
                filler.sendto(b"FILLER=1", socket.MSG_DONTWAIT, path)
            except BlockingIOError:
                return n
            n += 1


async def test_a_full_notify_socket_does_not_block_the_event_loop(path: str) -> None:
    """systemd is busy and its socket's queue is full: WATCHDOG=1 fails at once (logged by its
    type) instead of waiting in the event loop; once systemd reads its queue, the WATCHDOG=1
    tried again arrives."""
    sock = bound(path)
    queued = full(path)

    async def ping() -> None:
        return None

    def systemd_reads_later(logs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """In a thread of its own (a blocked event loop could not run it): wait for the failure
        logged, then read the queue, whatever happened (a loop blocked in sendto goes on)."""
        try:
            wait_for_sync(
                lambda: len(entries(logs, "systemd_notify_failed")),
                bool,
                what="the full socket logged",
            )
        finally:
            read = [fields(sock) for _ in range(queued)]
        return read

    try:
        with capture_logs() as logs:
            async with watching(path).watchdog(ping):
                read = await asyncio.to_thread(systemd_reads_later, logs)
                after = await asyncio.to_thread(fields, sock)
    finally:
        sock.close()
    assert read == [{"FILLER": "1"}] * queued
    assert after == WATCHDOG
    failed = entries(logs, "systemd_notify_failed")
    assert failed[0]["error"] == "BlockingIOError"
