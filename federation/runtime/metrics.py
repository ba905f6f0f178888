"""Prometheus metrics of one broker instance, served at ``/metrics`` (docs/observability.md).

Two kinds, told apart by how several instances on one PostgreSQL database add up:

* **from the journal** (gauges read at each scrape: exchanges by state, partner and service; the
  age of the oldest waiting exchange per partner; callbacks owed): every instance reports the same
  numbers, so dashboards and alerts take ``max without (instance)``, never ``sum``;
* **per instance** (counters and histograms kept in process: attempts by outcome, intake latency,
  partner call latency, submit-to-delivered time, journal commit latency and batch size, breaker
  state, reloads, the status poller's backlog, the configuration version): rates are summed.

Each broker has its own registry (no process-wide state), so tests may run several brokers.
Recording costs a dictionary lookup and a lock per observation; nothing touches the journal.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from federation.domain.errors import JournalError
from federation.logging import get_logger
from federation.runtime.catalogue import Catalogue
from replay.journal import Journal
from replay.tally import Tally

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Breaker state as a number, so a panel can draw it and an alert compare it.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_END_TO_END = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)
_COMMIT = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


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
    breakers: Mapping[str, str] = field(default_factory=dict)
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
        breaker = GaugeMetricFamily(
            "tongban_breaker_state",
            "Circuit breaker of each partner in this instance: 0 closed, 1 half-open, 2 open",
            labels=["partner"],
        )
        for partner, state in sorted(snap.breakers.items()):
            breaker.add_metric([partner], BREAKER_VALUES.get(state, 0.0))
        yield breaker
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
    """The metrics of one broker instance, on a registry of its own."""

    def __init__(self, owner: str = "", *, clock: Callable[[], float] = time.time) -> None:
        self.owner = owner
        self._clock = clock  # the broker's: ages are measured on the clock that wrote them
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attempts = Counter(
            "tongban_attempts",
            "Delivery attempts by partner and outcome",
            ["partner", "outcome"],
            registry=r,
        )
        (
            self.intake,
            self.partner_call,
            self.submit_to_delivered,
            self.commit,
            self.batch,
        ) = _timings(r)
        self.requests = Counter(
            "tongban_http_requests",
            "Answers of the HTTP API by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.reloads = Counter(
            "tongban_config_reloads",
            "Reloads of partners.yaml and mappings by outcome",
            ["outcome"],
            registry=r,
        )
        self.config = Gauge(
            "tongban_config_info",
            "The configuration this instance runs (1 for its version)",
            ["instance_owner", "version"],
            registry=r,
        )
        self.poll_backlog = Gauge(
            "tongban_status_poll_backlog",
            "Delivered applications the status poller still asks about (this instance)",
            registry=r,
        )
        self._snapshot = _Snapshot()
        r.register(_JournalCollector(lambda: self._snapshot))
        self._log = get_logger(component="metrics")

    # -- hooks (cheap: called on the delivery path) -------------------------------------------

    def attempted(self, partner: str, outcome: str, seconds: float) -> None:
        """One attempt ended with ``outcome`` after ``seconds`` on the wire."""
        self.attempts.labels(partner, outcome).inc()
        self.partner_call.labels(partner).observe(seconds)

    def delivered(self, partner: str, seconds: float) -> None:
        """An exchange reached the partner ``seconds`` after it was received."""
        self.submit_to_delivered.labels(partner).observe(max(0.0, seconds))

    def committed(self, seconds: float, writes: int) -> None:
        """The journal committed a batch of ``writes`` (called from its writer, maybe a thread)."""
        self.commit.observe(seconds)
        self.batch.observe(writes)

    def configured(self, version: str) -> None:
        """This instance now runs configuration ``version``."""
        self.config.clear()
        self.config.labels(self.owner, version).set(1)

    # -- a scrape -------------------------------------------------------------------------------

    async def exposition(self, host: Host) -> bytes:
        """Read the journal's tally and the instance's state, then render every metric."""
        try:
            tally: Tally | None = await host.journal.tally()
        except JournalError as exc:
            self._log.warning("metrics_journal_unreadable", error=str(exc))
            tally = None
        catalogue = host.catalogue
        self._snapshot = _Snapshot(
            tally=tally,
            now=self._clock(),
            breakers=host.breaker_states(),
            retry_limits={p.id: p.retry.max_elapsed for p in catalogue.config.partners.values()},
        )
        self.poll_backlog.set(host.poll_backlog())
        return generate_latest(self.registry)


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
