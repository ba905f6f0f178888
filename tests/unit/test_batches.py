"""Group commit's batches: what was queued with the first write, up to the limit, and the stop."""

from __future__ import annotations

import asyncio
import queue

from replay.dbthread import batch_after


def test_a_batch_takes_what_is_queued_up_to_its_limit() -> None:
    """The first write and those queued behind it, at most ``limit``; the rest waits."""
    q: queue.Queue[int | None] = queue.Queue()
    for n in range(2, 7):
        q.put(n)
    assert batch_after(1, q.get_nowait, queue.Empty, 4) == ([1, 2, 3, 4], False)
    assert batch_after(q.get(), q.get_nowait, queue.Empty, 4) == ([5, 6], False)


def test_the_stop_marker_ends_the_batch_and_says_so() -> None:
    """A None queued among the writes: the writes before it form the last batch."""
    q: asyncio.Queue[int | None] = asyncio.Queue()
    for item in (2, None, 3):
        q.put_nowait(item)
    assert batch_after(1, q.get_nowait, asyncio.QueueEmpty, 10) == ([1, 2], True)
