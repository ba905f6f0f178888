"""Sending a source's JSON callback once more, for support staff (``tongban callback resend``).

A callback the notifier abandoned (the source's system was down past every retry) or one the
source says it never got is re-armed in the journal: a ``callback_replayed`` event says who and
why, the exchange's callback mark is set again as it was, and the running broker's notifier
sends it on its next poll through the same retries, signed as usual, under the same
``Idempotency-Key`` and ``webhook-id`` (``<exchange id>:<mark>``), so the source can discard a
repeat. A lifecycle step that comes again has a mark of its own, numbered as notices
number theirs (:func:`step_key`: ``lifecycle:correction_required:2`` for a second correction
round), and so has an end that a replay brings again (``rejected:2``, ``delivered:2``: the n-th
time the exchange ends so; :func:`~federation.runtime.owed.end_mark`): a new outcome is a new
message, not a repeat for the source to discard.
Notices in a partner's own dialect have their own command (``tongban notice resend``,
:func:`~federation.runtime.notices.resend_notice`).

The mark is the one the latest callback outcome names (``callback_delivered``,
``callback_abandoned``); an outcome journalled before it named its mark is read from the history:
the latest lifecycle step before it, else the state the exchange ended in. A lifecycle step
journalled once the resend is queued writes its own mark over it, and so does the new end of a
replay (``replay/service.py``) done before the resent callback went out; neither takes its place:
the resent callback goes first, then the step's or the replay's (:func:`due_callback`).

A resend is the same message as well as the same key: its ``callback_replayed`` keeps what the
callback says that the exchange may later say otherwise (``resends``: the end's state, receipt
and time, and its last error, :func:`message_of`), and the notifier builds the resent callback from that
and the history before it (:func:`as_resent`), never from a new end a replay brought meanwhile,
which has its own key and fields. A second resend keeps what the first recorded (the first's
own write moved the exchange's last change). A replay records the end it replays too (``ended``
in its ``replayed`` event): a callback of that end retried once the replay has landed, or taken
by another instance as the replay freed its lease, is built from that record, not from the
exchange the replay moved on. Every send under one key is built from the first record of its
message (:func:`~federation.runtime.owed.first_record`), and every failed try at it counts
toward the retry policy, one whose lease a replay took too (:func:`tried_since_armed`). A
``callback_replayed`` of an earlier release keeps no ``resends``: the exchange as it stands is
sent, as that release did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from federation.config import Config
from federation.domain.errors import CallbackPending, FederationError, LifecycleMoved
from federation.domain.models import Direction, Event, Exchange, State, StateChange
from federation.domain.texts import Text, said
from federation.runtime.owed import (
    RESENDS,
    end_mark,
    first_record,
    record_of,
    records_message,
    step_mark,
    told_since_armed,
)
from replay.journal import Journal

OUTCOMES = frozenset({"callback_delivered", "callback_abandoned"})
# Events after which a mark may be written over a pending one: a lifecycle step (its own write),
# and a replay (the end it comes to: the worker's write announces that end state).
OVERWRITTEN_BY = frozenset({"lifecycle", "replayed"})


class NotResent(FederationError):
    """A callback that cannot be sent again, and why (in English; ``text`` for the reader)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True, kw_only=True)
class Due:
    """The callback to try now: its mark, the tries at it so far, and whether it is the last
    one owed (else the pending mark is due again at once, once this one has ended); and the
    event that first recorded its message (a resend's ``callback_replayed``, or the ``replayed``
    event of a replay of the end it tells; None: the exchange as it stands is the message, as
    for a callback neither resent nor replayed over); and for a resend
    still owed, when it was asked for (``since``: its retries are timed from then, not from the
    end, which may be days before; None: from the exchange's last change). ``told``: the
    callback has ended already (:func:`~federation.runtime.owed.told_since_armed`): the mark
    is finished, nothing sent."""

    mark: str
    tries: int
    last: bool = True
    resend: Event | None = None
    told: bool = False
    # when its tries are timed from, not which callback it is: left out of equality
    since: float | None = field(default=None, compare=False)


