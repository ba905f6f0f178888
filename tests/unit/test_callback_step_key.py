"""The key a JSON callback of a lifecycle step goes by: a step that comes again is numbered as
notices number it, the first time keeps its plain mark, and a resend keeps the mark it resends."""

from __future__ import annotations

from typing import Any

from federation.domain.models import Direction, Event, Exchange, State
from federation.runtime.callbacks import Due, due_callback

XID = "01JD0000000000000000000000"


def history(*events: tuple[str, dict[str, Any]]) -> Exchange:
    """A delivered exchange from gd-portal to hk with these events."""
    return Exchange(
        id=XID,
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key="k",
        request_hash="h",
        state=State.DELIVERED,
        application={},
        created_at=1.0,
        updated_at=1.0,
        events=tuple(
            Event(exchange_id=XID, kind=k, at=float(n), data=d) for n, (k, d) in enumerate(events)
        ),
    )


def step(name: str) -> tuple[str, dict[str, Any]]:
    return ("lifecycle", {"lifecycle": name})


def told(mark: str, kind: str = "callback_delivered") -> tuple[str, dict[str, Any]]:
    return (kind, {"state": mark})


ROUND_ONE = (step("correction_required"), told("lifecycle:correction_required"))


def test_a_step_that_comes_again_is_numbered() -> None:
    """Step after step, the callback due: the first time a step comes, its plain mark (the key
    it always had); the second correction round and the submission after it numbered, on a
    retry and on a resend of the round too; an end state as it is."""
    events: list[tuple[str, dict[str, Any]]] = [told("delivered")]
    seen = [due_callback(history(*events), "delivered").mark]
    for state in ("correction_required", "submitted", "correction_required", None, "submitted"):
        if state is None:  # a failed try at the step before, then its resend once delivered
            events.append(told(seen[-1], "callback_failed"))
            events.append(told(seen[-1]))
            events.append(("callback_replayed", {"state": seen[-1]}))
            seen.append(due_callback(history(*events), seen[-1]).mark)
            events.append(told(seen[-1]))
            continue
        events.append(step(state))
        seen.append(due_callback(history(*events), f"lifecycle:{state}").mark)
        events.append(told(seen[-1], "callback_failed"))
        seen.append(due_callback(history(*events), f"lifecycle:{state}").mark)
        events.append(told(seen[-1]))
    assert seen == [
        "delivered",
        "lifecycle:correction_required",
        "lifecycle:correction_required",
        "lifecycle:submitted",
        "lifecycle:submitted",
        "lifecycle:correction_required:2",
        "lifecycle:correction_required:2",
        "lifecycle:correction_required:2",
        "lifecycle:submitted:2",
        "lifecycle:submitted:2",
    ]


def test_a_second_round_written_over_a_resend_of_the_first_goes_after_it() -> None:
    """Round one's callback is resent, and round two is journalled over its mark before it went
    out: round one goes first under its plain key, then round two under its numbered one."""
    events = [
        *ROUND_ONE,
        step("submitted"),
        told("lifecycle:submitted"),
        ("callback_replayed", {"state": "lifecycle:submitted"}),
        step("correction_required"),
    ]
    mark = "lifecycle:correction_required"
    assert due_callback(history(*events), mark) == Due(
        mark="lifecycle:submitted", tries=0, last=False
    )
    events.append(told("lifecycle:submitted"))
    assert due_callback(history(*events), mark) == Due(
        mark="lifecycle:correction_required:2", tries=0
    )
