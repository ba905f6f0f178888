"""What a partner is still owed on what it filed, read from the exchange's history."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.domain.models import Event, Exchange, State
from federation.runtime.owed import owed, step_of
from tests.unit.hk_exchanges import XID, hk_exchange


def exchange(*events: tuple[str, dict[str, Any]]) -> Exchange:
    """An application hk filed, delivered, with ``events`` after its delivery."""
    history = [("attempt_finished", {"outcome": "delivered"}), *events]
    return hk_exchange(
        State.DELIVERED,
        "HKDPO-2026-0301",
        tuple(
            Event(exchange_id=XID, kind=kind, at=float(n), data=data)
            for n, (kind, data) in enumerate(history)
        ),
        updated_at=1.0,
    )


def step(name: str) -> tuple[str, dict[str, Any]]:
    return ("lifecycle", {"lifecycle": name})


def test_steps_recorded_while_a_notice_is_retried_are_all_owed_in_order() -> None:
    """Delivered is failing; correction_required and completed follow: all three, in order,
    the tries at the first counted."""
    ex = exchange(
        ("notice_attempt", {"state": "delivered"}),
        step("correction_required"),
        ("notice_attempt", {"state": "delivered"}),
        step("completed"),
    )
    queue = owed(ex, "lifecycle:completed")
    assert [q.mark for q in queue] == [
        "delivered",
        "lifecycle:correction_required",
        "lifecycle:completed",
    ]
    assert [q.attempts for q in queue] == [2, 0, 0]
    assert [q.event for q in queue] == [0, 2, 4]


def test_an_outcome_settles_its_step_and_every_one_before() -> None:
    """A history an older release coalesced (only the latest step sent) is not sent late."""
    ex = exchange(
        step("accepted"),
        step("approved"),
        ("notice_delivered", {"state": "lifecycle:approved"}),
        step("completed"),
    )
    assert [q.mark for q in owed(ex, "lifecycle:completed")] == ["lifecycle:completed"]


def test_a_step_that_comes_again_is_a_notice_of_its_own() -> None:
    """A second correction round has its own mark (and so its own idempotency key)."""
    ex = exchange(
        step("correction_required"),
        step("submitted"),
        step("correction_required"),
        ("notice_abandoned", {"state": "lifecycle:submitted"}),
    )
    [due] = owed(ex, "lifecycle:correction_required")
    assert due.mark == "lifecycle:correction_required:2"
    assert step_of(due.mark) == "correction_required"


def test_a_replay_owes_the_step_again_and_a_bare_mark_is_owed_as_it_stands() -> None:
    """notice_replayed owes its step once more, tries counted afresh; a mark the history does not
    explain (an end short of the local system) is owed as it is."""
    ex = exchange(
        ("notice_attempt", {"state": "delivered"}),
        ("notice_abandoned", {"state": "delivered"}),
        ("notice_replayed", {"state": "delivered"}),
    )
    [due] = owed(ex, "delivered")
    assert (due.mark, due.attempts, due.event) == ("delivered", 0, 0)
    bare = replace(ex, events=())
    assert [q.mark for q in owed(bare, "rejected")] == ["rejected"]
    assert step_of("delivered") == "submitted" and step_of("rejected") == "rejected"
