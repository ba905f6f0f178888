"""A head a commit signed too soon after the last checkpoint gets its own checkpoint on a timer,
``every`` seconds after that checkpoint, however idle the journal is then (``replay.checkpoints.Timer``).

The clock and the sleep are injected, as the other timers' tests do: no test waits or asserts
on time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange
from replay.checkpoints import Cadence, Timer
from tests.integration.pg import Store

H = [bytes([n]) * 32 for n in range(8)]


class Clock:
    """A clock that a sleep moves on."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def timer_on(clock: Clock, cadence: Cadence) -> tuple[Timer, list[tuple[tuple[int, bytes], float]]]:
    written: list[tuple[tuple[int, bytes], float]] = []

    async def write(point: tuple[int, bytes], now: float) -> None:
        written.append((point, now))

    timer = Timer(cadence, write, clock=clock, sleep=clock.sleep)
    timer.start(asyncio.get_running_loop())
    return timer, written


async def settle(timer: Timer) -> None:
    task = timer._task
    if task is not None:
        await task


async def test_the_last_head_of_a_burst_is_checkpointed_while_idle() -> None:
    """Commits at 100 (checkpointed), 101 and 102 (too soon): the head of 102 is written at 105,
    five seconds after the checkpoint of 100, with no commit after it."""
    clock, cadence = Clock(), Cadence(5.0)
    timer, written = timer_on(clock, cadence)
    assert cadence.due((1, H[1]), clock()) == (1, H[1])  # the first commit's own checkpoint
    for seq in (2, 3):
        clock.now += 1
        assert cadence.due((seq, H[seq]), clock()) is None
        timer.owed()
    await settle(timer)
    assert written == [((3, H[3]), 105.0)]
    assert clock.slept == [3.0]
    assert cadence.wait(clock()) is None  # nothing owed any more
    await timer.stop()


async def test_nothing_owed_starts_no_timer() -> None:
    clock, cadence = Clock(), Cadence(5.0)
    timer, written = timer_on(clock, cadence)
    timer.owed()  # no commit at all
    assert cadence.due((1, H[1]), clock()) == (1, H[1])
    timer.owed()  # its commit wrote its checkpoint
    assert timer._task is None and written == []
    await timer.stop()


async def test_a_checkpoint_written_by_a_commit_meanwhile_moves_the_timer_on() -> None:
    """While the timer waits, a commit due its own checkpoint writes it; the timer then waits for
    what a later commit left owed, from that checkpoint."""
    clock, cadence = Clock(), Cadence(5.0)
    written: list[tuple[tuple[int, bytes], float]] = []
    commits = iter([(2, H[2]), (3, H[3])])

    async def sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        clock.now += seconds
        point = next(commits, None)
        if point is not None and point[0] == 2:  # a commit at 105 writes its own checkpoint
            assert cadence.due(point, clock()) == point
            clock.now += 1
            assert cadence.due(next(commits), clock()) is None  # 106: owed again

    async def write(point: tuple[int, bytes], now: float) -> None:
        written.append((point, now))

    cadence.due((1, H[1]), clock())
    clock.now += 1
    cadence.due((2, H[2]), clock())  # 101: owed
    timer = Timer(cadence, write, clock=clock, sleep=sleep)
    timer.start(asyncio.get_running_loop())
    timer.owed()
    await settle(timer)
    assert written == [((3, H[3]), 110.0)]
    assert clock.slept == [4.0, 4.0]


async def test_stop_cancels_a_waiting_timer() -> None:
    clock, cadence = Clock(), Cadence(5.0)
    written: list[tuple[tuple[int, bytes], float]] = []
    asleep = asyncio.Event()

    async def sleep(seconds: float) -> None:
        asleep.set()
        await asyncio.Event().wait()  # never wakes: only a cancel ends it

    async def write(point: tuple[int, bytes], now: float) -> None:
        written.append((point, now))

    cadence.due((1, H[1]), clock())
    cadence.due((2, H[2]), clock())
    timer = Timer(cadence, write, clock=clock, sleep=sleep)
    timer.start(asyncio.get_running_loop())
    timer.owed()
    await asleep.wait()
    await timer.stop()
    timer.owed()  # stopped: no new task
    assert timer._task is None and written == []
    assert cadence.due(None, clock(), closing=True) == (2, H[2])  # the close writes it


async def test_a_writer_thread_asks_for_the_timer() -> None:
    """A SQLite journal's writer thread commits: the timer is started on the loop."""
    clock, cadence = Clock(), Cadence(5.0)
    timer, written = timer_on(clock, cadence)
    cadence.due((1, H[1]), clock())
    cadence.due((2, H[2]), clock())
    thread = threading.Thread(target=timer.owed_threadsafe)
    thread.start()
    thread.join()
    while timer._task is None:
        await asyncio.sleep(0)
    await settle(timer)
    assert written == [((2, H[2]), 105.0)]
    await timer.stop()


# -- on the journals ---------------------------------------------------------------------------


def new(i: int) -> NewExchange:
    return NewExchange(
        id=new_id(time.time()),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=f"timer-{i}",
        request_hash="sha256:x",
        application={"n": i},
        received_at=time.time(),
    )


async def test_an_idle_journal_checkpoints_its_last_head(where: Store) -> None:
    """A burst of three commits within a second of each other, then nothing: the checkpoints
    come to record the last one's head before the journal closes (waited for, not timed)."""
    j: Any = where.journal(checkpoint_every=1.0)
    await j.open()
    try:
        for i in range(3):
            await j.create(new(i), owner="w", lease_until=time.time() + 60)
        end, held = await end_of(j)
        for _ in range(100):  # up to some five seconds: well past the second it takes
            point = await asyncio.to_thread(j.checkpoints.latest)
            if point is not None and (point.seq, point.head) == (end, held):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the last head of the burst has no checkpoint while idle")
    finally:
        await j.close()


async def end_of(j: Any) -> tuple[int, bytes]:
    """The journal's last event and its hash, as its checkpoints would record them."""
    count, broken = await j.verify()
    assert broken is None
    seq = count
    if hasattr(j, "_read"):
        row = await j._read(
            lambda c: c.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        )
        return seq, bytes(row[0])
    got = await j._run(
        lambda c: c.fetchval("SELECT hash FROM events WHERE seq = $1", seq), transaction=False
    )
    return seq, bytes(got)
