"""A correction round's material (补正): one supplement per round, and the round it closes.

A supplement is its own exchange (``supplement_of`` names the parent). A round opens with each
``correction_required`` lifecycle step of the parent. A supplement accepted for it is first
noted on the parent as ``supplement_filed`` (its idempotency key), in a write that holds only
while the parent is ``correction_required``; a second supplement for the same round is refused
while the first is on its way (:func:`hold_round`), and one that lost that race, or could not be
journalled after all, is noted as ``supplement_withdrawn``. A supplement that ends ``rejected``
or ``failed`` frees the round again.

When the partner takes a supplement, the parent's lifecycle moves back to ``submitted`` and its
source hears of it, but only in the round that asked for it: a supplement delivered after the
partner moved on (refused meanwhile, asked again for more, a replay) reopens or closes nothing
and is noted on the parent as ``lifecycle_refused``.

A partner's word after that delivery is told from its old request by the time the material left
(:func:`material_left`): the start of the first attempt that may have reached the partner, not
the end of the one that was answered (a partner may take a while to answer the POST that
carried material it already has).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from structlog.typing import FilteringBoundLogger

from federation.domain.errors import (
    JournalError,
    JournalUnavailable,
    LifecycleMoved,
    RefusalKind,
    RequestRefused,
)
from federation.domain.models import Event, Exchange, Lifecycle, Outcome, State, StateChange
from replay.journal import Journal, Query

CORRECTION = Lifecycle.CORRECTION_REQUIRED.value
FILED = "supplement_filed"  # a supplement accepted for the open round (its idempotency key)
WITHDRAWN = "supplement_withdrawn"  # …that did not go on after all
# A supplement noted as filed whose exchange is not journalled this long after is taken as
# abandoned (the broker stopped between the two writes): the round is free again.
ABANDONED_AFTER = 300.0
FREEING = frozenset({State.REJECTED, State.FAILED})  # ends that free the round again


def round_opened(events: Sequence[Event]) -> int:
    """Index of the step that opened the latest correction round (-1: none in the history)."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.kind == "lifecycle" and e.data.get("lifecycle") == CORRECTION:
            return i
    return -1


def filed_in_round(events: Sequence[Event]) -> bool:
    """Whether a supplement was filed for the latest correction round (and not withdrawn)."""
    keys: set[object] = set()
    for e in events[round_opened(events) + 1 :]:
        if e.kind == FILED:
            keys.add(e.data.get("idempotency_key"))
        elif e.kind == WITHDRAWN:
            keys.discard(e.data.get("idempotency_key"))
    return bool(keys)


def filed_at(events: Sequence[Event]) -> float | None:
    """When the supplement on its way for the latest correction round was filed (None: none is)."""
    filed: dict[object, float] = {}
    for e in events[round_opened(events) + 1 :]:
        if e.kind == FILED:
            filed.setdefault(e.data.get("idempotency_key"), e.at)
        elif e.kind == WITHDRAWN:
            filed.pop(e.data.get("idempotency_key"), None)
    return min(filed.values()) if filed else None


# how an attempt that may have put the material in the partner's hands ended (None: on the wire)
REACHING = frozenset({Outcome.DELIVERED, Outcome.UNKNOWN_OUTCOME, None})


async def material_left(journal: Journal, supplement: str) -> float | None:
    """When supplement ``supplement``'s material left for the partner: the start of its first
    attempt that may have reached it (delivered, with an unknown outcome, or on the wire now).
    None if the supplement or such an attempt is not journalled."""
    found = await journal.get(supplement)
    if found is None:
        return None
    starts = [a.started_at for a in found.attempt_history() if a.outcome in REACHING]
    return min(starts) if starts else None


def answers_latest_round(parent: Exchange, supplement: Exchange) -> bool:
    """Whether ``supplement`` was filed in the parent's latest correction round (else in an
    earlier one, the partner having asked again since). One filed before supplements were noted
    on the parent is told by time."""
    events = parent.events
    opened = round_opened(events)
    if opened < 0:
        return True  # no round in the history: the guarded write decides
    key = supplement.idempotency_key
    filed = [i for i, e in enumerate(events) if e.kind == FILED and _key(e) == key]
    if filed:
        return filed[-1] > opened
    return supplement.created_at >= events[opened].at


