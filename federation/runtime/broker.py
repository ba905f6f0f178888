"""The broker: catalogue, journal, adapters and worker wired together, with one lifetime.

::

    async with Broker(root=Path("."), journal=SQLiteJournal(path)).open() as broker:
        exchange, created = await broker.submit(...)

Adapters come from the protocol registry unless given, as httpx takes a transport:
``Broker(..., adapters={"hk": MockAdapter(handler)})`` (partner id → adapter) or
``adapters=factory`` (partner → adapter). The broker starts and closes whichever it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.base import Adapter
from adapters.registry import create_adapter
from federation.config import Partner
from federation.domain.errors import ConfigError, FederationError, JournalError
from federation.domain.ids import IdGenerator, new_id
from federation.domain.models import (
    Direction,
    Exchange,
    NewExchange,
    canonical_json,
    content_hash,
)
from federation.logging import get_logger
from federation.runtime import heap, shutdown, siblings, tracing
from federation.runtime.breaker import Sleep
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.metrics import Metrics, config_version
from federation.runtime.notifier import Notifier
from federation.runtime.poller import Poller
from federation.runtime.presence import Presence
from federation.runtime.retention import RetentionJob
from federation.runtime.worker import Worker
from replay.journal import ArchiveReads, Journal
from replay.refs import RefExtractor, reference
from replay.tally import observe_commits

AdapterFactory = Callable[[Partner], Adapter]
Adapters = Mapping[str, Adapter] | AdapterFactory  # partner id → adapter, or partner → adapter


@dataclass(frozen=True, kw_only=True)
class Submission:
    """An application as the intake API received it, already shape-checked."""

    source: str
    partner: str
    service: str
    idempotency_key: str
    application: Mapping[str, Any]
    direction: Direction = Direction.OUTBOUND  # inbound: a partner filed it for the local system
    supplement_of: str | None = None  # a correction round's material for this exchange


def request_hash(sub: Submission) -> str:
    """What 'the same request' means for idempotency: target, service and application."""
    return content_hash(
        canonical_json(
            {"partner": sub.partner, "service": sub.service, "application": sub.application}
        )
    )


class Broker:
    """One broker instance."""

    def __init__(
        self,
        *,
        root: Path,
        journal: Journal,
        endpoints: Mapping[str, str] | None = None,
        owner: str | None = None,
        lease: float | None = None,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.time,
        search_key: Callable[[], bytes] | None = None,
        inbound_keys: Mapping[str, str] | None = None,
        status_poll_every: float | None = None,
        adapters: Adapters | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.root = root
        self._adapter_source: Adapters = adapters if adapters is not None else create_adapter
        self._sleep = sleep
        self._status_poll_every = status_poll_every  # overrides poll_every (demo, tests)
        self._search_key = search_key
        self._refs: RefExtractor | None = None
        self.journal = journal
        self._endpoints = dict(endpoints or {})
        self._inbound_keys = dict(inbound_keys or {})
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        # Its own id sequence: a broker run on a test's clock keeps its ids to itself.
        self._ids = IdGenerator()
        self._lease = lease
        self._poll_interval = poll_interval
        self._clock = clock
        self._catalogue: Catalogue | None = None
        self._adapters: dict[str, Adapter] = {}
        self._retired: list[Adapter] = []
        self._worker: Worker | None = None
        self._notifier: Notifier | None = None
        self._poller: Poller | None = None
        self.retention: RetentionJob | None = None  # with a journal that can archive
        self.started_at: float | None = None
        self._log = get_logger(component="broker", owner=self.owner)
        self.metrics = Metrics(self.owner, clock=clock)
        self.presence = Presence(journal, owner=self.owner, clock=clock)
        self.config_version = ""

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            raise FederationError("broker is not open")
        return self._catalogue

    @property
    def adapters(self) -> Mapping[str, Adapter]:
        """The partners' adapters in use (for the status poller)."""
        return self._adapters

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            raise FederationError("broker is not open")
        return self._worker

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Broker]:
        """Load the catalogue, open the journal, start adapters and the worker; undo on exit."""
        # YAML parsing is blocking work: keep it off the event loop.
        self._catalogue = await asyncio.to_thread(
            load_catalogue, self.root, endpoints=self._endpoints, inbound_keys=self._inbound_keys
        )
        settings = self._catalogue.config.broker
        self._refs = self._ref_extractor(self._catalogue)
        await self._configured(self._catalogue)
        await self.journal.open()
        unobserve = observe_commits(self.journal, self.metrics.committed)
        try:
            # A journal that cannot take writes (a rollback its checkpoints show, a read-only
            # database) is refused here, before any part starts, not at the first application.
            await self.journal.ping()
            for partner in self._catalogue.config.partners.values():
                await self._use_adapter(partner)
            self._worker = Worker(
                journal=self.journal,
                catalogue=lambda: self.catalogue,
                adapters=self._adapters,
                owner=self.owner,
                lease=self._lease or settings.lease,
                poll_interval=self._poll_interval or settings.poll_interval,
                clock=self._clock,
                sleep=self._sleep,
                metrics=self.metrics,
            )
            self._worker.start()
            self._notifier = Notifier(
                journal=self.journal,
                catalogue=lambda: self.catalogue,
                owner=self.owner,
                poll_interval=self._poll_interval or settings.poll_interval,
                clock=self._clock,
            )
            self._notifier.start()
            self._poller = Poller(self, every=self._status_poll_every)
            self._poller.start()
            self._start_retention()
            self.presence.start()
            self.metrics.start(self)  # --workers: its gauges, for whichever worker is scraped
            self.started_at = self._clock()
            self._log.info("broker_started", partners=len(self._adapters))
            yield self
        finally:
            await self._stop()
            unobserve()
            self._log.info("broker_stopped")

    async def _stop(self) -> None:
        """Stop what ``open`` started, release the leases, close adapters and the journal."""
        await self.presence.stop()
        await self.metrics.stop()
        if self._worker is not None:  # a grace that fits in what is left of the drain
            await self._worker.stop(grace=shutdown.grace())
        for part in (self._notifier, self._poller, self.retention):
            if part is not None:
                await part.stop()
        await self._release_leases()
        # one adapter may serve several partners (a factory's choice): closed once
        for adapter in {id(a): a for a in [*self._adapters.values(), *self._retired]}.values():
            await adapter.close()
        self._adapters.clear()
        self._retired.clear()
        await self.journal.close()

    def _start_retention(self) -> None:
        """The scheduled archive-then-prune of ``broker: retention:`` (read at every run)."""
        journal = self.journal
        archive = getattr(journal, "archive", None)  # JournalAdmin's: not every journal
        if archive is None or not isinstance(journal, ArchiveReads):
            return
        self.retention = RetentionJob(
            archive=archive,
            policy=lambda: self.catalogue.config.broker.retention,
            owner=self.owner,
            journal=journal,  # what each archive is checked against and signed with
            clock=self._clock,
        )
        self.retention.start()

    async def _release_leases(self) -> None:
        """Draining: give up what this instance still leases (attempts cut short by the worker's
        grace, retries, callbacks), so other instances take it now, not when the leases expire.
        The grace leaves the drain's margin for this (``federation/runtime/shutdown.py``)."""
        try:
            released = await self.journal.release(owner=self.owner)
        except JournalError as exc:  # the journal is gone: the leases expire on their own
            self._log.warning("leases_not_released", error=str(exc))
            return
        self._log.info("leases_released", exchanges=released)

    async def reload(self) -> Catalogue:
        """Load partners.yaml, mappings and code tables anew and switch to them atomically.

        On any problem a ConfigError is raised and the catalogue in force stays as it was. Partners
        whose settings changed get a new adapter; the old one is closed at shutdown, so deliveries
        already on the wire finish undisturbed.
        """
        try:
            new = await asyncio.to_thread(
                load_catalogue,
                self.root,
                endpoints=self._endpoints,
                inbound_keys=self._inbound_keys,
            )
        except ConfigError as exc:
            self.metrics.reloads.labels("refused").inc()
            self._log.warning("reload_refused", problems=len(exc.problems))
            raise
        before = self.catalogue.config.partners
        for pid, partner in new.config.partners.items():
            if before.get(pid) != partner:
                await self._use_adapter(partner)
                self.worker.forget_partner(pid)
        del before  # nothing here may keep the old catalogue alive past the resettle below
        self._catalogue = new
        try:
            self._refs = self._ref_extractor(new)
            self.metrics.reloads.labels("ok").inc()
            await self._configured(new)
        finally:  # the old catalogue is out of use: its cycles may go (federation/runtime/heap.py)
            if (frozen := heap.resettle()) is not None:
                self._log.info("heap_settled", frozen_objects=frozen)
        self._log.info(
            "catalogue_reloaded", partners=len(new.config.partners), mappings=len(new.mappings)
        )
        if siblings.restart_all():  # one of several workers: the others load it by restarting
            self._log.info("workers_restarting", reason="reload")
        return new

    async def _configured(self, catalogue: Catalogue) -> None:
        """Publish the version of the configuration now in force (hashing files: off the loop)."""
        self.config_version = await asyncio.to_thread(config_version, self.root, catalogue)
        self.metrics.configured(self.config_version)
        self.presence.serving(self.config_version)

    def breaker_states(self) -> dict[str, str]:
        """Each partner's circuit-breaker state in this instance (for /metrics)."""
        worker = self._worker
        return {
            pid: str(worker.partner_status(pid)["breaker"]["state"]) if worker else "closed"
            for pid in self.catalogue.config.partners
        }

    def poll_backlog(self) -> int:
        """Delivered applications the status poller still asks about (for /metrics)."""
        return self._poller.outstanding if self._poller is not None else 0

    async def _use_adapter(self, partner: Partner) -> None:
        """Start the adapter ``partner`` is to use from now on; the one it replaces is retired
        (closed at shutdown, so deliveries already on the wire finish undisturbed)."""
        source = self._adapter_source
        adapter = source.get(partner.id) if isinstance(source, Mapping) else source(partner)
        current = self._adapters.get(partner.id)
        if adapter is current:
            return
        if current is not None:
            self._retired.append(current)
            del self._adapters[partner.id]
        if adapter is not None:
            await adapter.start()
            self._adapters[partner.id] = adapter

    def _ref_extractor(self, catalogue: Catalogue) -> RefExtractor | None:
        fields = catalogue.config.applicant_fields
        if not fields or self._search_key is None:
            return None
        return RefExtractor(self._search_key(), fields)

    def applicant_ref(self, value: str) -> bytes | None:
        """The keyed hash support staff search with (None when search by applicant is off)."""
        if self._search_key is None:
            return None
        return reference(self._search_key(), value)

    async def submit(self, sub: Submission) -> tuple[Exchange, bool]:
        """Journal an application (commit first), then hand it to the worker."""
        now = self._clock()
        new = NewExchange(
            id=self._ids.new(now),
            direction=sub.direction,
            source=sub.source,
            target=sub.partner,
            service=sub.service,
            idempotency_key=sub.idempotency_key,
            request_hash=request_hash(sub),
            application=sub.application,
            received_at=now,
            applicant_refs=self._refs(sub.application) if self._refs else (),
            supplement_of=sub.supplement_of,
            traceparent=tracing.current_traceparent(),
        )
        with tracing.span("journal.write", events=1):
            exchange, created = await self.journal.create(
                new, owner=self.owner, lease_until=now + self.worker.lease
            )
        if created:
            self._log.info(
                "exchange_received",
                exchange_id=exchange.id,
                partner=sub.partner,
                service=sub.service,
            )
            self.worker.offer(exchange)
        return exchange, created

    async def get(self, exchange_id: str) -> Exchange | None:
        return await self.journal.get(exchange_id)
