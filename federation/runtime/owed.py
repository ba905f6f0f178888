"""The notices a partner is still owed on an application it filed, read from the journal.

The journal keeps one notice mark per exchange (``notify_state``): the latest step recorded
writes over it, so the mark only says *that* something is owed. *What* is owed is read from the
exchange's history: every step it went through (its delivery to the local system, then each
``lifecycle`` event) is owed, in the order journalled, until a notice outcome settles it
(``notice_delivered``, ``notice_rejected``, ``notice_unconfirmed``, ``notice_abandoned`` or
``notice_unmapped``, naming the step's mark); a ``notice_replayed`` owes its step once more.
An outcome settles its step and every step before it (an application whose earlier steps were
coalesced by an older release is not sent them late, out of order). Nothing is coalesced: a
partner hears every step, in order, one notice each, whatever it is doing meanwhile.

Each step's mark is also its notice's idempotency key (``<exchange id>:<mark>``):
``delivered``, ``lifecycle:<step>``, and ``lifecycle:<step>:<n>`` for the n-th time the same
step comes (a second correction round is a notice of its own, not a repeat of the first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from federation.domain.models import Event, Exchange, State

SETTLED = frozenset(
    {
        "notice_delivered",
        "notice_rejected",
        "notice_unconfirmed",
        "notice_abandoned",
        "notice_unmapped",
        "callback_delivered",  # a JSON callback that told it before the item reported in dialect
    }
)


@dataclass(frozen=True, kw_only=True)
class Owed:
    """One notice still owed: its mark, the event of its step (None: the mark alone says it),
    and how many tries at it the history shows."""

    mark: str
    event: int | None
    attempts: int


def step_mark(event: Event, counts: dict[str, int]) -> str | None:
    """The mark of the step ``event`` records, if it is one (``counts``: steps seen so far)."""
    if event.kind == "attempt_finished" and event.data.get("outcome") == "delivered":
        mark = State.DELIVERED.value
        seen = counts.get(mark, 0)
        counts[mark] = seen + 1
        return mark if seen == 0 else None  # delivered once; a later one is no new step
    step = event.data.get("lifecycle") if event.kind == "lifecycle" else None
    if not isinstance(step, str):
        return None
    mark = f"lifecycle:{step}"
    seen = counts[mark] = counts.get(mark, 0) + 1
    return mark if seen == 1 else f"{mark}:{seen}"


def owed(exchange: Exchange, mark: str) -> list[Owed]:
    """The notices ``exchange`` (loaded with its events) still owes, oldest first; never empty
    while ``mark`` is pending: a mark its history does not explain is owed as it stands."""
    queue: list[Owed] = []
    where: dict[str, int] = {}  # each step's mark → the index of its event
    loose: dict[str, int] = {}  # tries at a mark that is no step of the history
    counts: dict[str, int] = {}
    for i, event in enumerate(exchange.events):
        new = step_mark(event, counts)
        state = event.data.get("state")
        if new is not None:
            where[new] = i
            queue.append(Owed(mark=new, event=i, attempts=0))
        elif not isinstance(state, str):
            continue
        elif event.kind == "notice_replayed":
            queue = [q for q in queue if q.mark != state]
            queue.append(Owed(mark=state, event=where.get(state), attempts=0))
            loose.pop(state, None)
        elif event.kind == "notice_attempt":
            queue = _tried(queue, state, loose)
        elif event.kind in SETTLED:
            marks = [q.mark for q in queue]
            if state in marks:
                del queue[: marks.index(state) + 1]
            loose.pop(state, None)
    return queue or [Owed(mark=mark, event=None, attempts=loose.get(mark, 0))]


def _tried(queue: list[Owed], state: str, loose: dict[str, int]) -> list[Owed]:
    for n, q in enumerate(queue):
        if q.mark == state:
            return [*queue[:n], replace(q, attempts=q.attempts + 1), *queue[n + 1 :]]
    loose[state] = loose.get(state, 0) + 1
    return queue


def step_of(mark: str) -> str:
    """The word a notice carries for a mark (``lifecycle:accepted`` and ``lifecycle:accepted:2``
    → ``accepted``; ``delivered`` → ``submitted``; an end short of the local system stays)."""
    if mark.startswith("lifecycle:"):
        return mark.split(":")[1]
    return "submitted" if mark == State.DELIVERED.value else mark
