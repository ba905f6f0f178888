"""The count of lifecycle steps (``Exchange.lifecycle_steps``, ``StateChange.expect_steps``): a
new correction round is a step to the state the application is already in, so the latest word
cannot tell that one was written between a read and a write; the count can. On SQLite,
PostgreSQL and the in-memory journal, the races it closes are played in a fixed order, by a
journal that writes the other side's step between the read and the write:

- a supplement's delivery read the application, then the partner asked for more (a new round):
  the delivery does not close that round;
- two notices of the same new round heard at once (two instances, a callback and a poll): one
  round is journalled, the other is heard as a resend.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import structlog

from federation.domain.errors import LifecycleMoved
from federation.domain.ids import new_id
from federation.domain.models import Event, Exchange, State, StateChange
from federation.runtime.catalogue import Catalogue
from federation.runtime.lifecycle import record_lifecycle
from federation.runtime.supplements import CORRECTION, FILED, resubmitted
from replay.journal import Backend
from replay.sqlite import SQLiteJournal
from tests.integration.test_journal_compact import NOW, _migrated_to, _row
from tests.integration.test_journal_contract import new

FIRST = {"lifecycle": CORRECTION, "note": "请补充购房合同"}
SECOND = {"lifecycle": CORRECTION, "note": "请补充收入证明"}
# No callback and no notice route (an application the broker sent): the source is told nothing.
QUIET = cast(Catalogue, SimpleNamespace(config=SimpleNamespace(callback_url=lambda *a, **k: None)))


def said(xid: str, words: dict[str, str]) -> Event:
    data = {**words, "partner_update": {"zt": "BZ"}, "via": "callback"}
    return Event(exchange_id=xid, kind="lifecycle", at=time.time(), data=data)


def round_opened(steps: int | None) -> StateChange:
    """A correction_required step written over correction_required (a new round)."""
    return StateChange(
        state=State.DELIVERED,
        expect=frozenset({State.DELIVERED}),
        lifecycle_state=CORRECTION,
        expect_lifecycle=CORRECTION,
        expect_steps=steps,
    )


async def asked(journal: Backend, *, filed: str | None = "s-1") -> Exchange:
    """An application delivered (submitted), for which the partner asked for material (补正),
    with a supplement under ``filed`` noted as filed for that round; as read back."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    for state in (State.QUEUED, State.DELIVERING):
        await journal.record(ex.id, [], StateChange(state=state), owner="w1")
    await journal.record(
        ex.id, [], StateChange(state=State.DELIVERED, lifecycle_state="submitted"), owner="w1"
    )
    step = StateChange(
        state=State.DELIVERED,
        expect=frozenset({State.DELIVERED}),
        lifecycle_state=CORRECTION,
        expect_lifecycle="submitted",
    )
    await journal.record(ex.id, [said(ex.id, FIRST)], step)
    if filed is not None:
        note = Event(exchange_id=ex.id, kind=FILED, at=time.time(), data={"idempotency_key": filed})
        await journal.record(
            ex.id, [note], StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED}))
        )
    got = await journal.get(ex.id)
    assert got is not None
    return got


def rounds(ex: Exchange | None) -> list[str | None]:
    """The notes of the application's correction_required steps, in order."""
    assert ex is not None
    return [
        e.data.get("note")
        for e in ex.events
        if e.kind == "lifecycle" and e.data.get("lifecycle") == CORRECTION
    ]


class Meanwhile:
    """``journal``, whose next ``get`` runs ``then`` after reading: the application read, then
    another writer's step, then whatever the reader writes."""

    def __init__(self, journal: Backend, then: Callable[[], Awaitable[None]]) -> None:
        self.journal = journal
        self.then: Callable[[], Awaitable[None]] | None = then

    def __getattr__(self, name: str) -> Any:
        return getattr(self.journal, name)

    async def get(self, exchange_id: str) -> Exchange | None:
        got = await self.journal.get(exchange_id)
        then, self.then = self.then, None
        if then is not None:
            await then()
        return got


# -- the journal's guard ------------------------------------------------------------------------


async def test_every_step_counts_a_note_does_not(journal: Backend) -> None:
    """Each write that sets the lifecycle state is a step (to the same state too); an event with
    no step (a note on the application) leaves the count."""
    ex = await asked(journal)
    assert ex.lifecycle_steps == 2  # submitted, correction_required (the note: none)
    await journal.record(ex.id, [said(ex.id, SECOND)], round_opened(2))
    got = await journal.get(ex.id)
    assert got is not None and (got.lifecycle_state, got.lifecycle_steps) == (CORRECTION, 3)