async def hold_round(
    journal: Journal, parent: Exchange, key: str, *, clock: Callable[[], float] = time.time
) -> None:
    """Note on ``parent`` that a supplement under ``key`` is filed for its open round, or refuse
    (RequestRefused, 409) if the partner moved on or another supplement is on its way for it.

    The note is written only while the parent is ``correction_required``; then, in the order the
    journal wrote the notes, the first one of the round that is still on its way stands and any
    later one is withdrawn: of two filed at once, the later sees the earlier's note.
    """
    note = Event(exchange_id=parent.id, kind=FILED, at=clock(), data={"idempotency_key": key})
    try:
        await journal.record(
            parent.id,
            [note],
            StateChange(
                state=State.DELIVERED,
                expect=frozenset({State.DELIVERED}),
                expect_lifecycle=CORRECTION,
            ),
        )
    except LifecycleMoved as exc:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "no-correction-requested",
            f"exchange {parent.id} moved on meanwhile: {parent.target} no longer asks for "
            "more material",
        ) from exc
    except JournalUnavailable:
        raise
    except JournalError as exc:
        now = await journal.get(parent.id)
        if now is None or now.state is State.DELIVERED:
            raise
        raise RequestRefused(  # replayed meanwhile: sent again, not answered yet
            RefusalKind.CONFLICT,
            "not-delivered",
            f"exchange {parent.id} is {now.state.value}, not delivered",
        ) from exc
    seen = await journal.get(parent.id)
    ahead = await _ahead(journal, seen, key, clock()) if seen is not None else None
    if ahead is not None:
        await withdraw(journal, parent.id, key, "another supplement is on its way for the round")
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "no-correction-requested",
            f"a supplement to exchange {parent.id} is already on its way for this correction "
            f"round{ahead}; {parent.target} must ask for more material before another is sent",
        )


async def withdraw(journal: Journal, parent: str, key: str, reason: str) -> None:
    """Note that the supplement filed under ``key`` does not go on (its round is free of it)."""
    await journal.record(
        parent,
        [
            Event(
                exchange_id=parent,
                kind=WITHDRAWN,
                at=time.time(),
                data={"idempotency_key": key, "reason": reason},
            )
        ],
        StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
    )


async def _ahead(journal: Journal, parent: Exchange, key: str, now: float) -> str | None:
    """A supplement of ``parent``'s latest round noted before the one under ``key`` and still on
    its way (its exchange id in brackets, or ""), or None."""
    events = parent.events
    mine = [i for i, e in enumerate(events) if e.kind == FILED and _key(e) == key]
    if not mine:
        return None
    earlier: dict[str, float] = {}
    for e in events[round_opened(events[: mine[-1]]) + 1 : mine[-1]]:
        other = _key(e)
        if e.kind == FILED and other != key:
            earlier.setdefault(other, e.at)
        elif e.kind == WITHDRAWN:
            earlier.pop(other, None)
    for other, at in earlier.items():
        found = await journal.search(
            Query(
                partner=parent.target,
                source=parent.source,
                idempotency_key=other,
                limit=1,
                with_supplement_of=True,
            )
        )
        ex = found[0] if found and found[0].supplement_of == parent.id else None
        if ex is not None and ex.state not in FREEING:
            return f" (exchange {ex.id}, {ex.state.value})"
        if ex is None and now - at < ABANDONED_AFTER:
            return ""  # being journalled right now
    return None


def _key(event: Event) -> str:
    return str(event.data.get("idempotency_key"))


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
        found = await journal.get(parent)
        if found is not None and recorded(found, supplement.id):
            return  # an earlier send of this supplement, stopped before its own write
        if found is not None and not answers_latest_round(found, supplement):
            # the partner asked for more since it was filed: that round stays open
            reason = f"exchange {parent}: {found.target} asked for more material since"
            await _late(journal, parent, step, at, reason, log)
            return
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
                expect_lifecycle=CORRECTION,
                # …and that round still: a new one opened since it was read leaves the state
                # correction_required, and only the count of steps says it was written
                expect_steps=None if found is None else found.lifecycle_steps,
            ),
        )
    except LifecycleMoved as exc:
        if await noted(journal, parent, supplement.id):
            return  # an earlier send of this supplement, stopped before its own write
        await _late(journal, parent, step, at, str(exc), log)
    except JournalUnavailable:
        raise  # the supplement stays delivering: sent again later, noted then
    except JournalError as exc:  # the parent cannot take it (moved on, replayed): noted in logs
        log.warning("supplement_not_noted_on_parent", parent=parent, error=str(exc))


async def _late(
    journal: Journal,
    parent: str,
    step: dict[str, str],
    at: float,
    reason: str,
    log: FilteringBoundLogger,
) -> None:
    """Note on ``parent`` a supplement that arrived after its round was over."""
    late = {"reported": "submitted", "via": "supplement", **step, "reason": reason}
    del late["lifecycle"]
    try:
        await journal.record(
            parent,
            [Event(exchange_id=parent, kind="lifecycle_refused", at=at, data=late)],
            StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
        )
    except JournalError as err:
        log.warning("supplement_not_noted_on_parent", parent=parent, error=str(err))


def recorded(parent: Exchange, supplement: str) -> bool:
    """Whether ``parent`` (with its history) records ``supplement`` (resubmitted, or late)."""
    kinds = ("lifecycle", "lifecycle_refused")
    return any(e.kind in kinds and e.data.get("supplement") == supplement for e in parent.events)


async def noted(journal: Journal, parent: str, supplement: str) -> bool:
    """Whether ``parent`` already records ``supplement`` (resubmitted, or arrived late)."""
    found = await journal.get(parent)
    return found is not None and recorded(found, supplement)
