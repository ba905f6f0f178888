"""Replay: send an exchange again, one or thousands, without ever rewriting history.

Two modes:

* ``resend`` — the same mapped request again (the partner was down, a certificate expired …);
* ``remap``  — today's mapping applied to the original application (the mapping was the fault).

Only ended exchanges (delivered, failed, rejected, unconfirmed: ``replay.rules.REPLAYABLE``) are
replayed. Each replay is one journal
transaction: a ``replayed`` event (mode, reason, who, batch) plus the move to ``queued`` (resend) or
``received`` (remap), guarded by the state the plan saw. So a bulk replay interrupted half-way leaves
every exchange replayed or untouched, and running it again never queues one twice (a replayed
exchange is no longer ended, so it no longer matches). The idempotency key never changes; the
worker picks replayed exchanges up like any due work, and a replay starts a fresh retry budget.

A replay leaves the exchange's callback mark as it is. A callback resend still pending when the
exchange is replayed (``tongban callback resend``) is sent all the same, even if the replay ends
first and arms its own callback over the resend's mark: the notifier reads what is owed from the
history, the resent callback first, then the replay's (``federation.runtime.callbacks``).
The ``replayed`` event records the end it replays as that end's callback or notice says it
(``ended``: state, receipt and time, and the last error as ``error``): a callback or notice of
that end still owed once the replay has landed goes out as it did before (:func:`ended`).
The replay's end is a new outcome, so a callback or notice of its own: the ``from_state`` each
``replayed`` event keeps numbers the ends, ``<state>:<n>`` the n-th time the exchange ends in a
state (``rejected:2``; the first end keeps its plain key; ``federation.runtime.owed.end_mark``).

Each exchange left out has a ``why`` (English text, which a reader's language can say: see
``replay.rules.reason_in``) and a :class:`Skip` code, a stable slug a program can branch on.
Support staff read the ``why``: when the journal itself would not take a replay (unavailable or
damaged) it is a fixed sentence (:data:`JOURNAL_SAID`), and the journal's own error, which names
where the journal lives (its DSN and schema, or its file), goes to the operators' log
(``replay_refused_by_journal``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.domain.errors import JournalDamaged, JournalError, JournalUnavailable
from federation.domain.ids import new_id
from federation.domain.models import Event, Exchange, State, StateChange
from federation.logging import get_logger
from replay import rules
from replay.journal import Journal, Query
from replay.rules import why_not_replayable


class Mode(enum.StrEnum):
    RESEND = "resend"
    REMAP = "remap"


class Skip(enum.StrEnum):
    """Why an exchange is left out of a replay, as a code that never changes with the words."""

    NOT_ENDED = "not-ended"  # not delivered, failed, rejected or unconfirmed (yet)
    NEVER_SENT = "never-sent"  # a resend of an exchange no attempt ever sent
    MOVED = "moved-since-plan"  # its state changed between the plan and the run
    NOT_FOUND = "not-found"  # no longer in the journal at the run (archived since the plan)
    JOURNAL_UNAVAILABLE = "journal-unavailable"  # the journal could not take the replay
    JOURNAL_DAMAGED = "journal-damaged"  # the journal refused the write: its chain does not hold


# What support staff are told of a replay the journal would not take. Fixed sentences: the
# journal's error names its DSN, schema or file, which is for operators (logged, never answered).
JOURNAL_SAID: Mapping[Skip, str] = {
    Skip.JOURNAL_UNAVAILABLE: rules.JOURNAL_BUSY,
    Skip.JOURNAL_DAMAGED: rules.JOURNAL_BROKEN,
}

_log = get_logger(component="replay")

# A ``replayed`` event's record of the end it replays, as that end's callback or notice says it
ENDED = "ended"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What a replay would do: the exchanges it takes and those it must leave, with why (and the
    code of why, by exchange id, in ``codes``)."""

    mode: Mode
    take: tuple[Exchange, ...]
    skip: tuple[tuple[Exchange, str], ...] = ()
    codes: Mapping[str, Skip] = field(default_factory=dict)


@dataclass(kw_only=True)
class Result:
    """What a run did: the exchanges replayed, and those skipped with why (``codes``: the code of
    why, by exchange id)."""

    batch: str
    replayed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    codes: dict[str, Skip] = field(default_factory=dict)


