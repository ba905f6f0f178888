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
The replay's end is a new outcome, so a callback or notice of its own: the ``from_state`` each
``replayed`` event keeps numbers the ends, ``<state>:<n>`` the n-th time the exchange ends in a
state (``rejected:2``; the first end keeps its plain key; ``federation.runtime.owed.end_mark``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from federation.domain.errors import JournalError
from federation.domain.ids import new_id
from federation.domain.models import Event, Exchange, State, StateChange
from replay import rules
from replay.journal import Journal, Query
from replay.rules import why_not_replayable


class Mode(enum.StrEnum):
    RESEND = "resend"
    REMAP = "remap"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What a replay would do: the exchanges it takes and those it must leave, with why."""

    mode: Mode
    take: tuple[Exchange, ...]
    skip: tuple[tuple[Exchange, str], ...] = ()


@dataclass(kw_only=True)
class Result:
    batch: str
    replayed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class ReplayService:
    """Plans and runs replays against a journal."""

    def __init__(self, journal: Journal, *, clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self._clock = clock

    async def plan(self, query: Query, mode: Mode, *, limit: int = 100_000) -> Plan:
        """Every exchange ``query`` finds, sorted into replayable and not (with the reason)."""
        take: list[Exchange] = []
        skip: list[tuple[Exchange, str]] = []
        cursor: str | None = query.before
        while len(take) + len(skip) < limit:
            page = await self.journal.search(
                Query(**{**query.__dict__, "before": cursor, "limit": min(500, limit)})
            )
            if not page:
                break
            for ex in page:
                reason = self._why_not(ex, mode)
                (skip.append((ex, reason)) if reason else take.append(ex))
            cursor = page[-1].id
            if query.exchange_id is not None:
                break
        return Plan(mode=mode, take=tuple(take), skip=tuple(skip))

    @staticmethod
    def _why_not(ex: Exchange, mode: Mode) -> str | None:
        return why_not_replayable(ex, resend=mode is Mode.RESEND)

    async def run(self, plan: Plan, *, reason: str, by: str) -> Result:
        """Replay every exchange of the plan; each either replays wholly or stays as it was."""
        if not reason.strip():
            raise ValueError("a replay needs a reason")
        result = Result(batch=new_id(self._clock()))
        result.skipped += [(ex.id, why) for ex, why in plan.skip]
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
                },
            )
            try:
                await self.journal.record(
                    ex.id,
                    [event],
                    StateChange(state=target, expect=frozenset({ex.state}), release_lease=True),
                )
            except JournalError as exc:
                result.skipped.append((ex.id, rules.MOVED % {"error": exc}))
                continue
            result.replayed.append(ex.id)
        return result
