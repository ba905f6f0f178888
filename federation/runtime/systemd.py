"""Telling systemd how the broker is doing: ``sd_notify`` over the ``NOTIFY_SOCKET`` datagram socket.

With ``Type=notify`` in the unit (``federation/deploy/tongban.service``) systemd passes the path of
a Unix datagram socket in ``NOTIFY_SOCKET`` (``@name`` for an abstract one) and waits for
``READY=1`` before it counts the service as started; ``STOPPING=1`` says a drain has begun. With
``WatchdogSec=`` it also passes ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, the process meant) and
restarts the service when no ``WATCHDOG=1`` arrives within that time. The protocol is one
datagram of ``KEY=value`` lines; nothing of libsystemd is needed.

The watchdog pings only while the event loop turns and the journal answers: a ping that hangs past
the watchdog's half-period holds the next one back, so a wedged writer thread or a lost database
connection that never returns gets the process restarted. A journal that answers with an error
(a database that is down) still counts as alive: restarting would not bring it back, and
``/readyz`` already tells the load balancer. Nothing one round meets ends the watchdog (which
nothing would start again: systemd would restart a healthy broker at its next timeout): a ping that
fails in a way nobody foresaw is no answer that round, logged by its type; a ``WATCHDOG=1`` that
does not reach systemd (its socket gone, or full while systemd is busy: the watchdog never waits
for it in the event loop) is logged and tried again.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from structlog.typing import FilteringBoundLogger

from federation.domain.errors import FederationError
from federation.logging import bare_traceback, get_logger

Ping = Callable[[], Awaitable[None]]
NOTIFY_TRIES = 3  # a WATCHDOG=1 that did not reach systemd is tried again within its round


class SystemdNotifier:
    """Sends state changes to systemd's notify socket (if there is one)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + raw[1:] if raw.startswith("@") else raw
        self.watchdog_interval = _watchdog_interval(env)
        self._log = get_logger(component="systemd")
        self._failed = 0  # notifications in a row that did not reach systemd

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (the unit is ``Type=notify``)."""
        return bool(self.address)

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``READY=1``, ``STATUS=…``); whether systemd was told. Never
        raises. A one-off such as ``READY=1`` waits while systemd's queue is full (lost, it would
        never count the service as started); the watchdog's do not (:meth:`_alive`)."""
        return self._send(fields, 0)

    def _send(self, fields: Mapping[str, str | int], flags: int) -> bool:
        """One datagram of ``fields`` (``socket.MSG_DONTWAIT`` in ``flags``: a full queue is a
        failure, not a wait). The first of a run of failures is logged by its type (each one
        would flood the log while a socket stays away), and so is the end of the run."""
        if not self.enabled:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, flags, self.address)
        except Exception as exc:  # an OSError mostly; none may end the watchdog
            self._failed += 1
            if self._failed == 1:
                self._log.warning("systemd_notify_failed", error=type(exc).__name__)
            return False
        if self._failed:
            self._log.info("systemd_notify_recovered", failed=self._failed)
            self._failed = 0
        return True

    def ready(self, status: str) -> bool:
        """The broker listens and delivers."""
        return self.notify(READY=1, STATUS=status, MAINPID=os.getpid())

    def stopping(self, status: str) -> bool:
        """A drain has begun."""
        return self.notify(STOPPING=1, STATUS=status)

    @contextlib.asynccontextmanager
    async def watchdog(self, ping: Ping) -> AsyncIterator[asyncio.Task[None] | None]:
        """Ping the watchdog (if systemd asked for one) while the body runs."""
        task = None
        if self.enabled and self.watchdog_interval is not None:
            task = asyncio.create_task(self._watch(ping, self.watchdog_interval), name="watchdog")
        try:
            yield task
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch(self, ping: Ping, every: float) -> None:
        """Every ``every`` seconds, until cancelled: ``WATCHDOG=1`` if ``ping`` answered. No
        round ends the loop (:func:`_answers`, :meth:`_alive`)."""
        while True:
            if await _answers(ping, every, self._log):
                await self._alive(every)
            await asyncio.sleep(every)

    async def _alive(self, every: float) -> bool:
        """``WATCHDOG=1``, never waiting in the event loop: tried again a tenth of ``every`` later
        should it not reach systemd (up to :data:`NOTIFY_TRIES` times; the next round tries
        anew). Whether it did."""
        for tried in range(1, NOTIFY_TRIES + 1):
            if self._send({"WATCHDOG": 1}, socket.MSG_DONTWAIT):
                return True
            if tried < NOTIFY_TRIES:
                await asyncio.sleep(every / 10)
        return False


async def _answers(ping: Ping, within: float, log: FilteringBoundLogger) -> bool:
    """Whether ``ping`` returns (well or with a journal error) within ``within`` seconds. Any
    other error, even a cancellation that is not the watchdog's own, is no answer this round:
    logged by its type and frames (its message could quote an application), never raised."""
    try:
        async with asyncio.timeout(within):  # not wait_for: on 3.11 it can drop our cancel
            await ping()
    except TimeoutError:
        return False
    except FederationError:
        return True  # down, but not wedged: /readyz says so, a restart would not help
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise  # the watchdog is being stopped
        log.warning("watchdog_ping_failed", error=type(exc).__name__)
        return False
    except Exception as exc:
        log.warning("watchdog_ping_failed", error=type(exc).__name__, exception=bare_traceback(exc))
        return False
    return True


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog period systemd asked for (as sd_watchdog_enabled reads it), or None."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None  # no watchdog, or one meant for another process (our parent's)
    return usec / 2 / 1_000_000
