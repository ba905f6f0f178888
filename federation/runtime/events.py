"""Waiting for a wake-up with a timeout, without losing a cancellation; stopping a loop.

Python 3.11's ``asyncio.wait_for(event.wait(), timeout)`` swallows a cancellation that arrives
just as the event is set (the inner wait completes, the cancel is dropped): a loop that
waits that way keeps running after ``stop()`` cancelled it, then sleeps a whole poll interval
while ``stop()`` waits for it (seen as a test hanging for an hour with ``poll_interval=3600``).
``asyncio.timeout`` keeps count of cancellations and re-raises ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def woken_or_timed_out(wake: asyncio.Event, seconds: float) -> bool:
    """Wait until ``wake`` is set or ``seconds`` pass; True if it was set."""
    try:
        async with asyncio.timeout(seconds):
            await wake.wait()
    except TimeoutError:
        return False
    return True


async def cancelled(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background loop's task and wait until it has stopped (None: nothing to stop);
    an exception the loop died of is raised here."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
