"""The journal's rules, written once above the backends (procrastinate's manager, not its connectors).

Every backend imports these and only stores: which states a write may start from, why a guarded
write was refused (the same message on every backend), when a create is a repeat and when a
conflict, which exchanges are due work, ended, archivable or replayable, and what a StateChange
does to an exchange's current state. SQL backends turn the same decisions into WHERE clauses (see
``allowed_from``, ``in_list``); the in-memory journal calls them directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from federation.domain.errors import (
    CallbackPending,
    IdempotencyConflict,
    JournalError,
    LeaseLost,
    LifecycleMoved,
)
from federation.domain.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    Exchange,
    NewExchange,
    State,
    StateChange,
)

# Work not finished: claimed once its lease has expired (judged by expiry alone).
OPEN: tuple[State, ...] = (State.RECEIVED, State.QUEUED, State.DELIVERING)
# Ended: no lease, never claimed, archivable once no callback is pending, moved only by a replay.
# In the order the SQL lists them (partial indexes must match the queries that use them).
ENDED: tuple[State, ...] = tuple(s for s in State if s in TERMINAL_STATES)
REPLAYABLE = ENDED

# The states a write to ``target`` may start from: its predecessors, and itself (a write that
# keeps the state, such as a lifecycle step on a delivered exchange).
PREDECESSORS: Mapping[State, frozenset[State]] = {
    target: frozenset({target} | {s for s, nexts in TRANSITIONS.items() if target in nexts})
    for target in State
}


def in_list(states: Iterable[State]) -> str:
    """``'a', 'b'`` for ``state IN (…)``: literals, so that partial indexes on states apply."""
    return ", ".join(f"'{s.value}'" for s in states)


# -- guarded writes -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Current:
    """What a guarded write is checked against: the exchange's row as it is now."""

    state: State
    lease_owner: str | None
    lifecycle_state: str | None
    notify_state: str | None  # the callback or notice pending, if any
    lifecycle_steps: int = 0  # the lifecycle steps written (``steps_after``)


def allowed_from(change: StateChange) -> frozenset[State]:
    """The states ``change`` may be written over (the transition table, narrowed by ``expect``)."""
    allowed = PREDECESSORS[change.state]
    return allowed if change.expect is None else allowed & change.expect


def steps_after(steps: int, change: StateChange) -> int:
    """An exchange's count of lifecycle steps after ``change``: every write that sets the
    lifecycle state is a step, one to the same state too (a new correction round)."""
    return steps if change.lifecycle_state is None else steps + 1


def lifecycle_moved(current: Current, change: StateChange) -> bool:
    """Whether the partner's word moved since ``change`` was checked: another latest state, or
    another step taken (a step to the same state changes only the count)."""
    return change.expect_lifecycle not in (None, current.lifecycle_state) or (
        change.expect_steps not in (None, current.lifecycle_steps)
    )


def releases_lease(change: StateChange) -> bool:
    """An ended state, or a change that says so, gives the lease up."""
    return change.release_lease or change.state.terminal


def notify_as(change: StateChange) -> str | None:
    """What the source's callback will be told, if this change is announced at all."""
    return (change.notify_as or change.state.value) if change.notify else None


def refused(
    exchange_id: str, current: Current | None, change: StateChange, owner: str | None
) -> JournalError | None:
    """None if ``change`` may be written over ``current``; else why not (see ``refusal_reason``)."""
    if (
        current is not None
        and (owner is None or current.lease_owner == owner)
        and current.state in allowed_from(change)
        and not lifecycle_moved(current, change)
        and not (change.expect_quiet and current.notify_state is not None)
    ):
        return None
    return refusal_reason(exchange_id, current, change, owner)


def refusal_reason(
    exchange_id: str, current: Current | None, change: StateChange, owner: str | None
) -> JournalError:
    """Why a guarded write matched no row, from the exchange as it is now: the same messages on
    every backend, in the same order (missing, lease, expected state, lifecycle, pending callback,
    transition)."""
    if current is None:
        return JournalError(f"no exchange {exchange_id}")
    if owner is not None and current.lease_owner != owner:
        return LeaseLost(f"exchange {exchange_id} is leased to {current.lease_owner!r} now")
    if change.expect is not None and current.state not in change.expect:
        return JournalError(
            f"exchange {exchange_id} is {current.state.value}, expected one of "
            f"{', '.join(sorted(s.value for s in change.expect))}"
        )
    if change.expect_lifecycle not in (None, current.lifecycle_state):
        return LifecycleMoved(
            f"exchange {exchange_id} is {current.lifecycle_state} at the partner now, "
            f"not {change.expect_lifecycle}"
        )
    if change.expect_steps not in (None, current.lifecycle_steps):
        return LifecycleMoved(
            f"exchange {exchange_id} took another lifecycle step meanwhile (it is "
            f"{current.lifecycle_state} at the partner, step {current.lifecycle_steps} "
            f"now, not {change.expect_steps})"
        )
    if change.expect_quiet and current.notify_state is not None:
        return CallbackPending(
            f"exchange {exchange_id} has a callback pending now ({current.notify_state})"
        )
    return JournalError(
        f"exchange {exchange_id}: no transition {current.state.value} → {change.state.value}"
    )