def step_key(exchange: Exchange, mark: str) -> str:
    """The mark a JSON callback goes by (the end of its key) while the journal's mark is
    ``mark``: the mark of a lifecycle step the latest step wrote is numbered as a notice's is
    (:func:`~federation.runtime.owed.step_mark`): ``lifecycle:correction_required`` the first
    time, ``lifecycle:correction_required:2`` for the second round, so a source that discards
    repeated keys does not discard it; an end state is numbered by the times the exchange ended
    so (:func:`~federation.runtime.owed.end_mark`: ``rejected:2`` for a replay refused again).
    The history numbers it, so every retry and every resend of that message has the same key.
    A resend's mark (the one its callback outcome named) stands as it is."""
    if not mark.startswith("lifecycle:"):
        return end_mark(exchange, mark)
    if mark.count(":") != 1:
        return mark
    counts: dict[str, int] = {}
    latest: str | None = None  # the mark of the latest step, unless a resend wrote after it
    for event in exchange.events:
        numbered = step_mark(event, counts)
        if event.kind == "lifecycle":
            latest = numbered
        elif event.kind == "callback_replayed":
            latest = None
    if latest is None or ":".join(latest.split(":")[:2]) != mark:
        return mark
    return latest


def due_callback(exchange: Exchange, mark: str) -> Due:
    """The JSON callback ``exchange`` (loaded with its events, ``mark`` pending) owes first.

    The journal keeps one callback mark, and a lifecycle step writes over it, as does the end
    of a replay. A resend's mark written over before it went out (a step that read the exchange
    before the resend wrote; an exchange replayed, sent again and ended anew meanwhile) is owed
    all the same: its ``callback_replayed`` has no outcome after it. It goes first, under its own
    key, then the pending mark, whose tries are counted from the history (the row's count covers
    both). A step's mark is numbered as :func:`step_key` says. A pending mark whose callback
    has ended already (:func:`~federation.runtime.owed.told_since_armed`) is ``told``: it is
    finished without sending."""
    due = _owed_first(exchange, mark)
    first = None if _legacy_owed(exchange.events, due.mark) else first_record(exchange, due.mark)
    due = replace(due, resend=None if first is None else exchange.events[first])
    if due.last and told_since_armed(exchange, due.mark, OUTCOMES):
        return replace(due, told=True)
    return due


def _owed_first(exchange: Exchange, mark: str) -> Due:
    """:func:`due_callback`, told or not."""
    mark = step_key(exchange, mark)
    events = exchange.events
    # a try that lost its lease to a replay is journalled without the row's count: the history
    # counts it, so the source gets no more tries than the policy says
    row = Due(mark=mark, tries=max(exchange.notify_attempts, tried_since_armed(events, mark)))
    resent_at = _last(events, lambda e: e.kind == "callback_replayed")
    resent = events[resent_at].data.get("state") if resent_at is not None else None
    if resent_at is None or not isinstance(resent, str):
        return row
    later = events[resent_at + 1 :]
    settled = next(
        (i for i, e in enumerate(later) if e.kind in OUTCOMES and e.data.get("state") == resent),
        None,
    )
    since = events[resent_at].at if settled is None else None  # its tries timed from the ask
    if resent == mark:
        return replace(row, since=since)
    stepped = _last(later, lambda e: e.kind in OVERWRITTEN_BY)
    if stepped is None or (settled is not None and settled < stepped):
        return row  # nothing came over it, or it was sent before anything did
    if settled is None:
        return Due(mark=resent, tries=_failed(later, resent), last=False, since=since)
    return Due(mark=mark, tries=_failed(later[settled + 1 :], mark))


