"""The one way tests wait: poll until a condition holds, and fail loudly at the deadline.

Waiting never passes by running out of time: a condition not met by the deadline is an
AssertionError that says what was awaited and what was seen last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Await ``probe()`` until ``until(value)``; return that value, or fail at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)


async def wait_until(
    predicate: Callable[[], bool], *, what: str, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until ``predicate()`` holds, or fail at ``timeout``."""

    async def probe() -> bool:
        return predicate()

    await wait_for(probe, bool, what=what, timeout=timeout, interval=interval)


def wait_for_sync(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """:func:`wait_for` for code outside an event loop (subprocess tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)