class ReplayService:
    """Plans and runs replays against a journal."""

    def __init__(self, journal: Journal, *, clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self._clock = clock

    async def plan(self, query: Query, mode: Mode, *, limit: int = 100_000) -> Plan:
        """Every exchange ``query`` finds, sorted into replayable and not (with the reason)."""
        take: list[Exchange] = []
        skip: list[tuple[Exchange, str]] = []
        codes: dict[str, Skip] = {}
        cursor: str | None = query.before
        while len(take) + len(skip) < limit:
            page = await self.journal.search(
                Query(**{**query.__dict__, "before": cursor, "limit": min(500, limit)})
            )
            if not page:
                break
            for ex in page:
                reason = why_not_replayable(ex, resend=mode is Mode.RESEND)
                if reason is None:
                    take.append(ex)
                    continue
                skip.append((ex, reason))
                codes[ex.id] = (
                    Skip.NOT_ENDED if ex.state not in rules.REPLAYABLE else Skip.NEVER_SENT
                )
            cursor = page[-1].id
            if query.exchange_id is not None:
                break
        return Plan(mode=mode, take=tuple(take), skip=tuple(skip), codes=codes)

    async def run(self, plan: Plan, *, reason: str, by: str) -> Result:
        """Replay every exchange of the plan; each either replays wholly or stays as it was."""
        if not reason.strip():
            raise ValueError("a replay needs a reason")
        result = Result(batch=new_id(self._clock()))
        result.skipped += [(ex.id, why) for ex, why in plan.skip]
        result.codes.update(plan.codes)
        target = State.QUEUED if plan.mode is Mode.RESEND else State.RECEIVED
        for ex in plan.take:
            event = Event(
                exchange_id=ex.id,
                kind="replayed",
                at=self._clock(),
                data={
                    "mode": plan.mode.value,
                    "reason": reason,
                    "by": by,
                    "batch": result.batch,
                    "from_state": ex.state.value,
                    "attempts_before": ex.attempts,
                    **ended(ex),
                },
            )
            try:
                await self.journal.record(
                    ex.id,
                    [event],
                    StateChange(state=target, expect=frozenset({ex.state}), release_lease=True),
                )
            except JournalError as exc:
                code = await self._refused_as(ex.id, exc)
                result.skipped.append((ex.id, _why(ex.id, code, exc, batch=result.batch)))
                result.codes[ex.id] = code
                continue
            result.replayed.append(ex.id)
        return result

    async def _refused_as(self, exchange_id: str, exc: JournalError) -> Skip:
        """The code of a replay the journal would not write: the journal itself failing, or the
        exchange gone from it (archived) or moved (any other refusal of the guarded write)."""
        if isinstance(exc, JournalUnavailable):
            return Skip.JOURNAL_UNAVAILABLE
        if isinstance(exc, JournalDamaged):
            return Skip.JOURNAL_DAMAGED
        try:  # the backends refuse a missing row and a moved one alike: look which it is
            found = await self.journal.search(
                Query(exchange_id=exchange_id, limit=1, with_supplement_of=False)
            )
        except JournalUnavailable:
            return Skip.JOURNAL_UNAVAILABLE
        except JournalDamaged:
            return Skip.JOURNAL_DAMAGED
        return Skip.MOVED if found else Skip.NOT_FOUND


def ended(ex: Exchange) -> dict[str, Any]:
    """What a ``replayed`` event keeps of the end it replays, as ``ex`` (read by the plan)
    stood at that end: the state, receipt and time its callback or notice says (``ended``), and
    its last error (``error``, the key every event's error goes by, so a reader who may not see
    the partner's words sees it masked). A callback or notice of that end still owed once the
    replay has landed (a retry, or one taken by another instance as the replay freed its lease)
    is built from this, not from the exchange the replay has moved on: the same message under
    the same key (``federation.runtime.owed.first_record``)."""
    kept: dict[str, Any] = {
        ENDED: {"at": ex.updated_at, "state": ex.state.value, "receipt": ex.receipt}
    }
    if ex.last_error is not None:
        kept["error"] = dict(ex.last_error)
    return kept


def _why(exchange_id: str, code: Skip, exc: JournalError, *, batch: str) -> str:
    """What support staff read of a replay the journal refused: the exchange's change quoted, or
    for the journal itself failing a fixed sentence, its error logged for operators instead (the
    journal's repr in it masks a DSN's password)."""
    said = JOURNAL_SAID.get(code)
    if said is None:
        return rules.MOVED % {"error": exc}
    _log.warning(
        "replay_refused_by_journal",
        exchange_id=exchange_id,
        batch=batch,
        code=code.value,
        kind=type(exc).__name__,
        error=str(exc),
    )
    return said
