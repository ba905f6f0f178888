"""Stateful property test: no mix of outcomes, crashes and restarts loses or doubles an application."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.base import OutboundRequest, Reply
from federation.domain.errors import PermanentError, Transcript, TransientError, UnknownOutcomeError
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State
from federation.runtime.catalogue import load_catalogue
from federation.runtime.worker import Worker
from federation.testing import InMemoryJournal
from tests.conftest import HK_APPLICATION, HK_MAPPING, PARTNERS_YAML

OUTCOMES = ["ok", "transient", "unknown", "permanent", "crash_after_send", "crash_before_send"]
LEASE = 30.0


class SimulatedCrash(BaseException):
    """The worker process dies here: nothing after this point is recorded."""


class ScriptedPartner:
    """An adapter whose next outcomes the test chooses; it records every key it receives."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.seen: Counter[str] = Counter()
        self.healthy = False

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, request: OutboundRequest) -> Reply:
        outcome = "ok" if self.healthy or not self.script else self.script.pop(0)
        if outcome == "crash_before_send":
            raise SimulatedCrash()
        self.seen[request.idempotency_key] += 1
        common = {"partner": "hk", "operation": request.service, "transcript": Transcript()}
        if outcome == "transient":
            self.seen[request.idempotency_key] -= 1  # refused: it never got in
            raise TransientError("503", status=503, **common)
        if outcome == "unknown":
            raise UnknownOutcomeError("timed out after sending", **common)
        if outcome == "permanent":
            raise PermanentError("422", status=422, **common)
        if outcome == "crash_after_send":
            raise SimulatedCrash()
        return Reply(
            status=200, body={"ref_no": f"R-{request.idempotency_key}"}, transcript=Transcript()
        )


def _catalogue_dir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tongban-sm-"))
    (root / "mappings").mkdir()
    text = PARTNERS_YAML.format(read="2s", total="5s", max_attempts=1000, hk_schema="")
    text = text.replace(
        "    concurrency: 8\n", "    concurrency: 8\n    breaker: {failures: 1000}\n"
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "hk-vl.yaml").write_text(
        HK_MAPPING.replace(
            "  receipt_number: {from: ref_no, required: true}\n  status: {from: status, required: true}\n",
            "  receipt_number: {from: ref_no, required: true}\n",
        ),
        encoding="utf-8",
    )
    (root / "mappings" / "sc-hf.yaml").write_text(
        "mapping: 1\nrequest:\n  a: {value: 1}\n", encoding="utf-8"
    )
    return root


CATALOGUE = load_catalogue(_catalogue_dir())


