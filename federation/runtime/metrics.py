"""Prometheus metrics of one broker instance, served at ``/metrics`` (docs/observability.md).

Two kinds, told apart by how several instances on one PostgreSQL database add up:

* **from the journal** (gauges read at a scrape: exchanges by state, partner and service; the age
  of the oldest waiting exchange per partner; callbacks owed): every instance reports the same
  numbers, so dashboards and alerts take ``max without (instance)``, never ``sum``. The tally
  behind them is read at most once per ``cache_seconds`` (5 s, ``TONGBAN_METRICS_CACHE_SECONDS``)
  per process, so many scrapers do not each count the exchanges table;
* **per instance** (counters and histograms kept in process: attempts by outcome, intake latency,
  partner call latency, submit-to-delivered time, journal commit latency and batch size, breaker
  state, whether the journal refuses writes for want of room, reloads, the status poller's
  backlog, the configuration version): rates are summed.

``serve --workers N`` runs N processes behind one port, and a scrape reaches one of them. There the
parent sets ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's documented multiprocess mode): every
worker writes its counters, histograms and gauges to files of its own in that directory, and the
worker that answers a scrape renders all of them added up (gauges by their ``multiprocess_mode``),
plus the journal gauges it reads itself. Each worker refreshes its own gauges every REFRESH seconds.

Each broker has its own registry (no process-wide state), so tests may run several brokers.
Recording costs a dictionary lookup and a lock per observation; nothing touches the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from federation.domain.errors import FederationError, JournalError
from federation.logging import bare_traceback, get_logger
from federation.runtime.catalogue import Catalogue
from federation.runtime.events import cancelled
from replay.journal import Journal
from replay.tally import Tally

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Breaker state as a number, so a panel can draw it and an alert compare it.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_END_TO_END = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)
_COMMIT = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
CACHE_ENV = "TONGBAN_METRICS_CACHE_SECONDS"
CACHE_SECONDS = 5.0  # a scrape within this of the last journal read reuses its tally
REFRESH = 1.0  # seconds between a worker's writes of its own gauges (with --workers)


class Host(Protocol):
    """What a scrape reads of the broker (a Protocol: the broker module imports this one)."""

    @property
    def journal(self) -> Journal: ...

    @property
    def catalogue(self) -> Catalogue: ...

    @property
    def owner(self) -> str: ...

    def breaker_states(self) -> Mapping[str, str]: ...

    def poll_backlog(self) -> int: ...


@dataclass
class _Snapshot:
    """What the last scrape read: the journal's tally (None while it cannot be read)."""

    tally: Tally | None = None
    now: float = 0.0
    retry_limits: Mapping[str, float] = field(default_factory=dict)


