"""The instance's presence in the journal: which configuration version it serves, seen by all.

At start, after every reload and every ``replay.instances.EVERY`` seconds the broker announces
itself (``Journal.announce``); at a clean stop it withdraws. The console's overview lists the
instances sharing the journal and the version each serves, so a reload that reached only some of
them shows. A journal that cannot be written now is logged and tried again at the next beat: the
announcement is never worth failing the broker for.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

from federation.domain.errors import JournalError
from federation.logging import bare_traceback, get_logger
from federation.runtime.events import cancelled, woken_or_timed_out
from replay.instances import EVERY, Instance
from replay.journal import Journal


class Presence:
    """Announces one instance to the journal until stopped."""

    def __init__(
        self,
        journal: Journal,
        *,
        owner: str,
        clock: Callable[[], float],
        every: float = EVERY,
    ) -> None:
        self._journal = journal
        self._owner = owner
        self._clock = clock
        self._every = every
        self._started_at = clock()
        self._version = ""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(component="presence", owner=owner)

    def serving(self, version: str) -> None:
        """The configuration version now in force: announced at once."""
        self._version = version
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tongban-presence")

    async def stop(self) -> None:
        """Stop announcing and withdraw (best effort: an instance not withdrawn goes stale)."""
        await cancelled(self._task)
        self._task = None
        try:
            await self._journal.withdraw(self._owner)
        except JournalError as exc:
            self._log.warning("instance_not_withdrawn", error=str(exc))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.announce()
            except Exception as exc:  # never the loop's end: nothing would start it again
                # the type only: a message could quote what it failed on
                self._log.error(
                    "instance_announce_crashed",
                    error=type(exc).__name__,
                    exception=bare_traceback(exc),
                )
            await woken_or_timed_out(self._wake, self._every)

    async def announce(self) -> None:
        """Tell the journal this instance is here and what it serves."""
        host, _, _ = self._owner.partition(":")
        instance = Instance(
            id=self._owner,
            host=host or socket.gethostname(),
            pid=os.getpid(),
            config_version=self._version,
            started_at=self._started_at,
            seen_at=self._clock(),
        )
        try:
            await self._journal.announce(instance)
        except JournalError as exc:
            self._log.warning("instance_not_announced", error=str(exc))
