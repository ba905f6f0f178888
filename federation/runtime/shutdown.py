"""The drain's deadline: a process that has not stopped ``seconds`` after SIGTERM exits anyway.

A drain (``federation/api/server.py``) stops the HTTP intake, lets attempts in flight finish for
the worker's grace, cancels the rest, releases the instance's leases and closes the journal. Each
step is bounded, but a partner socket stuck in a TLS handshake or a database that stopped
answering could still hold the event loop's last await: the deadline runs on a thread of its own,
so it fires even then. What it cuts short is safe to cut: every write already committed stays, an
attempt whose outcome was not recorded is retried with the same idempotency key, and leases that
were not released expire (``broker: {lease: …}``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from federation.logging import get_logger

DRAIN = 30.0  # seconds from SIGTERM to exit (systemd's TimeoutStopSec should be longer)
EXIT_OVERRUN = 70  # EX_SOFTWARE: the drain did not finish in time


class Deadline:
    """Exit the process ``seconds`` from now unless cancelled first."""

    def __init__(self, seconds: float, *, exit: Callable[[int], object] = os._exit) -> None:
        self.seconds = seconds
        self._exit = exit
        self._timer = threading.Timer(seconds, self._overrun)
        self._timer.daemon = True
        self._timer.name = "drain-deadline"
        self._timer.start()

    def cancel(self) -> None:
        """The drain finished in time."""
        self._timer.cancel()

    def _overrun(self) -> None:
        get_logger(component="server").error("drain_overrun", deadline=self.seconds)
        self._exit(EXIT_OVERRUN)