def message_of(exchange: Exchange, mark: str | None = None) -> dict[str, Any]:
    """What a resend of ``exchange``'s callback ``mark`` keeps of the message it sends again
    (the fields of its ``callback_replayed`` event): ``resends``, the end's state, receipt and
    time, and ``error``, its last error if any. The resend goes out so, as it was, whatever the
    exchange has come to meanwhile (a replay's new end is a message of its own). A message
    recorded already (an earlier resend of the mark: its write moved the exchange's last
    change, :func:`~federation.runtime.owed.first_record`) is kept as recorded, so a second
    resend says what the callback and the first resend said. The error goes by the key every
    event's error does, so that a reader who may not see the partner's words, or an
    application's values quoted in a mapping's problems, sees them masked here as everywhere
    else."""
    first = first_record(exchange, mark) if mark is not None else None
    if first is not None:
        event = exchange.events[first]
        return _told(record_of(event) or {}, event.data.get("error"))
    return _told(
        {"at": exchange.updated_at, "state": exchange.state.value, "receipt": exchange.receipt},
        exchange.last_error,
    )


def _told(message: Mapping[str, Any], error: Any) -> dict[str, Any]:
    told: dict[str, Any] = {RESENDS: dict(message)}
    if isinstance(error, Mapping):
        told["error"] = dict(error)
    return told


def as_resent(exchange: Exchange, resend: Event) -> Exchange:
    """``exchange`` (loaded with its events) as it stood when ``resend`` (an event recording the
    message sent under a key: a resend's, :func:`message_of`, or a replay's of the end it
    replays, :func:`~federation.runtime.owed.record_of`) was journalled: the message is built
    from it, its lifecycle steps those journalled before that event."""
    told = record_of(resend) or {}
    error = resend.data.get("error")
    events = list(exchange.events)
    cut = events.index(resend) if resend in events else len(events)
    return exchange.evolved(
        state=State(told["state"]),
        receipt=told.get("receipt"),
        last_error=error if isinstance(error, Mapping) else None,
        updated_at=float(told["at"]),
        events=tuple(events[:cut]),
    )


def _last(events: Sequence[Event], kind: Callable[[Event], bool]) -> int | None:
    return next((i for i in range(len(events) - 1, -1, -1) if kind(events[i])), None)


def _failed(events: Sequence[Event], mark: str) -> int:
    return sum(1 for e in events if e.kind == "callback_failed" and e.data.get("state") == mark)


def _legacy_owed(events: Sequence[Event], mark: str) -> bool:
    """Is the latest resend of ``mark`` one an earlier release journalled (recording nothing),
    not ended yet? It is sent as that release sent it: the exchange as it stands."""
    latest: Event | None = None
    for event in events:
        if event.data.get("state") != mark:
            continue
        if event.kind == "callback_replayed":
            latest = event
        elif event.kind in OUTCOMES:
            latest = None
    return latest is not None and not records_message(latest)


def tried_since_armed(events: Sequence[Event], mark: str) -> int:
    """The failed tries at the callback ``mark`` (numbered) the history shows since it was last
    armed (its end or step, or its latest resend): those whose lease a replay took count too."""
    armed = _last(events, lambda e: e.kind == "callback_replayed" and e.data.get("state") == mark)
    return _failed(events[0 if armed is None else armed + 1 :], mark)


def callback_mark(exchange: Exchange) -> str | None:
    """The mark (``delivered``, ``lifecycle:accepted`` …) of the latest callback ``exchange``
    (loaded with its events) has settled, if any."""
    events = exchange.events
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if event.kind not in OUTCOMES:
            continue
        state = event.data.get("state")
        if isinstance(state, str):
            return state
        for before in reversed(events[:i]):  # an outcome of an older release, naming no mark
            step = before.data.get("lifecycle") if before.kind == "lifecycle" else None
            if isinstance(step, str):
                return f"lifecycle:{step}"
        return exchange.state.value
    return None