def applied(ex: Exchange, change: StateChange, events: Sequence[Event], now: float) -> Exchange:
    """``ex`` after ``change`` and ``events``: what the SQL backends' guarded UPDATE sets, for a
    backend that keeps Exchange values (None in a change leaves the field as it is)."""
    mapped = ex.mapped
    for e in events:
        if e.kind == "mapped":
            mapped = e.data.get("mapped")
    announce = notify_as(change)
    return replace(
        ex,
        state=change.state,
        updated_at=now,
        mapped=mapped,
        mapping_versions=ex.mapping_versions
        if change.mapping_versions is None
        else change.mapping_versions,
        receipt=ex.receipt if change.receipt is None else change.receipt,
        last_error=ex.last_error if change.last_error is None else change.last_error,
        attempts=ex.attempts if change.attempts is None else change.attempts,
        next_attempt_at=change.next_attempt_at,
        notify_state=ex.notify_state if announce is None else announce,
        notify_attempts=ex.notify_attempts if announce is None else 0,
        lifecycle_state=ex.lifecycle_state
        if change.lifecycle_state is None
        else change.lifecycle_state,
        lifecycle_steps=steps_after(ex.lifecycle_steps, change),
    )


# -- creating -----------------------------------------------------------------------------------


def repeat_of(new: NewExchange, *, exchange_id: str, request_hash: str) -> None:
    """The stored exchange of the same (source, key) is a repeat only with the same request hash."""
    if request_hash != new.request_hash:
        raise IdempotencyConflict(exchange_id)


# -- which exchanges ----------------------------------------------------------------------------


def due(
    state: State,
    *,
    next_attempt_at: float | None,
    lease_until: float | None,
    now: float,
) -> bool:
    """Due work for ``claim``: lease expired (or none) and open, or a retry whose time has come."""
    if lease_until is not None and lease_until >= now:
        return False
    if state in OPEN:
        return True
    return state is State.RETRY_WAIT and next_attempt_at is not None and next_attempt_at <= now


def archivable(ex: Exchange, *, leased: bool, older_than: float) -> bool:
    """Ended, unleased, no callback pending, and last changed before ``older_than``."""
    return (
        ex.state in ENDED and not leased and ex.notify_state is None and ex.updated_at < older_than
    )


# Why an exchange is left out of a replay: English text (what JSON, logs and the audit keep), made
# from these templates so that a reader's language can say them (``reason_in``).
NOT_REPLAYABLE = "is %(state)s: only %(names)s exchanges are replayed"
NEVER_SENT = "was never sent (rejected before delivery, e.g. by its mapping): use remap"
MOVED = "changed since it was planned: %(error)s"
# the journal failing, said without where it lives (its DSN or file: replay/service.py logs that)
JOURNAL_BUSY = (
    "the journal could not take the replay just now; nothing was changed: replay it again later"
)
JOURNAL_BROKEN = (
    "the journal refused the replay because its records do not hold together; nothing was "
    "changed: an operator must check the journal"
)
_READ = (
    (NOT_REPLAYABLE, re.compile(r"is (?P<state>\w+): only (?P<names>.+) exchanges are replayed")),
    (NEVER_SENT, re.compile(re.escape(NEVER_SENT))),
    (MOVED, re.compile(r"changed since it was planned: (?P<error>.*)", re.DOTALL)),
    (JOURNAL_BUSY, re.compile(re.escape(JOURNAL_BUSY))),
    (JOURNAL_BROKEN, re.compile(re.escape(JOURNAL_BROKEN))),
)


def why_not_replayable(ex: Exchange, *, resend: bool) -> str | None:
    """None if ``ex`` may be replayed (``resend``: the same request again); else why not."""
    if ex.state not in REPLAYABLE:
        names = ", ".join(s.value for s in REPLAYABLE[:-1]) + f" or {REPLAYABLE[-1].value}"
        return NOT_REPLAYABLE % {"state": ex.state.value, "names": names}
    if resend and ex.attempts == 0:
        return NEVER_SENT
    return None


def reason_in(why: str, gettext: Callable[[str], str]) -> str:
    """A skip reason in the reader's language (``gettext`` of a catalogue holding the templates
    above); a reason of another form as it is."""
    for template, pattern in _READ:
        found = pattern.fullmatch(why)
        if found is not None:
            return gettext(template) % found.groupdict()
    return why
