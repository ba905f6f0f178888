"""What the console's pages show, computed from the broker (no HTTP here): the overview's tallies
and partner health, the changes a replay or today's mapping would make, the config version."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from federation.api.console.render import error_said
from federation.config.model import Names
from federation.domain.errors import JournalError
from federation.domain.models import Exchange, State
from federation.logging import get_logger
from federation.runtime.broker import Broker
from federation.runtime.catalogue import Catalogue
from federation.runtime.events import cancelled
from federation.runtime.mapping import Mapped, as_stored, map_exchange
from replay.instances import Instance
from replay.journal import Journal, Query

DAY = 86400.0
SAMPLE = 300  # the overview reads at most this many of the last 24 h (newest first)
COUNT_MAX_AGE = 30.0  # seconds a count of every exchange is shown before it is counted again
WAITING = (State.RECEIVED, State.QUEUED, State.DELIVERING, State.RETRY_WAIT)


class Counts:
    """Exchanges per state, counted afresh at most every COUNT_MAX_AGE seconds: a count of every
    exchange of a large journal takes most of a second, so an older count is shown (with its
    time) while a new one is taken in the background."""

    def __init__(self) -> None:
        self.value: dict[str, int] | None = None
        self.at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def get(self, journal: Journal) -> tuple[dict[str, int], float]:
        """The latest count and when it was taken (the first one is awaited)."""
        if self.value is None:
            await self._count(journal)
        elif time.time() - self.at > COUNT_MAX_AGE and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._count(journal))
        return dict(self.value or {}), self.at

    async def _count(self, journal: Journal) -> None:
        at = time.time()
        try:
            self.value = dict(await journal.counts())
        except JournalError as exc:
            if self.value is None:
                raise
            get_logger(component="console").warning("count_failed", error=str(exc))
            return
        self.at = at

    async def close(self) -> None:
        """Stop a count still running (the broker is shutting down)."""
        if self._task is not None and not self._task.done():
            await cancelled(self._task)


@dataclass(kw_only=True)
class PartnerHealth:
    """One partner's line of the overview."""

    id: str
    names: Names  # shown in the viewer's language: names.shown(lang)
    breaker: str
    in_flight: int
    last_error: str = ""
    last_error_at: float | None = None
    p95_ms: float | None = None  # received to delivered, over the last 24 h
    call_p95_ms: float | None = None  # the partner's answer, this instance's latest calls
    oldest_waiting: float | None = None
    by_state: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, kw_only=True)
class Overview:
    """The overview page's figures."""

    now: Mapping[str, int]
    counted_at: float
    total: int
    sampled: int
    sample_full: bool  # the last 24 h hold more than SAMPLE: the tallies are of the newest
    hours: Sequence[tuple[float, int, int]]  # (hour start, delivered, not delivered)
    partners: Sequence[PartnerHealth]
    version: str  # this instance's configuration version
    instance: str
    instances: Sequence[Instance]  # every instance seen in the last hour, with its version
    at: float  # when the page was made


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile (nearest rank) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def overview(broker: Broker, counter: Counts, *, now: float | None = None) -> Overview:
    """Counts now (every exchange) and over the last 24 h (the newest SAMPLE), partner health,
    and the instances sharing the journal with the configuration version each serves."""
    now = time.time() if now is None else now
    counts, counted_at = await counter.get(broker.journal)
    instances = await broker.journal.instances(seen_since=now - 3600)
    recent = await broker.journal.search(Query(since=now - DAY, limit=SAMPLE))
    catalogue = broker.catalogue
    health = {
        pid: PartnerHealth(
            id=pid,
            names=p.names,
            breaker=str(status["breaker"]["state"]),
            in_flight=int(status["held"]),
            call_p95_ms=status["p95_ms"],
        )
        for pid, p in catalogue.config.partners.items()
        for status in [broker.worker.partner_status(pid)]
    }
    latencies: dict[str, list[float]] = defaultdict(list)
    start = math.floor((now - DAY) / 3600) * 3600
    hours = {start + 3600 * h: [0, 0] for h in range(25)}
    for ex in recent:
        line = health.get(ex.target)
        bucket = hours.get(math.floor(ex.created_at / 3600) * 3600)
        if bucket is not None:
            bucket[0 if ex.state is State.DELIVERED else 1] += 1
        if line is None:
            continue
        line.by_state[ex.state.value] += 1
        _note(line, ex, latencies[ex.target])
    for pid, values in latencies.items():
        health[pid].p95_ms = p95(values)
    return Overview(
        now=counts,
        counted_at=counted_at,
        total=sum(counts.values()),
        sampled=len(recent),
        sample_full=len(recent) == SAMPLE,
        hours=[(h, d, o) for h, (d, o) in sorted(hours.items())],
        partners=list(health.values()),
        version=broker.config_version,
        instance=broker.owner,
        instances=instances,
        at=now,
    )


def _note(line: PartnerHealth, ex: Exchange, latencies: list[float]) -> None:
    """Fold one exchange into its partner's line (newest first: the first error is the last)."""
    if ex.last_error and not line.last_error:
        line.last_error = error_said(ex.last_error)[:200]
        line.last_error_at = ex.updated_at
    if ex.state is State.DELIVERED:
        latencies.append((ex.updated_at - ex.created_at) * 1000)
    if ex.state in WAITING:
        line.oldest_waiting = ex.created_at  # newest first: the last one seen is the oldest


def changed_paths(before: Any, after: Any, prefix: str = "") -> Iterator[str]:
    """The field paths where two mapped requests differ (paths only: values may be personal)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                yield where
            else:
                yield from changed_paths(before[key], after[key], where)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            yield from changed_paths(b, a, f"{prefix}[{i}]")
    elif before != after:
        yield prefix or "(whole request)"


@dataclass(frozen=True, kw_only=True)
class Today:
    """What today's mapping makes of an exchange's application, against what was sent."""

    ok: bool
    changed: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # they can quote the application: shown only in clear
    paths: tuple[str, ...] = ()  # where the problems are, for a page that is masked


def today(catalogue: Catalogue, ex: Exchange) -> Today:
    """Today's mapping applied to the exchange's application, compared with its mapped request."""
    result = map_exchange(catalogue, ex)
    if not isinstance(result, Mapped):
        return Today(
            ok=False,
            problems=tuple(p.message for p in result.problems) or (result.message,),
            paths=tuple(dict.fromkeys(p.path for p in result.problems if p.path)),
        )
    return Today(ok=True, changed=changed_from(ex, result.request))


def changed_from(ex: Exchange, request: Mapping[str, Any]) -> tuple[str, ...]:
    """Where a new mapping of the exchange's application differs from the request it was mapped
    to, both as the journal keeps them (a fresh mapping holds dates and Decimals, a stored one
    their text; the memory journal keeps the objects, so the stored one is written out too)."""
    return tuple(changed_paths(as_stored(ex.mapped or {}), as_stored(request)))


async def whole(journal: Journal, found: Iterable[Exchange]) -> list[Exchange]:
    """The exchanges a search found, read again with their history (a search leaves out the
    events, and with them the application and the mapped request); one gone since is left out."""
    out = []
    for ex in found:
        full = await journal.get(ex.id)
        if full is not None:
            out.append(full)
    return out
