"""The collector's settings for a serving broker (federation/runtime/heap.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from federation.runtime import heap


class Node:
    """An object that can be part of a cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """Leave the test process's collector as it found it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def cycle() -> weakref.ref[Node]:
    """A two-node cycle nobody refers to from outside once this returns; a weak ref to one node."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_freezes_what_is_alive_and_collects_the_young_less_often() -> None:
    older = gc.get_threshold()[1:]
    kept = Node()
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() > 0
    assert not any(kept is obj for obj in gc.get_objects())  # in the permanent generation now
    assert gc.get_threshold() == (heap.YOUNG, *older)


def test_a_frozen_cycle_outlives_collections_until_settle_again() -> None:
    """Why a reload settles again: a frozen cycle that becomes garbage is never collected."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    heap.settle()
    del a, b
    gc.collect()
    assert watched() is not None  # frozen: the collector does not look at it
    heap.settle(again=True)
    assert watched() is None


def test_a_cycle_made_after_settling_is_still_collected_by_itself() -> None:
    """No explicit collection: allocations past the young threshold set the collector off."""
    heap.settle()
    assert gc.isenabled()
    watched = cycle()
    kept = [Node() for _ in range(2 * heap.YOUNG)]  # tracked and alive: counted as allocations
    assert watched() is None
    del kept