class _JournalCollector(Collector):
    """Gauges from the last snapshot; series that went away (a state emptied) go with it."""

    def __init__(self, snapshot: Callable[[], _Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        up = GaugeMetricFamily(
            "tongban_journal_up", "1 if this instance could read its journal at the scrape"
        )
        up.add_metric([], 0.0 if snap.tally is None else 1.0)
        yield up
        limit = GaugeMetricFamily(
            "tongban_retry_max_elapsed_seconds",
            "How long the partner's retry policy keeps trying an exchange (max_elapsed)",
            labels=["partner"],
        )
        for partner, seconds in sorted(snap.retry_limits.items()):
            limit.add_metric([partner], seconds)
        yield limit
        if snap.tally is not None:
            yield from _tally_metrics(snap.tally, snap.now)


def _tally_metrics(tally: Tally, now: float) -> Iterator[Metric]:
    exchanges = GaugeMetricFamily(
        "tongban_exchanges",
        "Exchanges in the journal by state, partner and service (the same on every instance)",
        labels=["state", "partner", "service"],
    )
    for (state, partner, service), n in sorted(tally.exchanges.items()):
        exchanges.add_metric([state, partner, service], float(n))
    yield exchanges
    oldest = GaugeMetricFamily(
        "tongban_oldest_waiting_seconds",
        "Age of the oldest exchange not yet ended, per partner (from the journal)",
        labels=["partner"],
    )
    for partner, at in sorted(tally.oldest_waiting.items()):
        oldest.add_metric([partner], max(0.0, now - at))
    yield oldest
    callbacks = GaugeMetricFamily(
        "tongban_callbacks_pending",
        "Ended exchanges whose callback to the source is still owed (the notifier's backlog)",
    )
    callbacks.add_metric([], float(tally.callbacks_pending))
    yield callbacks


def _counters(r: CollectorRegistry) -> tuple[Counter, Counter, Counter]:
    """The counters: attempts by outcome, HTTP answers, reloads."""
    attempts = Counter(
        "tongban_attempts",
        "Delivery attempts by partner and outcome",
        ["partner", "outcome"],
        registry=r,
    )
    requests = Counter(
        "tongban_http_requests",
        "Answers of the HTTP API by route, method and status",
        ["route", "method", "status"],
        registry=r,
    )
    reloads = Counter(
        "tongban_config_reloads",
        "Reloads of partners.yaml and mappings by outcome",
        ["outcome"],
        registry=r,
    )
    return attempts, requests, reloads


def _timings(
    r: CollectorRegistry,
) -> tuple[Histogram, Histogram, Histogram, Histogram, Histogram]:
    """The histograms: intake, partner call, submit to delivered, journal commit and batch size."""
    intake = Histogram(
        "tongban_intake_seconds",
        "POST /v1/exchanges, request to answer (202 after commit)",
        ["status"],
        buckets=_LATENCY,
        registry=r,
    )
    partner_call = Histogram(
        "tongban_partner_call_seconds",
        "One call to a partner, request to reply",
        ["partner"],
        buckets=_LATENCY,
        registry=r,
    )
    submit_to_delivered = Histogram(
        "tongban_submit_to_delivered_seconds",
        "From the intake commit to the partner's receipt",
        ["partner"],
        buckets=_END_TO_END,
        registry=r,
    )
    commit = Histogram(
        "tongban_journal_commit_seconds",
        "One group commit of the journal's writer",
        buckets=_COMMIT,
        registry=r,
    )
    batch = Histogram(
        "tongban_journal_commit_batch_size",
        "Writes committed together in one group commit",
        buckets=_BATCH,
        registry=r,
    )
    return intake, partner_call, submit_to_delivered, commit, batch


class Metrics:
    """The metrics of one broker instance (or one worker of ``serve --workers``)."""

    def __init__(
        self,
        owner: str = "",
        *,
        clock: Callable[[], float] = time.time,
        cache_seconds: float | None = None,
    ) -> None:
        self.owner = owner
        self._clock = clock  # the broker's: ages are measured on the clock that wrote them
        self.cache_seconds = cache_ttl() if cache_seconds is None else cache_seconds
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attempts, self.requests, self.reloads = _counters(r)
        self.refusals_not_kept = Counter(  # federation/api/budget.py
            "tongban_refusals_not_kept",
            "Refused requests not journalled one by one (reason row_address, row_total) or "
            "journalled without their body (body_address, body_total), past the refusal budget",
            ["reason"],
            registry=r,
        )
        (
            self.intake,
            self.partner_call,
            self.submit_to_delivered,
            self.commit,
            self.batch,
        ) = _timings(r)
        self.config, self.poll_backlog, self.breaker, self.refused = _process_gauges(r)
        self._version: str | None = None
        self._partners: set[str] = set()
        # label children, looked up once: .labels() builds a tuple and takes a lock per call
        self._attempt_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._intake_children: dict[int, Any] = {}
        self._snapshot = _Snapshot()
        self._tally: tuple[float, Tally] | None = None  # (monotonic time read, tally)
        self._tally_lock = asyncio.Lock()
        self.journal_reads = 0  # tallies read from the journal (the cache's test counts them)
        collector = _JournalCollector(lambda: self._snapshot)
        r.register(collector)
        self._exposed = r
        if self.multiprocess:  # every worker's files, plus this scrape's journal reading
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)  # type: ignore[no-untyped-call]
            self._exposed.register(collector)
        self._refresher: asyncio.Task[None] | None = None
        self._log = get_logger(component="metrics")

    # -- hooks (cheap: called on the delivery path) -------------------------------------------

    def attempted(self, partner: str, outcome: str, seconds: float) -> None:
        """One attempt ended with ``outcome`` after ``seconds`` on the wire."""
        children = self._attempt_children.get((partner, outcome))
        if children is None:
            children = (self.attempts.labels(partner, outcome), self.partner_call.labels(partner))
            self._attempt_children[(partner, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def delivered(self, partner: str, seconds: float) -> None:
        """An exchange reached the partner ``seconds`` after it was received."""
        self.submit_to_delivered.labels(partner).observe(max(0.0, seconds))

    def committed(self, seconds: float, writes: int) -> None:
        """The journal committed a batch of ``writes`` (called from its writer, maybe a thread)."""
        self.commit.observe(seconds)
        self.batch.observe(writes)

    def answered(self, route: str, method: str, status: int, seconds: float, intake: bool) -> None:
        """The HTTP API answered ``status`` on ``route`` after ``seconds`` (``intake``: a POST
        of an application, also timed by the intake histogram)."""
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        if intake:
            timed = self._intake_children.get(status)
            if timed is None:
                timed = self._intake_children[status] = self.intake.labels(str(status))
            timed.observe(seconds)

    def configured(self, version: str) -> None:
        """This instance now runs configuration ``version``."""
        if self._version is not None and self._version != version:
            if self.multiprocess:  # a series cannot be removed from the shared files: 0 it
                self.config.labels(self.owner, self._version).set(0)
            else:
                self.config.clear()
        self._version = version
        self.config.labels(self.owner, version).set(1)

    def refresh(self, host: Host) -> None:
        """Publish this process's own state: breaker of each partner, status-poll backlog,
        whether its journal refuses writes for want of room."""
        states = host.breaker_states()
        for partner in self._partners - states.keys():  # a partner the reload took away
            if self.multiprocess:
                self.breaker.labels(partner).set(0)
            else:
                self.breaker.remove(partner)
        self._partners = set(states)
        for partner, state in states.items():
            self.breaker.labels(partner).set(BREAKER_VALUES.get(state, 0.0))
        self.poll_backlog.set(host.poll_backlog())
        self.refused.set(1.0 if refusing(host.journal) else 0.0)

    # -- a worker of several: its own state written for whichever worker is scraped -------------

    def start(self, host: Host) -> None:
        """With ``serve --workers``, refresh this process's state every REFRESH seconds (a
        scrape reaches one worker; the others' breakers and backlogs come from their files)."""
        if self.multiprocess and self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_every(host))

    async def stop(self) -> None:
        await cancelled(self._refresher)
        self._refresher = None

    async def _refresh_every(self, host: Host) -> None:
        while True:
            try:
                self.refresh(host)
            except FederationError as exc:  # a broker closing: the next round tells
                self._log.debug("metrics_refresh_skipped", error=str(exc))
            except Exception as exc:  # a file that cannot be written: never the loop's end
                self._log.error(
                    "metrics_refresh_failed",
                    error=type(exc).__name__,
                    exception=bare_traceback(exc),
                )
            await asyncio.sleep(REFRESH)

    # -- a scrape -------------------------------------------------------------------------------

    async def exposition(self, host: Host) -> bytes:
        """Read the journal's tally (at most once per ``cache_seconds``) and this instance's
        state, then render every metric (with ``--workers``: every worker's). A journal that
        refuses writes for want of room looks for room again first, as /readyz does, so the
        gauge falls back to 0 with no readiness probe needed."""
        if refusing(host.journal):
            with contextlib.suppress(JournalError):  # still no room: the gauge stays at 1
                await host.journal.ping()
        self.refresh(host)
        tally = await self.tally(host.journal)
        catalogue = host.catalogue
        self._snapshot = _Snapshot(
            tally=tally,
            now=self._clock(),
            retry_limits={p.id: p.retry.max_elapsed for p in catalogue.config.partners.values()},
        )
        return generate_latest(self._exposed)

    async def tally(self, journal: Journal) -> Tally | None:
        """The journal's tally, read again only once the last is ``cache_seconds`` old; scrapes
        at the same moment share one read. None while the journal cannot be read."""
        async with self._tally_lock:
            if self._tally is not None and time.monotonic() - self._tally[0] < self.cache_seconds:
                return self._tally[1]
            self.journal_reads += 1
            try:
                tally = await journal.tally()  # each backend reads off the event loop
            except JournalError as exc:
                self._log.warning("metrics_journal_unreadable", error=str(exc))
                self._tally = None
                return None
            self._tally = (time.monotonic(), tally)
            return tally


def _process_gauges(r: CollectorRegistry) -> tuple[Gauge, Gauge, Gauge, Gauge]:
    """The gauges of one process; ``multiprocess_mode`` says how workers' values combine."""
    config = Gauge(
        "tongban_config_info",
        "The configuration this instance runs (1 for its version)",
        ["instance_owner", "version"],
        registry=r,
        multiprocess_mode="liveall",  # one series per live worker (pid label)
    )
    poll_backlog = Gauge(
        "tongban_status_poll_backlog",
        "Delivered applications the status poller still asks about (this instance)",
        registry=r,
        multiprocess_mode="livesum",  # the live workers' backlogs added up
    )
    breaker = Gauge(
        "tongban_breaker_state",
        "Circuit breaker of each partner in this instance: 0 closed, 1 half-open, 2 open",
        ["partner"],
        registry=r,
        multiprocess_mode="livemax",  # the worst breaker of any live worker
    )
    refused = Gauge(
        "tongban_journal_writes_refused",
        "1 while this instance's journal refuses writes for want of room on its disk, else 0",
        registry=r,
        multiprocess_mode="livemax",  # 1 if any live worker's writes are refused
    )
    return config, poll_backlog, breaker, refused


def refusing(journal: Journal | None) -> bool:
    """Whether ``journal`` refuses writes for want of room now (``Journal.writes_refused``); no
    journal yet refuses nothing."""
    return journal is not None and journal.writes_refused


def multiprocess_dir() -> str | None:
    """The directory of prometheus-client's multiprocess mode, if this process is a worker."""
    return os.environ.get(MULTIPROC_ENV) or None


def cache_ttl() -> float:
    """Seconds a scrape may reuse the journal's tally (``TONGBAN_METRICS_CACHE_SECONDS``)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else CACHE_SECONDS
    except ValueError:
        return CACHE_SECONDS


def config_version(root: Path, catalogue: Catalogue) -> str:
    """A short content hash of partners.yaml and every mapping, table and schema in use: the
    same files give the same version on every host, wherever they are installed."""
    digest = hashlib.sha256()
    config = root / "partners.yaml"
    if config.is_file():
        digest.update(config.read_bytes())
    versions: dict[str, Any] = {}
    for partner, service in sorted(catalogue.mappings):
        for name, version in catalogue.versions(partner, service).items():
            versions[Path(str(name)).name + ":" + str(version)] = None
    for key in sorted(versions):
        digest.update(key.encode())
    return digest.hexdigest()[:12]
