"""Waiting for a wake-up with a timeout keeps a cancellation that arrives as the wake-up does."""

from __future__ import annotations

import asyncio

import pytest

from federation.runtime.events import woken_or_timed_out


async def test_a_cancel_that_arrives_with_the_wake_up_is_not_lost() -> None:
    """The event set and the task cancelled in one turn of the loop: the task ends cancelled
    (Python 3.11's wait_for would return normally and the loop around it would run on)."""
    wake = asyncio.Event()
    task = asyncio.create_task(woken_or_timed_out(wake, 3600))
    await asyncio.sleep(0)  # the task is now waiting
    wake.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_it_says_whether_it_was_woken() -> None:
    """True when the event is set, False when the time runs out."""
    wake = asyncio.Event()
    assert await woken_or_timed_out(wake, 0.01) is False
    wake.set()
    assert await woken_or_timed_out(wake, 3600) is True
