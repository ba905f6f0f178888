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
step comes (a second correction round is a notice of its own, not a repeat of the first). An
end comes again only by a replay, and is numbered the same way (:func:`end_mark`): the n-th time
the exchange ends in a state is ``<state>:<n>`` (``delivered:2`` once a replay delivered it
again, ``rejected:2`` for a second refusal), the first time the plain state as always, so a
receiver that discards repeated keys hears every new outcome, and one never replayed sees no
change. A resend keeps the mark, and so the key, of the message it sends again, and records
what that message said that the exchange may later say otherwise (``resends`` in its
``notice_replayed`` or ``callback_replayed``: the end's state, receipt and time): a replay that
brings a new end before the resend goes out changes neither, and the new end is owed after it,
under its own key. So does a replay, of the end it replays (``ended`` in its ``replayed``
event): a notice or callback of that end retried, or taken by another instance, once the replay
has landed says what it said before, not the replay's time. Every send under one key is built
from the first such record (:func:`first_record`), so a second resend says what the first did.
A resend's tries are timed from when it was asked for, not from the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from federation.domain.models import TERMINAL_STATES, Event, Exchange, State
from replay.service import ENDED

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


ENDS = frozenset(s.value for s in TERMINAL_STATES)
RESENDS = "resends"  # a resend event's record of the message it sends again
# the events that may record a message sent (:func:`record_of`)
RECORDS = frozenset({"callback_replayed", "notice_replayed", "replayed"})
_SENT = "#delivered since the last replay"  # a key of step_mark's counts that is no mark


@dataclass(frozen=True, kw_only=True)
class Owed:
    """One notice still owed: its mark, the event of its step (None: the mark alone says it),
    and how many tries at it the history shows; the index of the event that first recorded the
    notice, if one did (a resend's ``notice_replayed``, or a replay's of the end it replays:
    :func:`first_record`), which it is built from; for a resend, the time it was asked for
    (``since``: its tries are timed from then, not from the end)."""

    mark: str
    event: int | None
    attempts: int
    resend: int | None = None
    since: float | None = None


def record_of(event: Event) -> Mapping[str, Any] | None:
    """What ``event`` records of a message sent (the end's state, receipt and time), if it is
    such a record: a resend's (``resends`` of a ``callback_replayed`` or ``notice_replayed``),
    or a replay's of the end it replays (``ended`` of a ``replayed`` event). One journalled by
    an earlier release records nothing: the exchange as it stands is sent, as that release did."""
    key = ENDED if event.kind == "replayed" else RESENDS
    told = event.data.get(key) if event.kind in RECORDS else None
    if not isinstance(told, Mapping) or not isinstance(told.get("at"), int | float):
        return None
    return told if told.get("state") in ENDS else None


def records_message(event: Event) -> bool:
    """Does ``event`` record the message sent under a key (:func:`record_of`)?"""
    return record_of(event) is not None


def first_record(exchange: Exchange, key: str) -> int | None:
    """The index of the event of ``exchange`` (loaded with its events) that first recorded the
    message sent under ``key`` (a mark, numbered), if any: a resend of that mark, or the replay
    that followed the end ``key`` names (the n-th ``replayed`` from a state follows the end
    ``<state>:<n>``). Every later send under the key is built from it, never from the exchange
    as it stands: a resend's own write, a replay and the replay's attempts all move the
    exchange's last change (the message's ``at``), its state and its errors."""
    ends: dict[str, int] = {}  # replays from each end state so far
    for i, event in enumerate(exchange.events):
        if event.kind == "replayed":
            ended = event.data.get("from_state")
            if not isinstance(ended, str):
                continue
            ends[ended] = ends.get(ended, 0) + 1
            if numbered(ended, ends[ended]) == key and records_message(event):
                return i
        elif event.data.get("state") == key and event.kind in RECORDS and records_message(event):
            return i
    return None


def numbered(mark: str, n: int) -> str:
    """``mark`` the first time, ``<mark>:<n>`` the n-th time it comes."""
    return mark if n <= 1 else f"{mark}:{n}"


def step_mark(event: Event, counts: dict[str, int]) -> str | None:
    """The mark of the step ``event`` records, if it is one (``counts``: steps seen so far)."""
    if event.kind == "replayed":
        counts.pop(_SENT, None)  # sent again on purpose: its delivery is a step of its own
        return None
    if event.kind == "attempt_finished" and event.data.get("outcome") == "delivered":
        if counts.get(_SENT):
            return None  # delivered once per sending: a late end of a taken-over attempt
        counts[_SENT] = 1
        mark = State.DELIVERED.value
        seen = counts[mark] = counts.get(mark, 0) + 1
        return numbered(mark, seen)
    step = event.data.get("lifecycle") if event.kind == "lifecycle" else None
    if not isinstance(step, str):
        return None
    mark = f"lifecycle:{step}"
    seen = counts[mark] = counts.get(mark, 0) + 1
    return numbered(mark, seen)


def end_mark(exchange: Exchange, mark: str) -> str:
    """The mark an end state's message goes by (``exchange`` loaded with its events, ``mark``
    the journal's pending one): ``<state>:<n>`` for the n-th time the exchange ended in that
    state, the first time the plain state. Each end but the current one is named by the replay
    that followed it (its ``from_state``); a mark pending while the exchange is replayed again
    is that end's. A mark a resend wrote after the last replay is the key it sends again and
    stands, as does any mark that is no plain end state."""
    if mark not in ENDS:
        return mark
    before = 0  # ends in this state that a replay followed
    resent = False  # the mark is a resend's, written since the last replay
    for event in exchange.events:
        if event.kind == "replayed":
            before += event.data.get("from_state") == mark
            resent = False
        elif event.kind in ("callback_replayed", "notice_replayed"):
            resent = True
    if resent:
        return mark
    return numbered(mark, before + 1 if exchange.state.value == mark else before)


def owed(exchange: Exchange, mark: str) -> list[Owed]:
    """The notices ``exchange`` (loaded with its events) still owes, oldest first, while
    ``mark`` is pending: a mark its history does not explain is owed as it stands, unless its
    notice has ended already (:func:`told_since_armed`): empty then, the mark is finished
    without sending."""
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
            # a second resend says what the first did; one of an earlier release recorded none
            told = first_record(exchange, state) if records_message(event) else None
            queue.append(
                Owed(mark=state, event=where.get(state), attempts=0, resend=told, since=event.at)
            )
            loose.pop(state, None)
        elif event.kind == "notice_attempt":
            queue = _tried(queue, state, loose)
        elif event.kind in SETTLED:
            marks = [q.mark for q in queue]
            if state in marks:
                del queue[: marks.index(state) + 1]
            loose.pop(state, None)
    mark = end_mark(exchange, mark)  # an end no step of the history explains (a refusal …)
    # a replay's record of that end, if it has been replayed since: the notice it first sent
    end = Owed(
        mark=mark, event=None, attempts=loose.get(mark, 0), resend=first_record(exchange, mark)
    )
    if told_since_armed(exchange, mark, SETTLED):
        return queue
    if not queue:
        return [end]
    if _unexplained(mark, where, queue):  # a replay's refusal after a resend still owed
        queue.append(end)
    return queue


def told_since_armed(exchange: Exchange, key: str, outcomes: frozenset[str]) -> bool:
    """Has the message ``key`` (its mark, numbered) of ``exchange`` (loaded with its events)
    ended (an outcome among ``outcomes`` naming it) since it was last armed, while a replay is
    under way? The replay frees the notifier's lease: a try in flight as it lands is journalled
    without clearing the mark, which stays pending after its outcome. Sent again, the message
    would be built from the exchange as it now stands (a queued replay's time, a resend's
    record no longer read): another body under the same key. Only a resend arms the same key
    again; the replay's end, once it comes, has a key of its own (:func:`end_mark`)."""
    if exchange.state.terminal:
        return False  # no replay under way (a late second delivery arms its mark as it was)
    ended = armed = -1
    for i, event in enumerate(exchange.events):
        if event.data.get("state") != key:
            continue
        if event.kind in outcomes:
            ended = i
        elif event.kind in ("callback_replayed", "notice_replayed"):
            armed = i
    return ended > armed


def _unexplained(mark: str, where: dict[str, int], queue: list[Owed]) -> bool:
    """Is ``mark`` (pending, numbered) an end short of the local system that no step of the
    history and nothing owed names? It is owed after the rest, else it would never be sent."""
    end = state_of(mark)
    if end not in ENDS or end == State.DELIVERED.value or mark in where:
        return False
    return all(q.mark != mark for q in queue)


def _tried(queue: list[Owed], state: str, loose: dict[str, int]) -> list[Owed]:
    for n, q in enumerate(queue):
        if q.mark == state:
            return [*queue[:n], replace(q, attempts=q.attempts + 1), *queue[n + 1 :]]
    loose[state] = loose.get(state, 0) + 1
    return queue


def step_of(mark: str) -> str:
    """The word a notice carries for a mark (``lifecycle:accepted`` and ``lifecycle:accepted:2``
    → ``accepted``; ``delivered`` and ``delivered:2`` → ``submitted``; an end short of the local
    system stays, unnumbered: ``rejected:2`` → ``rejected``)."""
    if mark.startswith("lifecycle:"):
        return mark.split(":")[1]
    end = state_of(mark)
    return "submitted" if end == State.DELIVERED.value else end


def state_of(mark: str) -> str:
    """The end state an end's mark names (``rejected:2`` → ``rejected``); any other mark as is."""
    end, _, n = mark.partition(":")
    return end if end in ENDS and n.isdigit() else mark
