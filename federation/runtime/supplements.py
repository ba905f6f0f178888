"""A correction round's material (补正) delivered: its parent application is submitted again.

A supplement is its own exchange (``supplement_of`` names the parent). When the partner takes
it, the parent's lifecycle moves back to ``submitted`` and its source hears of it, but only in the
round that asked for it: a supplement delivered after the partner moved on (refused meanwhile, a
second supplement, a replay) reopens nothing and is noted on the parent as ``lifecycle_refused``.
"""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger

from federation.domain.errors import JournalError, JournalUnavailable, LifecycleMoved
from federation.domain.models import Event, Exchange, State, StateChange
from replay.journal import Journal


async def resubmitted(
    journal: Journal, supplement: Exchange, at: float, *, notify: bool, log: FilteringBoundLogger
) -> None:
    """Record on the parent that ``supplement`` reached the partner at ``at`` (``notify``: the
    parent's source is told); a parent that cannot take it is noted, or logged."""
    parent = supplement.supplement_of
    assert parent is not None  # only called for supplements
    step = {
        "lifecycle": "submitted",
        "note": f"supplement {supplement.id} delivered",
        "supplement": supplement.id,
    }
    try:
        await journal.record(
            parent,
            [Event(exchange_id=parent, kind="lifecycle", at=at, data=step)],
            StateChange(
                state=State.DELIVERED,
                expect=frozenset({State.DELIVERED}),
                notify=notify,
                notify_as="lifecycle:submitted",
                lifecycle_state="submitted",
                # only the round that asked for it: a supplement delivered after the partner
                # moved on (refused meanwhile, a second supplement, a replay) reopens nothing
                expect_lifecycle="correction_required",
            ),
        )
    except LifecycleMoved as exc:
        if await noted(journal, parent, supplement.id):
            return  # an earlier send of this supplement, stopped before its own write
        late = {"reported": "submitted", "via": "supplement", **step, "reason": str(exc)}
        del late["lifecycle"]
        try:
            await journal.record(
                parent,
                [Event(exchange_id=parent, kind="lifecycle_refused", at=at, data=late)],
                StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
            )
        except JournalError as err:
            log.warning("supplement_not_noted_on_parent", parent=parent, error=str(err))
    except JournalUnavailable:
        raise  # the supplement stays delivering: sent again later, noted then
    except JournalError as exc:  # the parent cannot take it (moved on, replayed): noted in logs
        log.warning("supplement_not_noted_on_parent", parent=parent, error=str(exc))


async def noted(journal: Journal, parent: str, supplement: str) -> bool:
    """Whether ``parent`` already records ``supplement`` (resubmitted, or arrived late)."""
    found = await journal.get(parent)
    kinds = ("lifecycle", "lifecycle_refused")
    return found is not None and any(
        e.kind in kinds and e.data.get("supplement") == supplement for e in found.events
    )
