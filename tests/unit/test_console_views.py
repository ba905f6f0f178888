"""What the console's pages compute, without a browser: the fields a change touches (paths, never
values), the 95th percentile, and the count that is taken afresh at most every 30 seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from federation.api.console import views


def test_changed_paths_name_fields_not_values() -> None:
    """Changed, added and removed fields are named by path; equal ones are not."""
    before = {"a": {"b": 1, "c": [1, 2]}, "d": "陳大文", "gone": 1}
    after = {"a": {"b": 2, "c": [1, 3]}, "d": "陳大文", "new": 1}
    paths = list(views.changed_paths(before, after))
    assert paths == ["a.b", "a.c[1]", "gone", "new"]
    assert "陳大文" not in "".join(paths)
    assert list(views.changed_paths(before, before)) == []


def test_p95_nearest_rank() -> None:
    """The 95th percentile by nearest rank; nothing measured is None."""
    assert views.p95([float(i) for i in range(1, 101)]) == 95.0
    assert views.p95([5.0]) == 5.0
    assert views.p95([]) is None


class CountingJournal:
    """Counts how often it is asked for counts (a journal's counts() alone)."""

    def __init__(self) -> None:
        self.asked = 0

    async def counts(self) -> Mapping[str, int]:
        self.asked += 1
        return {"delivered": self.asked}


async def test_counts_taken_at_most_every_thirty_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first count is awaited; within 30 s it is reused; after, a new one is taken."""
    now = [1000.0]
    monkeypatch.setattr(views.time, "time", lambda: now[0])
    journal = CountingJournal()
    counter = views.Counts()
    first, at = await counter.get(journal)  # type: ignore[arg-type]
    assert (first, at) == ({"delivered": 1}, 1000.0)
    now[0] += 20
    assert (await counter.get(journal))[0] == {"delivered": 1}  # type: ignore[arg-type]
    now[0] += 20
    stale, _at = await counter.get(journal)  # type: ignore[arg-type]
    assert stale == {"delivered": 1}  # shown while the new count is taken in the background
    for _ in range(3):
        await asyncio.sleep(0)
    assert journal.asked == 2
    fresh, at = await counter.get(journal)  # type: ignore[arg-type]
    assert (fresh, at) == ({"delivered": 2}, 1040.0)
    await counter.close()
