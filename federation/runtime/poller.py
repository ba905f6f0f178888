"""Status polling: for partners that cannot call back, ask how each delivered application stands.

A service with ``poll_every`` in partners.yaml (REST: with ``status_path``; SOAP: with
``status_operation``) is asked, that often, about every delivered application whose lifecycle has
not ended (completed, not accepted). The question is the mapping's ``status_query:`` section applied
to ``{"original": {exchange_id, idempotency_key, receipt}}`` (REST without one: ``{"idempotency_key":
…}``); each query carries an idempotency key of its own (``status-<exchange id>-<n>``), so a
partner that answers a repeated key with its first reply does not answer with the filing's receipt.
The answer goes through the mapping's ``status:`` section like a callback would; a changed state is
journalled as a ``lifecycle`` event (``via: poll``) and forwarded to the source. Partners are asked
side by side, each within its deliveries' concurrency slots, rate limit and circuit breaker. Each
instance polls on its own: with several instances a partner is asked once per instance (the
journal writes a step only once: the same state again is no step).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from adapters.base import Adapter, OutboundRequest
from federation.config import Partner, Service
from federation.domain.errors import (
    AdapterError,
    FederationError,
    MappingError,
    RequestRefused,
    TransientError,
)
from federation.domain.models import LIFECYCLE_FINAL, Exchange, Lifecycle
from federation.logging import get_logger
from federation.mapping import CompiledMapping
from federation.runtime.breaker import PartnerGuards
from federation.runtime.catalogue import Catalogue
from federation.runtime.events import cancelled
from federation.runtime.lifecycle import as_text, is_state, record_lifecycle
from federation.runtime.worker import Worker
from replay.journal import Journal, Query

FINAL = LIFECYCLE_FINAL
OPEN = tuple(s.value for s in Lifecycle if s.value not in FINAL)  # still worth asking about
PAGE = 500


class Host(Protocol):
    """What the poller asks of the broker (a Protocol: the broker module imports this one)."""

    @property
    def journal(self) -> Journal: ...

    @property
    def catalogue(self) -> Catalogue: ...

    @property
    def adapters(self) -> Mapping[str, Adapter]: ...

    @property
    def worker(self) -> Worker: ...


class Poller:
    """Polls partners' status operations for one broker instance."""

    def __init__(self, broker: Host, *, every: float | None = None) -> None:
        self.broker = broker
        self.every = every  # overrides every service's poll_every (the demo's short rounds)
        self._last: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.outstanding = 0  # applications the last round found to ask about
        self._log = get_logger(component="poller")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="status-poller")

    async def stop(self) -> None:
        await cancelled(self._task)

    def _services(self) -> list[tuple[Partner, Service, float]]:
        out = []
        for partner in self.broker.catalogue.config.partners.values():
            for service in partner.services.values():
                every = getattr(service.options.get(partner.protocol), "poll_every", None)
                if every:
                    out.append(
                        (partner, service, float(every if self.every is None else self.every))
                    )
        return out

    async def _loop(self) -> None:
        while True:
            services = self._services()
            tick = min([every for _, _, every in services], default=30.0) / 2
            await asyncio.sleep(min(max(tick, 0.05), 30.0))
            try:
                await self.poll_once()
            except FederationError as exc:
                self._log.warning("status_poll_failed", error=str(exc))
            except Exception as exc:
                # the type only: a message could quote a partner's answer, personal data and all
                self._log.error("status_poll_crashed", error=type(exc).__name__)

    async def _outstanding(self, partner: str, service: str) -> AsyncIterator[Exchange]:
        """Every delivered application of the service whose lifecycle is not final, page by page."""
        query = Query(
            states=("delivered",),
            partner=partner,
            service=service,
            lifecycle=OPEN,
            limit=PAGE,
        )
        while True:
            page = await self.broker.journal.search(query)
            for ex in page:
                yield ex
            if len(page) < PAGE:
                return
            query = replace(query, before=page[-1].id)

    async def poll_once(self) -> int:
        """Ask about every application that is due; returns how many lifecycle changes were noted.

        Partners are asked side by side, each within its own concurrency slots, rate limit and
        circuit breaker (those of deliveries to it): a partner that is slow or down holds up no
        other, and one whose breaker is open is not asked until deliveries find it back.
        """
        outstanding: set[str] = set()
        rounds = []
        for partner, service, every in self._services():
            adapter = self.broker.adapters.get(partner.id)
            mapping = self.broker.catalogue.mapping(partner.id, service.code)
            if adapter is None or mapping is None or mapping.status is None:
                continue
            now = time.monotonic()
            due: list[Exchange] = []
            async for ex in self._outstanding(partner.id, service.code):
                outstanding.add(ex.id)
                if not ex.supplement_of and now - self._last.get(ex.id, -1e9) >= every:
                    due.append(ex)
            if due:
                rounds.append(self._ask_all(_Asking(partner, service.code, adapter, mapping), due))
        changes = sum(await asyncio.gather(*rounds))
        self.outstanding = len(outstanding)  # the poller's backlog, for /metrics
        # forget applications that are no longer outstanding, so the schedule does not grow forever
        self._last = {k: v for k, v in self._last.items() if k in outstanding}
        return changes

    async def _ask_all(self, asking: _Asking, due: list[Exchange]) -> int:
        """Ask about ``due`` with as many questions in flight as the partner takes."""
        guards = self.broker.worker.guards(asking.partner)
        todo = iter(due)
        changes = 0

        async def asker() -> None:
            nonlocal changes
            for ex in todo:  # shared: each application is taken by one asker
                if not guards.breaker.closed:
                    return  # down: asked again next round, once deliveries find it back
                self._last[ex.id] = time.monotonic()
                changed = await self._ask(asking, guards, ex)
                changes += changed  # after the await: `changes += await …` would read it before

        await asyncio.gather(*(asker() for _ in range(max(1, asking.partner.concurrency))))
        return changes

    async def _ask(self, asking: _Asking, guards: PartnerGuards, ex: Exchange) -> int:
        """One question about one application; 1 if the answer was a new lifecycle step."""
        full = await self.broker.journal.get(ex.id)
        steps = full.lifecycle() if full is not None else []
        if full is None or (steps and steps[-1]["state"] in FINAL):
            return 0
        mapping = asking.mapping
        try:
            if mapping.status_query is not None:
                question = mapping.status_query.apply({"original": full.original(sent=True)})
            else:
                question = {"idempotency_key": full.sent_key()}  # the key the partner knows
            if guards.rate is not None:
                await guards.rate.acquire()
            async with guards.slots:
                reply = await asking.adapter.send(
                    OutboundRequest(
                        exchange_id=ex.id,
                        idempotency_key=f"status-{ex.id}-{time.time_ns()}",
                        service=asking.service,
                        payload=question,
                        attempt=0,
                        kind="status",
                    )
                )
            guards.breaker.success()
            mapped = mapping.map_status(reply.body) or {}
        except TransientError as exc:
            guards.breaker.failure()  # what the partner's health is made of, like a delivery
            self._unanswered(ex, exc)
            return 0
        except (AdapterError, MappingError) as exc:
            self._unanswered(ex, exc)
            return 0
        if not is_state(mapped.get("lifecycle")):
            self._log.info("status_poll_unmapped", exchange_id=ex.id)
            return 0
        try:
            update = as_text(mapped)
        except RequestRefused as exc:  # a note that is an object: counted, never quoted
            problems = len(exc.extra.get("errors", ()))
            self._log.info("status_poll_unmapped", exchange_id=ex.id, problems=problems)
            return 0
        try:
            _, changed = await record_lifecycle(
                self.broker.journal, self.broker.catalogue, full, update, reply.body, via="poll"
            )
        except RequestRefused as exc:  # out of order: journalled on the exchange
            self._log.info("status_poll_out_of_order", exchange_id=ex.id, error=exc.detail)
            return 0
        return int(changed)

    def _unanswered(self, ex: Exchange, exc: AdapterError | MappingError) -> None:
        """Logged by kind and status only: a partner's fault text or a mapping problem can quote
        the application (names in free text escape the log's pattern redaction)."""
        if isinstance(exc, MappingError):
            self._log.info("status_poll_unmapped", exchange_id=ex.id, problems=len(exc.problems))
        else:
            self._log.info(
                "status_poll_unanswered",
                exchange_id=ex.id,
                kind=type(exc).__name__,
                status=getattr(exc, "status", None),
            )


@dataclass(frozen=True)
class _Asking:
    """What asking one service's partner takes."""

    partner: Partner
    service: str
    adapter: Adapter
    mapping: CompiledMapping