async def resend_callback(
    journal: Journal,
    config: Config,
    exchange_id: str,
    *,
    reason: str,
    by: str,
    clock: Callable[[], float],
) -> str:
    """Re-arm the latest JSON callback of an ended exchange (the same idempotency key); returns
    its mark. :class:`NotResent` says why not."""
    if not reason.strip():
        raise NotResent(said("a resent callback needs a reason"))
    exchange = await journal.get(exchange_id)
    if exchange is None:
        raise NotResent(said("no exchange %(id)s", id=exchange_id))
    mark = _resendable(exchange, config)
    moved = said(
        "exchange %(id)s changed while its callback was being queued again (a new step "
        "or another resend came first): nothing was resent; the broker is sending the "
        "callback now pending",
        id=exchange_id,
    )
    told = message_of(exchange, mark)
    await rearm(
        journal,
        exchange,
        "callback_replayed",
        mark,
        moved,
        reason=reason,
        by=by,
        at=clock(),
        told=told,
    )
    return mark


async def rearm(
    journal: Journal,
    exchange: Exchange,
    kind: str,
    mark: str,
    moved: Text,
    *,
    reason: str,
    by: str,
    at: float,
    told: Mapping[str, Any] | None = None,
) -> None:
    """Journal a resend (a ``kind`` event: the mark, who and why, and ``told``, what it keeps of
    the message it sends again, :func:`message_of`, when given) and announce ``mark`` again,
    guarded: a step the partner reported meanwhile, or another resend, is announced, not written
    over by an older mark, nor is the notifier's lease on it taken (:class:`NotResent` with
    ``moved`` says so)."""
    data: dict[str, Any] = {"state": mark, "reason": reason, "by": by}
    data.update(told or {})
    event = Event(exchange_id=exchange.id, kind=kind, at=at, data=data)
    change = StateChange(
        state=exchange.state,
        expect=frozenset({exchange.state}),
        notify=True,
        notify_as=mark,
        expect_lifecycle=exchange.lifecycle_state,
        expect_quiet=True,
    )
    try:
        await journal.record(exchange.id, [event], change)
    except (CallbackPending, LifecycleMoved) as exc:
        raise NotResent(moved) from exc


def _resendable(exchange: Exchange, config: Config) -> str:
    """The mark of ``exchange``'s callback to send again; NotResent if there is none to send."""
    xid, source = exchange.id, exchange.source
    if not exchange.state.terminal:
        raise NotResent(
            said(
                "exchange %(id)s is %(state)s: it has not ended, so its source has not been "
                "told yet",
                id=xid,
                state=exchange.state.value,
            )
        )
    inbound = exchange.direction is Direction.INBOUND
    if inbound and _reports(config, exchange):
        raise NotResent(
            said(
                "partner %(source)s hears about exchange %(id)s by notices in its own format: "
                "use tongban notice resend",
                source=source,
                id=xid,
            )
        )
    if config.callback_url(source, inbound=inbound) is None:
        raise NotResent(
            said("partner %(source)s declares no inbound.callback in partners.yaml", source=source)
            if inbound
            else said("source %(source)s declares no callback in partners.yaml", source=source)
        )
    if exchange.notify_state is not None:
        raise NotResent(
            said(
                "the callback %(key)s is still pending (%(n)d tries so far): the broker is "
                "sending it; resend it once it is delivered or abandoned",
                key=f"{xid}:{due_callback(exchange, exchange.notify_state).mark}",
                n=exchange.notify_attempts,
            )
        )
    mark = callback_mark(exchange)
    if mark is None:
        raise NotResent(said("exchange %(id)s has had no callback yet", id=xid))
    return mark


def _reports(config: Config, exchange: Exchange) -> bool:
    """Does the partner that filed ``exchange`` hear about it by notices in its dialect?"""
    partner = config.partners.get(exchange.source)
    inbound = partner.inbound if partner is not None else None
    service = inbound.services.get(exchange.service) if inbound is not None else None
    return service is not None and service.report is not None
