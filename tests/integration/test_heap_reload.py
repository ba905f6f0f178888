"""A catalogue reload settles the heap again in a process that settled it (a serving broker),
whichever way it comes (SIGHUP or the admin API both call Broker.reload), and nowhere else."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from federation.logging import capture_logs
from federation.runtime import heap


class Cycle:
    def __init__(self) -> None:
        self.other: Cycle | None = None


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_a_reload_resettles_a_settled_heap_and_only_that(
    make_config: Any, simulators: Any, broker_at: Any, tmp_path: Path, restored: None
) -> None:
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims, journal=tmp_path / "j.sqlite") as (broker, _url):
        assert gc.get_freeze_count() == 0
        with capture_logs("info") as logs:
            await broker.reload()
        assert not [e for e in logs if e["event"] == "heap_settled"]  # not settled: untouched
        assert gc.get_freeze_count() == 0
        # a cycle only the catalogue in force refers to: once a reload drops that catalogue, only
        # a collection of unfrozen objects frees it
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        watched = weakref.ref(a)
        broker.catalogue.mappings["test-cycle"] = a  # type: ignore[index]
        del a, b
        heap.settle()
        with capture_logs("info") as logs:
            await broker.reload()
        [settled] = [e for e in logs if e["event"] == "heap_settled"]
        assert settled["frozen_objects"] > 0
        assert watched() is None