async def test_a_step_checked_against_an_older_count_is_refused_and_leaves_nothing(
    journal: Backend,
) -> None:
    """The latest word is the same (correction_required), the count is not: the write expecting
    the count it read is refused, with the same words on every backend, and nothing of it is
    kept; one expecting the count now goes in."""
    ex = await asked(journal)
    await journal.record(ex.id, [said(ex.id, SECOND)], round_opened(2))
    third = {"lifecycle": CORRECTION, "note": "请补充户口本"}
    with pytest.raises(LifecycleMoved) as refused:
        await journal.record(ex.id, [said(ex.id, third)], round_opened(2))
    assert str(refused.value) == (
        f"exchange {ex.id} took another lifecycle step meanwhile "
        f"(it is {CORRECTION} at the partner, step 3 now, not 2)"
    )
    got = await journal.get(ex.id)
    assert rounds(got) == [FIRST["note"], SECOND["note"]]
    assert got is not None and got.lifecycle_steps == 3
    await journal.record(ex.id, [said(ex.id, third)], round_opened(3))
    assert rounds(await journal.get(ex.id)) == [FIRST["note"], SECOND["note"], third["note"]]


async def test_a_sqlite_file_of_the_previous_release_counts_from_zero(tmp_path: Path) -> None:
    """Migration 0016 on a file that holds an application in a correction round: its count
    starts at 0, which the next step's guard expects and then moves on from."""
    path = tmp_path / "journal.sqlite"
    _migrated_to(path, 15)
    xid = new_id(NOW)
    row = list(_row(xid, "gd-zwfw", "k"))
    row[-1] = CORRECTION
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"INSERT INTO exchanges VALUES ({', '.join('?' * len(row))})", row)
    j = SQLiteJournal(path)
    await j.open()
    try:
        got = await j.get(xid)
        assert got is not None and (got.lifecycle_state, got.lifecycle_steps) == (CORRECTION, 0)
        await j.record(xid, [said(xid, SECOND)], round_opened(0))
        with pytest.raises(LifecycleMoved, match="step 1 now, not 0"):
            await j.record(xid, [said(xid, FIRST)], round_opened(0))
    finally:
        await j.close()


# -- the races ----------------------------------------------------------------------------------


async def test_a_round_opened_between_the_deliverys_read_and_its_write_stays_open(
    journal: Backend,
) -> None:
    """The supplement's delivery reads the application (its round open, the supplement filed
    for it); the partner asks for more before the delivery writes submitted: the new round stays
    open, and the supplement is noted as late (lifecycle_refused), not as closing it."""
    ex = await asked(journal, filed="s-1")

    async def new_round() -> None:
        await journal.record(ex.id, [said(ex.id, SECOND)], round_opened(2))

    made = new("s-1", at=NOW + 1)
    supplement = Exchange(
        id=made.id,
        direction=made.direction,
        source=made.source,
        target=made.target,
        service=made.service,
        idempotency_key="s-1",
        request_hash=made.request_hash,
        state=State.DELIVERED,
        application={},
        supplement_of=ex.id,
        created_at=time.time(),
        updated_at=time.time(),
    )
    log = structlog.get_logger("test")
    raced = cast(Backend, Meanwhile(journal, new_round))
    await resubmitted(raced, supplement, time.time(), notify=False, log=log)
    got = await journal.get(ex.id)
    assert got is not None and got.lifecycle_state == CORRECTION
    assert rounds(got) == [FIRST["note"], SECOND["note"]]
    late = [e for e in got.events if e.kind == "lifecycle_refused"]
    assert [e.data.get("supplement") for e in late] == [supplement.id]
    assert "took another lifecycle step" in late[0].data["reason"]


async def test_two_notices_of_one_new_round_heard_at_once_are_one_round(journal: Backend) -> None:
    """Two instances (or a callback and a poll) both read the application, its round's
    supplement on its way, then both hear the partner ask for more in the same words: the first
    journals round 2, the second is refused by the count, reads again and hears a resend."""
    read_by_both = await asked(journal)
    first = await record_lifecycle(journal, QUIET, read_by_both, dict(SECOND), {"zt": "BZ"})
    second = await record_lifecycle(journal, QUIET, read_by_both, dict(SECOND), {"zt": "BZ"})
    assert (first, second) == ((CORRECTION, True), (CORRECTION, False))
    got = await journal.get(read_by_both.id)
    assert rounds(got) == [FIRST["note"], SECOND["note"]]
    assert got is not None and got.lifecycle_steps == 3
