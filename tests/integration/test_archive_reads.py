"""What an archive is checked against (``JournalAdmin.events_of`` and ``archived_markers``) is the
same on every journal for the same history: the same events of the same exchanges, live or
tombstoned, in chain order, with the hashes the archive holds; the same ``~archived`` markers in a
span. A journal without those reads is refused, never compared as if it held nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.domain.models import Event, State, StateChange
from replay.archive import check_archive, sign_checked
from replay.journal import ArchiveReads, Backend, JournalEvent
from replay.memory import InMemoryJournal
from replay.rows import ARCHIVED
from tests.integration.pg import JOURNALS, store
from tests.integration.test_archive import NOW, application

FIRST, SECOND = NOW + 100, NOW + 200  # when the two archive runs happen


class Clock:
    """The time every journal is told, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def clocked(backend: str, tmp_path: Path, clock: Clock) -> AsyncIterator[Backend]:
    """An open, empty journal of ``backend`` (one of JOURNALS) that tells the time by ``clock``."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "memory":
            journal: Backend = InMemoryJournal(clock=clock)
        else:
            where = await stack.enter_async_context(store(backend, tmp_path / backend))
            journal = where.journal(clock=clock)
        (tmp_path / backend).mkdir(exist_ok=True)
        await journal.open()
        stack.push_async_callback(journal.close)
        yield journal


async def reject(j: Backend, i: int) -> str:
    ex, _ = await j.create(application(i, fixed_id=True), owner="w", lease_until=NOW + 1_000)
    await j.record(
        ex.id,
        [Event(exchange_id=ex.id, kind="rejected", at=NOW + 10 + i, data={"error": {"m": i}})],
        StateChange(state=State.REJECTED, last_error={"m": i}, release_lease=True),
        owner="w",
    )
    return ex.id


async def history(j: Backend, clock: Clock, tmp_path: Path) -> dict[str, Any]:
    """Four rejected exchanges interleaved with an open one, archived at FIRST; a fifth
    rejected later, archived at SECOND. What the two reads answer, and the first archive."""
    held, _ = await j.create(application(99, fixed_id=True), owner="w", lease_until=NOW + 1_000)
    ids = []
    for i in range(4):
        ids.append(await reject(j, i))
        await j.append(held.id, [Event(exchange_id=held.id, kind="note", at=NOW, data={"i": i})])
    clock.now = FIRST
    first = tmp_path / f"first-{id(j)}.jsonl.gz"
    assert await j.archive(older_than=FIRST - 1, out=first) == (4, 8)
    clock.now = SECOND - 50
    late = await reject(j, 7)
    clock.now = SECOND
    assert (await j.archive(older_than=SECOND - 1, out=tmp_path / f"second-{id(j)}.jsonl.gz"))[0]
    # unknown ids ask for nothing; more than an old SQLite's 999 parameters are asked in turns
    asked = [*ids, held.id, late, *(f"01KZUNKNOWN{n:015d}" for n in range(1_200))]
    return {
        "ids": ids,
        "held": held.id,
        "late": late,
        "events": await j.events_of(asked),
        "none": await j.events_of([]),
        "first": await j.archived_markers(FIRST, FIRST),
        "all": await j.archived_markers(NOW, SECOND),
        "between": await j.archived_markers(FIRST + 1, SECOND - 1),
        "archive": first,
    }


def without_hashes(found: dict[str, Any]) -> dict[str, Any]:
    """What must be the same on every journal: all but the hashes (each journal seals with its
    own keys, so its hashes are its own) and the archive file's name."""
    events = [(*e[:4], e.archived) for e in found["events"]]
    return {**{k: v for k, v in found.items() if k != "archive"}, "events": events}


async def test_the_reads_an_archive_is_checked_against_are_the_same_on_every_journal(
    tmp_path: Path,
) -> None:
    """The same history on SQLite, PostgreSQL and in memory: the same events and markers."""
    answers = {}
    for backend in JOURNALS:
        clock = Clock()
        async with clocked(backend, tmp_path, clock) as j:
            answers[backend] = found = await history(j, clock, tmp_path)
        events: list[JournalEvent] = found["events"]
        assert all(type(e) is JournalEvent and len(e.hash) == 32 for e in events), backend
        assert [e.seq for e in events] == sorted({e.seq for e in events}), backend  # chain order
        archived = {e.seq: e.hash for e in events if e.archived and e.kind != ARCHIVED}
        kept = {h.seq: h.hash for h in check_archive(found["archive"]).held}
        assert archived.keys() > kept.keys() and all(archived[s] == kept[s] for s in kept)
    same = [without_hashes(answers[backend]) for backend in JOURNALS]
    assert same[0] == same[1] == same[2]
    found = answers["sqlite"]
    ids, late = found["ids"], found["late"]
    assert found["none"] == [] and found["between"] == []
    assert found["first"] == [(xid, FIRST) for xid in ids]
    assert found["all"] == [*found["first"], (late, SECOND)]
    kinds = {(e.exchange_id, e.kind, e.archived) for e in found["events"]}
    assert (found["held"], "note", False) in kinds  # the open exchange's events stay live
    for xid in [*ids, late]:
        assert {(xid, "received", True), (xid, "rejected", True), (xid, ARCHIVED, False)} <= kinds


class NoReads:
    """A journal of before ``events_of`` and ``archived_markers``: it has a seal and nothing else."""

    def __init__(self, journal: Backend) -> None:
        self.seal = journal.seal  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", JOURNALS)
async def test_a_journal_without_the_reads_is_refused_not_compared(
    backend: str, tmp_path: Path
) -> None:
    """Checking a new archive against a journal that cannot say what it keeps raises, naming
    the reads it lacks; every journal has them."""
    clock = Clock()
    async with clocked(backend, tmp_path, clock) as j:
        found = await history(j, clock, tmp_path)
        assert isinstance(j, ArchiveReads)
        checked, problem, _ = await sign_checked(j, found["archive"])
        assert problem is None and checked.exchanges == 4
        with pytest.raises(TypeError, match="no events_of and archived_markers"):
            await sign_checked(NoReads(j), found["archive"])
