"""The delivery worker: maps and delivers leased exchanges with bounded concurrency per partner.

Work arrives two ways. Intake hands over each exchange it just journalled (already leased to this
worker, so there is no polling delay), and a poll loop claims from the journal whatever is due:
``retry_wait`` exchanges whose time has come and exchanges whose lease expired, judged by expiry alone.
That second path is how work resumes after a restart and, with several instances, after a crash.
A heartbeat extends the leases of everything in hand. Neither loop ends on a journal outage or an
unforeseen error: it is logged, and the loop tries again at its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import Adapter
from federation.config import Partner
from federation.domain.errors import JournalError, LeaseLost
from federation.domain.models import Exchange
from federation.logging import bare_traceback, get_logger
from federation.runtime.breaker import PartnerGuards, Sleep
from federation.runtime.catalogue import Catalogue
from federation.runtime.delivery import Delivery
from federation.runtime.events import woken_or_timed_out
from federation.runtime.metrics import Metrics
from federation.runtime.shutdown import GRACE
from replay.journal import Journal


class Worker:
    """Delivers exchanges for one broker instance."""

    def __init__(
        self,
        *,
        journal: Journal,
        catalogue: Callable[[], Catalogue],
        adapters: Mapping[str, Adapter],
        owner: str,
        lease: float,
        poll_interval: float,
        max_in_flight: int = 10_000,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.journal = journal
        self.metrics = metrics
        self._catalogue = catalogue
        self._adapters = adapters
        self.owner = owner
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._rng = rng or random.Random()
        self._guards: dict[str, PartnerGuards] = {}
        self._sleep = sleep
        self._in_hand: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._log = get_logger(component="worker", owner=owner)

    # -- lifetime -----------------------------------------------------------------------------

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._poll_loop(), name="worker-poll"),
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
        ]

    async def stop(self, *, grace: float = GRACE) -> None:
        """Stop claiming; let attempts in flight finish for ``grace`` seconds, then cancel them."""
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = list(self._in_hand.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            for task in still:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Whatever was cancelled keeps its lease until expiry; the next claim takes it over.

    @property
    def in_flight(self) -> int:
        return len(self._in_hand)

    def offer(self, exchange: Exchange) -> None:
        """Take an exchange this instance just journalled (and holds the lease on)."""
        if exchange.id not in self._in_hand and not exchange.state.terminal:
            self._spawn(exchange)

    async def work_once(self, limit: int = 1000) -> int:
        """Claim what is due now and process it to the end (for tests and one-shot runs)."""
        now = self._clock()
        claimed = await self.journal.claim(
            owner=self.owner, now=now, lease_until=now + self.lease, limit=limit
        )
        for ex in claimed:
            if ex.id not in self._in_hand:
                self._spawn(ex)
        if self._in_hand:
            await asyncio.gather(*self._in_hand.values(), return_exceptions=True)
        return len(claimed)

    def forget_partner(self, partner_id: str) -> None:
        """Drop the partner's guards so the next attempt uses its new limits."""
        self._guards.pop(partner_id, None)

    def _wake_at(self, at: float) -> None:
        """Look for due work at ``at`` (a retry this instance scheduled), not at the next poll.

        A stray wake-up after stop() only sets an event nobody waits for.
        """
        asyncio.get_running_loop().call_later(max(0.0, at - self._clock()) + 0.001, self.poke)

    def poke(self) -> None:
        """Ask the poll loop to look for due work now."""
        self._wake.set()

    # -- loops --------------------------------------------------------------------------------

    def _spawn(self, exchange: Exchange) -> None:
        task = asyncio.create_task(self._process(exchange), name=f"exchange-{exchange.id}")
        self._in_hand[exchange.id] = task
        xid = exchange.id

        def forget(_: asyncio.Task[None]) -> None:
            self._in_hand.pop(xid, None)

        task.add_done_callback(forget)

    async def _poll_loop(self) -> None:
        while True:
            room = self.max_in_flight - len(self._in_hand)
            if room > 0:
                now = self._clock()
                try:
                    claimed = await self.journal.claim(
                        owner=self.owner,
                        now=now,
                        lease_until=now + self.lease,
                        limit=min(room, 500),
                    )
                except JournalError as exc:
                    self._log.warning("claim_failed", error=str(exc))
                    claimed = []
                except Exception as exc:  # never the loop's end: nothing would start it again
                    self._crashed("claim_crashed", exc)
                    claimed = []
                for ex in claimed:
                    if ex.id not in self._in_hand:
                        self._spawn(ex)
                if len(claimed) == min(room, 500):
                    continue  # more may be due right away
            self._wake.clear()
            await woken_or_timed_out(self._wake, self.poll_interval)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = list(self._in_hand)
            if not ids:
                continue
            try:
                await self.journal.renew(
                    owner=self.owner, ids=ids, lease_until=self._clock() + self.lease
                )
            except JournalError as exc:
                self._log.warning("lease_renewal_failed", error=str(exc), exchanges=len(ids))
            except Exception as exc:  # never the loop's end: the leases would run out
                self._crashed("lease_renewal_crashed", exc)

    def _crashed(self, event: str, exc: Exception) -> None:
        """Log an unforeseen error of a loop by its type and traceback only: its message could
        quote an application (personal data and all)."""
        self._log.error(event, error=type(exc).__name__, exception=bare_traceback(exc))

    # -- one exchange -------------------------------------------------------------------------

    def guards(self, partner: Partner) -> PartnerGuards:
        """The partner's breaker, rate limit and slots in this instance (made on first use)."""
        guards = self._guards.get(partner.id)
        if guards is None:
            guards = PartnerGuards.for_partner(partner, clock=self._clock, sleep=self._sleep)
            self._guards[partner.id] = guards
        return guards

    def partner_status(self, partner_id: str) -> dict[str, Any]:
        """Breaker state and load of one partner, for GET /v1/partners."""
        guards = self._guards.get(partner_id)
        if guards is None:
            return {
                "breaker": {
                    "state": "closed",
                    "consecutive_failures": 0,
                    "reopens_in_s": 0.0,
                    "times_opened": 0,
                },
                "held": 0,
                "p95_ms": None,
            }
        return {"breaker": guards.breaker.view(), "held": guards.waiting, "p95_ms": guards.p95_ms()}

    async def _process(self, exchange: Exchange) -> None:
        log = self._log.bind(
            exchange_id=exchange.id, partner=exchange.target, service=exchange.service
        )
        try:
            if exchange.state.terminal:
                return
            catalogue = self._catalogue()
            partner = catalogue.partner(exchange.target)
            adapter = self._adapters.get(exchange.target)
            if partner is None or adapter is None:
                log.error("exchange_undeliverable", reason="partner no longer configured")
                return
            delivery = Delivery(
                journal=self.journal,
                catalogue=catalogue,
                adapter=adapter,
                partner=partner,
                guards=self.guards(partner),
                owner=self.owner,
                lease=self.lease,
                log=log,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                scheduled=self._wake_at,
                metrics=self.metrics,
            )
            await delivery.run(exchange)
        except LeaseLost:
            log.info("lease_lost")
        except JournalError as exc:
            # Nothing more can be recorded now; the lease will expire and the work be claimed again.
            log.error("journal_write_failed", error=str(exc))
        except Exception as exc:
            # the type only: a message could quote the application (personal data and all)
            log.error(
                "worker_crashed_on_exchange",
                error=type(exc).__name__,
                exception=bare_traceback(exc),
            )
