"""The drain's deadline: a process that has not stopped ``seconds`` after SIGTERM exits anyway.

A drain (``federation/api/server.py``) stops the HTTP intake, lets attempts in flight finish for
the worker's grace, cancels the rest, releases the instance's leases and closes the journal. The
grace fits inside the deadline (:func:`grace`): GRACE seconds, or less when the drain has less
left, keeping MARGIN for what follows it, so a short ``--drain-timeout`` cuts attempts sooner
instead of overrunning with its leases held. Each step is bounded, but a partner socket stuck in
a TLS handshake or a database that stopped answering could still hold the event loop's last
await: the deadline runs on a thread of its own, so it fires even then. What it cuts short is
safe to cut: every write already committed stays, an attempt whose outcome was not recorded is
retried with the same idempotency key, and leases that were not released expire
(``broker: {lease: …}``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from federation.logging import get_logger

DRAIN = 30.0  # seconds from SIGTERM to exit (systemd's TimeoutStopSec should be longer)
EXIT_OVERRUN = 70  # EX_SOFTWARE: the drain did not finish in time
GRACE = 5.0  # seconds attempts in flight get to finish at a stop, when the drain has them
# seconds of the drain kept after the grace (at most half of what is left): cancel the attempts
# still on the wire, release the leases, close the adapters and the journal
MARGIN = 1.0


class Deadline:
    """Exit the process ``seconds`` from now unless cancelled first."""

    running: ClassVar[list[Deadline]] = []  # the drains under way in this process

    def __init__(
        self,
        seconds: float,
        *,
        exit: Callable[[int], object] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._exit = exit
        self._clock = clock
        self._ends = clock() + seconds
        self._timer = threading.Timer(seconds, self._overrun)
        self._timer.daemon = True
        self._timer.name = "drain-deadline"
        Deadline.running.append(self)
        self._timer.start()

    def left(self) -> float:
        """Seconds until it fires (0 once past)."""
        return max(0.0, self._ends - self._clock())

    def cancel(self) -> None:
        """The drain finished in time."""
        self._timer.cancel()
        self._forget()

    def _forget(self) -> None:
        with contextlib.suppress(ValueError):  # cancelled as it fired: forgotten once
            Deadline.running.remove(self)

    def _overrun(self) -> None:
        self._forget()
        get_logger(component="server").error("drain_overrun", deadline=self.seconds)
        self._exit(EXIT_OVERRUN)


def grace() -> float:
    """Seconds attempts in flight may take to finish at a stop beginning now: GRACE, or what the
    drain under way has left less its margin when that is shorter (GRACE when none is)."""
    lefts = [d.left() for d in list(Deadline.running)]  # a copy: one may fire meanwhile
    if not lefts:
        return GRACE
    left = min(lefts)
    return max(0.0, min(GRACE, left - min(MARGIN, left / 2)))
