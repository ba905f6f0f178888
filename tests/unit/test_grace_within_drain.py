"""The worker's grace for attempts in flight fits inside the drain: GRACE seconds when the drain
has room for them and its margin, less when it has not, so a short ``--drain-timeout`` cuts the
attempts sooner and still releases the leases and closes the journal (instead of exit 70)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from federation.runtime import shutdown
from federation.runtime.shutdown import GRACE, MARGIN, Deadline


@pytest.fixture
def fired() -> Iterator[list[int]]:
    """What the deadlines made by a test would have exited with; each cancelled afterwards."""
    exits: list[int] = []
    yield exits
    for deadline in list(Deadline.running):
        deadline.cancel()


def test_without_a_drain_the_grace_is_whole() -> None:
    """Outside a drain (a broker closed by its owner, a test) attempts get GRACE seconds."""
    assert not Deadline.running
    assert shutdown.grace() == GRACE


@pytest.mark.parametrize(
    ("drain", "grace"), [(30.0, GRACE), (GRACE + MARGIN, GRACE), (3.0, 2.0), (1.0, 0.5)]
)
def test_the_grace_is_what_the_drain_has_left_less_its_margin(
    fired: list[int], drain: float, grace: float
) -> None:
    """A drain with less than GRACE and MARGIN left gives the attempts what it has less the
    margin (half of what is left when that is shorter than twice the margin)."""
    now = [100.0]  # a fixed clock: the grace asked the moment the drain began
    Deadline(drain, exit=fired.append, clock=lambda: now[0])
    assert shutdown.grace() == pytest.approx(grace)


def test_the_grace_shrinks_as_the_drain_goes_on(fired: list[int]) -> None:
    """Asked later in the drain (after the linger for idle connections), the grace is shorter."""
    now = [100.0]
    Deadline(3.0, exit=fired.append, clock=lambda: now[0])
    assert shutdown.grace() == 2.0
    now[0] += 1.0  # a second of the drain spent
    assert shutdown.grace() == 1.0
    now[0] += 5.0  # past its end (the timer, on real time, has not fired)
    assert shutdown.grace() == 0.0


def test_a_drain_over_gives_the_whole_grace_again(fired: list[int]) -> None:
    """A cancelled deadline, or one that fired, no longer bounds the grace."""
    Deadline(2.0, exit=fired.append).cancel()
    assert shutdown.grace() == GRACE
    gone = Deadline(0.01, exit=fired.append)
    gone._timer.join(10)
    assert fired == [shutdown.EXIT_OVERRUN]
    assert shutdown.grace() == GRACE
