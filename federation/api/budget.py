"""The refusal budget: how many refused requests the journal keeps one by one, and how many bytes
of their bodies, per client address and in all (``broker.refusal_budget``, config/refusals.py).

Every refused request is answered as ever, and journalled: within the budget as its own row (with
its body where its route keeps bodies); past the address's (or everyone's) budget of bodies, as
its row without the body (its size only); past the budget of rows, not one by one but counted,
and each window (``summary_every``, a minute) ends with ONE summary row per address saying how
many of its refusals and bodies were not kept, of which statuses and problem types, between which
times. Anyone can send requests that are refused (no key is checked before a body is read, a path
no route takes, garbage the parser refuses): without a bound, one client could fill the journal's
disk, after which the journal refuses every write, every application's included.

The buckets are token buckets (rows per second, with a burst; body bytes per minute), one per
address (an IPv6 address by its /64, which one host usually has whole) and one across all of
them. Memory is bounded: ``addresses`` remembered at most (the least recently seen forgotten, its
bucket full again when it comes back: the bucket across all of them still holds), and summary rows
for :data:`SUMMARIES` addresses per window, the rest summed in one row with no address. Only
counts are logged (``refusals_not_kept``, at most once a window), never an address, a path or a
body; the metric ``tongban_refusals_not_kept_total{reason}`` counts each refusal or body not kept.

A broker's journal has one budget (:func:`budget_of`), shared by the app's refusals (edge.py) and
those the server answers before the app (unparsed.py); tests :func:`install` one on their clock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from federation.config.refusals import RefusalBudgetSettings
from federation.logging import get_logger
from replay.journal import Journal, Refusal

_log = get_logger(component="api")

SUMMARY_PROBLEM = "refusals-not-kept"  # the problem type of a summary row
SUMMARIES = 100  # addresses with a summary row of their own per window; the rest share one
KINDS = 16  # statuses and problem types a summary names; the rest counted as others
REASONS = ("row_address", "row_total", "body_address", "body_total")  # the metric's label


class Labelled(Protocol):
    """The metric (a prometheus Counter with one label, ``reason``)."""

    def labels(self, *values: str) -> Any: ...


@dataclass
class _Bucket:
    """A token bucket: ``tokens`` as of ``at`` (the budget's clock)."""

    tokens: float
    at: float

    def refilled(self, now: float, rate: float, capacity: float) -> float:
        self.tokens = min(capacity, self.tokens + max(0.0, now - self.at) * rate)
        self.at = now
        return self.tokens


@dataclass
class _Address:
    rows: _Bucket
    body: _Bucket


@dataclass
class _Tally:
    """What was not kept of one address's refusals in the current window."""

    rows: int = 0  # refusals not journalled one by one
    bodies: int = 0  # refusals journalled without their body
    body_bytes: int = 0  # bytes of refused bodies the journal did not keep (of either)
    kinds: Counter[tuple[int, str]] = field(default_factory=Counter)
    first: float = math.inf  # wall times of the first and last refusal counted
    last: float = 0.0

    def add(self, refusal: Refusal, *, row: bool) -> None:
        if row:
            self.rows += 1
            self.body_bytes += refusal.body_bytes
        else:
            self.bodies += 1
            self.body_bytes += len(refusal.body)
        kind = (refusal.status, refusal.problem)
        if kind in self.kinds or len(self.kinds) < KINDS:
            self.kinds[kind] += 1
        else:
            self.kinds[(0, "")] += 1
        self.first, self.last = min(self.first, refusal.at), max(self.last, refusal.at)


def address_key(remote: str) -> str:
    """The address a budget is kept for: an IPv4 address as it is, an IPv6 address by its /64
    (an IPv4 one mapped into IPv6 as the IPv4 address), anything else (a Unix socket) as given."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RefusalBudget:
    """The budget of one journal. :meth:`admit` says what of a refusal is journalled; the summary
    rows of ended windows come from :meth:`due` (and :meth:`drain` at the stop); :meth:`watch`
    and :meth:`close` write them to a journal when no refusal comes to do it. ``clock`` is
    monotonic seconds (injectable: tests move it); the rows keep the refusals' own times."""

    def __init__(
        self,
        settings: RefusalBudgetSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = RefusalBudgetSettings() if settings is None else settings
        self.enabled = True
        self._clock = clock
        now = clock()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()
        self._rows = _Bucket(self.settings.total_burst, now)
        self._body = _Bucket(self.settings.total_body_bytes_per_minute, now)
        self._window = self._index(now)
        self._tallies: dict[str, _Tally] = {}
        self._others: _Tally | None = None  # addresses past SUMMARIES this window
        self._ready: list[Refusal] = []  # summary rows of ended windows, not yet written
        self._ready_counts: Counter[str] = Counter()  # what they stand for, for the log
        self._counter: Labelled | None = None
        self._uncounted: Counter[str] = Counter()  # not kept before a metric was given
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def configure(
        self, settings: RefusalBudgetSettings | None, counter: Labelled | None = None
    ) -> None:
        """Use ``settings`` from now on (None: keep every refusal in full); count into
        ``counter`` (what was counted before it is added to it)."""
        self.enabled = settings is not None
        if settings is not None:
            self.settings = settings
        if counter is not None and counter is not self._counter:
            self._counter = counter
            for reason, n in self._uncounted.items():
                counter.labels(reason).inc(n)
            self._uncounted.clear()

    def admit(self, refusal: Refusal) -> Refusal | None:
        """``refusal`` as journalled one by one (without its body past the budget of bodies), or
        None past the budget of rows: then it is counted for its address's summary."""
        if not self.enabled:
            return refusal
        limits, now = self.settings, self._clock()
        self._roll(now)
        key = address_key(refusal.remote)
        mine = self._address(key, now)
        if mine.rows.refilled(now, limits.per_second, limits.burst) < 1:
            return self._not_kept(key, refusal, "row_address")
        if self._rows.refilled(now, limits.total_per_second, limits.total_burst) < 1:
            return self._not_kept(key, refusal, "row_total")
        mine.rows.tokens -= 1
        self._rows.tokens -= 1
        size = len(refusal.body)
        if not size:
            return refusal
        per_second = limits.body_bytes_per_minute / 60
        if mine.body.refilled(now, per_second, limits.body_bytes_per_minute) < size:
            return self._not_kept(key, refusal, "body_address")
        total = limits.total_body_bytes_per_minute
        if self._body.refilled(now, total / 60, total) < size:
            return self._not_kept(key, refusal, "body_total")
        mine.body.tokens -= size
        self._body.tokens -= size
        return refusal

    def _not_kept(self, key: str, refusal: Refusal, reason: str) -> Refusal | None:
        row = reason.startswith("row")
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) < SUMMARIES:
                tally = self._tallies[key] = _Tally()
            else:
                tally = self._others = self._others or _Tally()
        tally.add(refusal, row=row)
        if self._counter is not None:
            self._counter.labels(reason).inc()
        else:
            self._uncounted[reason] += 1
        return None if row else replace(refusal, body=b"")

    def _address(self, key: str, now: float) -> _Address:
        found = self._addresses.get(key)
        if found is not None:
            self._addresses.move_to_end(key)
            return found
        limits = self.settings
        found = self._addresses[key] = _Address(
            rows=_Bucket(limits.burst, now), body=_Bucket(limits.body_bytes_per_minute, now)
        )
        while len(self._addresses) > limits.addresses:
            self._addresses.popitem(last=False)
        return found

    def _index(self, now: float) -> int:
        return math.floor(now / self.settings.summary_every)

    def _roll(self, now: float, *, force: bool = False) -> None:
        """End the window when its time is past (or ``force``): its summaries are ready."""
        index = self._index(now)
        if index == self._window and not force:
            return
        self._window = index
        tallies = list(self._tallies.items())
        if self._others is not None:
            tallies.append(("", self._others))
        self._ready.extend(summary(key, t) for key, t in tallies)
        self._ready_counts.update(
            rows=sum(t.rows for _, t in tallies), bodies=sum(t.bodies for _, t in tallies)
        )
        self._tallies, self._others = {}, None

    @property
    def pending(self) -> bool:
        """Whether some summary is still to be written."""
        return bool(self._tallies or self._others or self._ready)

    def due(self) -> list[Refusal]:
        """The summary rows of the windows that ended, once each (logged by their counts)."""
        self._roll(self._clock())
        return self._taken()

    def drain(self) -> list[Refusal]:
        """Every summary row, the current window's too (at the stop)."""
        self._roll(self._clock(), force=True)
        return self._taken()

    def _taken(self) -> list[Refusal]:
        ready, self._ready = self._ready, []
        counts, self._ready_counts = self._ready_counts, Counter()
        if ready:
            _log.warning(
                "refusals_not_kept",
                summaries=len(ready),
                refusals=counts["rows"],
                bodies=counts["bodies"],
                bytes_not_kept=sum(r.body_bytes for r in ready),
            )
        return ready

    def watch(self, journal: Journal) -> None:
        """Write the summaries into ``journal`` once their window ends, should no refusal come
        to write them (one timer at a time)."""
        if self._timer is not None or not self.pending:
            return
        every = self.settings.summary_every
        left = (self._window + 1) * every - self._clock()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(min(every, max(0.0, left)) + 0.05, self._wake, journal)

    def _wake(self, journal: Journal) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush(journal))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, journal: Journal) -> None:
        await written(journal, self.due())
        self.watch(journal)

    async def close(self, journal: Journal, within: float) -> None:
        """Stop the timer and write every summary still to be written into ``journal``, for
        ``within`` seconds at most (a journal that hangs: what is left is given up, logged)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            async with asyncio.timeout(within):
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await written(journal, self.drain())
        except TimeoutError:
            _log.error("refusal_summaries_not_journalled", error="TimeoutError")
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def written(journal: Journal, rows: list[Refusal]) -> None:
    """Write ``rows`` into ``journal``; one it cannot take is logged (its error's type only)."""
    for row in rows:
        try:
            await journal.refuse(row)
        except Exception as exc:  # the journal unavailable: logged, the rest tried all the same
            _log.error("refusal_not_journalled", error=type(exc).__name__, problem=row.problem)


def summary(key: str, tally: _Tally) -> Refusal:
    """The one row that stands for what was not kept of ``key``'s refusals in a window (``key``
    empty: of the addresses past the first :data:`SUMMARIES`)."""
    kinds = ", ".join(
        f"{status} {problem} ×{n}" if status else f"others ×{n}"
        for (status, problem), n in sorted(tally.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    status = max(tally.kinds.items(), key=lambda kv: (kv[1], -kv[0][0]))[0][0] if kinds else 0
    who = "this address" if key else f"addresses past the first {SUMMARIES} of the window"
    detail = (
        f"{tally.rows} refusal(s) not kept one by one and {tally.bodies} kept without the body "
        f"({tally.body_bytes} bytes of bodies not kept), from {who} between {_utc(tally.first)} "
        f"and {_utc(tally.last)}, past the refusal budget: {kinds}"
    )
    return Refusal(
        at=tally.last,
        remote=key,
        method="",
        path="",
        status=status,
        problem=SUMMARY_PROBLEM,
        detail=detail,
        idempotency_key=None,
        body=b"",
        body_bytes=tally.body_bytes,
    )


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_budgets: weakref.WeakKeyDictionary[Journal, RefusalBudget] = weakref.WeakKeyDictionary()


def budget_of(journal: Journal) -> RefusalBudget:
    """The budget of ``journal`` (made with the defaults the first time it is asked for)."""
    found = _budgets.get(journal)
    if found is None:
        found = _budgets[journal] = RefusalBudget()
    return found


def install(journal: Journal, budget: RefusalBudget) -> None:
    """Make ``budget`` the budget of ``journal`` (before a broker opens it: a test's clock)."""
    _budgets[journal] = budget
