"""A request refused on our side before sending (it breaks the partner's WSDL) says nothing to the
partner's circuit breaker: a half-open breaker's probe refused so neither closes the breaker nor
keeps its place. The TD simulator (SOAP 1.1) on loopback, the in-memory journal, a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, Exchange, NewExchange, State, StateChange
from federation.runtime.breaker import BreakerState, CircuitBreaker
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.worker import Worker
from federation.testing import FakeClock, InMemoryJournal
from replay.journal import Journal
from tests.integration.test_delivery import soap_partner
from tests.integration.test_delivery_lease_lost import worker
from tests.integration.test_soap_adapter import HK_PAYLOAD

REPLY = "success: {status: [200]}\n"


async def queued(journal: InMemoryJournal, key: str, payload: dict[str, Any], at: float) -> str:
    """An exchange to hk already mapped to ``payload``, due now; its id."""
    new = NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"key": key},
        received_at=at,
    )
    ex, _ = await journal.create(new, owner="intake", lease_until=at + 30)
    mapped = {"mapped": payload, "versions": {}, "key": key}
    event = Event(exchange_id=ex.id, kind="mapped", at=at, data=mapped)
    change = StateChange(state=State.QUEUED, release_lease=True)
    await journal.record(ex.id, [event], change, owner="intake")
    return ex.id


async def got(journal: InMemoryJournal, xid: str) -> Exchange:
    """The exchange as the journal holds it now."""
    found = await journal.get(xid)
    assert found is not None
    return found


def probing(
    journal: Journal, catalogue: Catalogue, adapter: Any, clock: FakeClock
) -> tuple[Worker, CircuitBreaker]:
    """A worker of instance w1 delivering to hk through ``adapter`` on ``clock``, and hk's breaker,
    half-open: the next request the worker sends is the probe."""
    hk = catalogue.partner("hk")
    assert hk is not None
    w1 = worker(journal, catalogue, "w1", adapter, clock=clock, sleep=clock.sleep)
    breaker = w1.guards(hk).breaker
    for _ in range(hk.breaker.failures):
        breaker.failure()
    clock.advance(hk.breaker.cool_down)  # the next request is the probe
    return w1, breaker


async def test_a_probe_refused_before_sending_leaves_the_breaker_half_open(
    make_config: Any, tmp_path: Path
) -> None:
    """The half-open breaker's probe breaks the WSDL: rejected, never sent, the breaker still
    half-open; the next request is the probe, reaches the partner and closes it."""
    clock = FakeClock()
    journal = InMemoryJournal(clock=clock)
    await journal.open()
    catalogue = load_catalogue(make_config())  # hk's policies; its adapter is the SOAP one
    async with soap_partner(tmp_path, REPLY) as (sim, adapter):
        worker, breaker = probing(journal, catalogue, adapter, clock)
        bad = await queued(journal, "off-wsdl", {**HK_PAYLOAD, "colour": "red"}, clock())
        with capture_logs() as logs:
            assert await worker.work_once() == 1
        refused = await got(journal, bad)
        assert breaker.state is BreakerState.HALF_OPEN, breaker.view()
        good = await queued(journal, "on-wsdl", HK_PAYLOAD, clock())
        assert await worker.work_once() == 1
        delivered = await got(journal, good)
    assert refused.state is State.REJECTED and refused.last_error is not None
    assert "does not match the WSDL input" in refused.last_error["message"]
    assert "off-wsdl" not in sim.seen
    assert delivered.state is State.DELIVERED and sim.seen["on-wsdl"].count == 1
    assert breaker.closed
    rejected = [e for e in logs if e["event"] == "exchange_rejected"]
    assert [e["reason"] for e in rejected] == ["contract"]  # not the partner: it was not asked