class DeliveryMachine(RuleBasedStateMachine):
    """Applications, partner behaviour, worker deaths and restarts, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = 1_800_000_000.0
        self.journal = InMemoryJournal(clock=self.clock)
        self.loop.run_until_complete(self.journal.open())
        self.partner = ScriptedPartner()
        self.submitted: dict[str, str] = {}  # key → exchange id
        self.generation = 0
        self.worker = self._worker()

    def clock(self) -> float:
        return self.now

    def _worker(self) -> Worker:
        self.generation += 1

        async def no_sleep(_: float) -> None:
            return None

        return Worker(
            journal=self.journal,
            catalogue=lambda: CATALOGUE,
            adapters={"hk": self.partner},
            owner=f"worker-{self.generation}",
            lease=LEASE,
            poll_interval=1.0,
            clock=self.clock,
            sleep=no_sleep,
        )

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @rule(n=st.integers(min_value=1, max_value=3), resend=st.booleans())
    def submit(self, n: int, resend: bool) -> None:
        """New applications arrive (and a source sometimes repeats one)."""
        for _ in range(n):
            key = f"k{len(self.submitted)}"
            new = NewExchange(
                id=new_id(self.now),
                direction=Direction.OUTBOUND,
                source="gd-portal",
                target="hk",
                service="TD-VL-RENEW",
                idempotency_key=key,
                request_hash="sha256:same",
                application=HK_APPLICATION,
                received_at=self.now,
            )
            ex, created = self.run(self._intake(new))
            assert created
            self.submitted[key] = ex.id
        if resend and self.submitted:
            key = next(iter(self.submitted))
            again = NewExchange(
                id=new_id(self.now),
                direction=Direction.OUTBOUND,
                source="gd-portal",
                target="hk",
                service="TD-VL-RENEW",
                idempotency_key=key,
                request_hash="sha256:same",
                application=HK_APPLICATION,
                received_at=self.now,
            )
            ex, created = self.run(self.journal.create(again, owner="x", lease_until=self.now))
            assert not created and ex.id == self.submitted[key]

    async def _intake(self, new: NewExchange) -> Any:
        """What Broker.submit does: journal first (leased to us), then hand to the worker."""
        ex, created = await self.journal.create(
            new, owner=self.worker.owner, lease_until=self.now + LEASE
        )
        self.worker.offer(ex)
        return ex, created

    @rule(outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=6))
    def partner_behaves(self, outcomes: list[str]) -> None:
        """Script how the partner answers the next requests."""
        self.partner.script.extend(outcomes)

    @rule()
    def let_work_run(self) -> None:
        """The worker processes what it holds and what is due."""
        self.run(self.worker.work_once())

    @rule(seconds=st.sampled_from([1.0, 10.0, 31.0, 400.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def crash_and_restart(self) -> None:
        """The broker dies (in-flight work is abandoned with its leases) and a new one starts."""
        self._kill()
        self.worker = self._worker()

    def _kill(self) -> None:
        tasks = list(self.worker._in_hand.values())
        for task in tasks:
            task.cancel()
        if tasks:
            self.run(asyncio.gather(*tasks, return_exceptions=True))

    @invariant()
    def one_exchange_per_key(self) -> None:
        keys = Counter(ex.idempotency_key for ex in self.journal.exchanges.values())
        assert all(count == 1 for count in keys.values())
        assert set(keys) == set(self.submitted)

    @invariant()
    def mapped_once(self) -> None:
        """Retries resend the mapped request; they never map (or journal the mapping) again."""
        kinds = Counter((e.exchange_id, e.kind) for e in self.journal.events)
        assert all(n == 1 for (_, kind), n in kinds.items() if kind in ("received", "mapped"))

    @invariant()
    def partner_only_sees_submitted_keys(self) -> None:
        """The partner is sent each exchange's id as its key: only submitted ones reach it."""
        assert set(self.partner.seen) <= set(self.journal.exchanges)

    @precondition(lambda self: bool(self.submitted))
    @rule()
    def recovery_finishes_everything(self) -> None:
        """With a healthy partner and time for leases and retries, nothing stays unfinished."""
        self.partner.healthy = True
        for _ in range(50):
            self.now += 3600
            self.run(self.worker.work_once())
            open_ = [ex for ex in self.journal.exchanges.values() if not ex.state.terminal]
            if not open_:
                break
        states = Counter(ex.state for ex in self.journal.exchanges.values())
        ended = {State.DELIVERED, State.REJECTED, State.FAILED, State.UNCONFIRMED}
        assert set(states) <= ended, states
        for xid, ex in self.journal.exchanges.items():
            if ex.state is State.UNCONFIRMED:
                # A refusal while an attempt taken over has no end of its own (the broker died
                # during it, before or after the request left: it cannot know which) cannot be
                # told from the refusal of a duplicate: unconfirmed, never rejected. So the
                # history holds an attempt whose end its taker presumed (an untimed end).
                presumed = [
                    e
                    for e in self.journal.events
                    if e.exchange_id == xid
                    and e.kind == "attempt_finished"
                    and "duration_ms" not in e.data
                ]
                assert presumed, xid
        for key, xid in self.submitted.items():
            ex = self.journal.exchanges[xid]
            if ex.state is State.DELIVERED:
                # the partner knows it by its exchange id (the key it is sent), not the source's
                assert self.partner.seen[xid] >= 1, key
                assert ex.receipt == {"receipt_number": f"R-{xid}"}
        self.partner.healthy = False

    def teardown(self) -> None:
        self._kill()
        self.loop.close()


DeliveryMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDeliveryMachine = DeliveryMachine.TestCase


@pytest.mark.parametrize("crash", ["crash_after_send", "crash_before_send"])
def test_a_refusal_after_a_crash_in_an_attempt_ends_unconfirmed_after_recovery(crash: str) -> None:
    """The sequences the search found: the broker dies in an attempt (the request sent or not:
    it cannot tell), the lease runs out, the partner refuses the retry (422): the exchange ends
    unconfirmed, and recovery accepts that."""
    state = DeliveryMachine()
    try:
        state.partner_behaves(outcomes=[crash])
        state.submit(n=1, resend=False)
        state.partner_behaves(outcomes=["permanent"])
        state.time_passes(seconds=31.0)
        state.let_work_run()
        state.recovery_finishes_everything()
        assert [ex.state for ex in state.journal.exchanges.values()] == [State.UNCONFIRMED]
    finally:
        state.teardown()
