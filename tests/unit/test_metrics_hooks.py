"""What the delivery path records for /metrics: a MockAdapter, the in-memory journal, a fake clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from federation.testing import FakeClock, InMemoryJournal, MockAdapter, reply, sequence, transient
from tests.conftest import hk_submission
from tests.waiting import wait_for

ACCEPTED = reply({"ref_no": "HK-1", "status": "received"})
Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


@contextlib.asynccontextmanager
async def running(root: Path, partner: MockAdapter, clock: FakeClock) -> AsyncIterator[Broker]:
    """A broker on the catalogue at ``root`` whose hk partner is ``partner``, on ``clock``."""
    broker = Broker(
        root=root,
        journal=InMemoryJournal(clock=clock),
        adapters={"hk": partner},
        clock=clock,
        sleep=clock.sleep,
        poll_interval=3600,
    )
    broker.metrics.cache_seconds = 0.0  # every scrape reads the journal (the cache: its own test)
    async with broker.open():
        yield broker


async def scrape(broker: Broker) -> Samples:
    out: Samples = {}
    text = (await broker.metrics.exposition(broker)).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


async def settled(broker: Broker, xid: str, states: set[State]) -> Exchange:
    return await wait_for(
        lambda: broker.get(xid), lambda ex: ex is not None and ex.state in states, what=xid
    )


def hk(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({("partner", "hk"), *labels.items()})


async def test_a_blip_then_a_delivery_is_two_attempts_and_one_delivery(
    make_config: Callable[..., Path],
) -> None:
    """A 503 then an acceptance: one transient and one delivered attempt, two partner calls, one
    submit-to-delivered observation, the exchange counted delivered and nothing left waiting."""
    clock = FakeClock()
    async with running(make_config(), MockAdapter(sequence(transient(503), ACCEPTED)), clock) as b:
        ex, _ = await b.submit(hk_submission("blip"))
        await settled(b, ex.id, {State.DELIVERED})
        found = await scrape(b)
    assert found["tongban_attempts_total"] == {
        hk(outcome="transient_error"): 1.0,
        hk(outcome="delivered"): 1.0,
    }
    assert found["tongban_partner_call_seconds_count"] == {hk(): 2.0}
    assert found["tongban_submit_to_delivered_seconds_count"] == {hk(): 1.0}
    assert found["tongban_exchanges"] == {hk(state="delivered", service="TD-VL-RENEW"): 1.0}
    assert "tongban_oldest_waiting_seconds" not in found


async def test_a_partner_that_keeps_failing_shows_waiting_age_and_an_open_breaker(
    make_config: Callable[..., Path],
) -> None:
    """Always 503: the first exchange waits in retry_wait and its age grows with the clock; the
    second exchange's first failure is the fifth in a row and opens the breaker (state 2)."""
    clock = FakeClock()
    async with running(
        make_config(max_attempts=8), MockAdapter(sequence(transient(503))), clock
    ) as b:
        first, _ = await b.submit(hk_submission("one"))
        await settled(b, first.id, {State.RETRY_WAIT})
        clock.advance(120)
        found = await scrape(b)
        age = found["tongban_oldest_waiting_seconds"][hk()]
        assert age == pytest.approx(clock() - first.created_at) and age > 120
        assert found["tongban_breaker_state"][hk()] == 0.0
        await b.submit(hk_submission("two"))
        await wait_for(
            lambda: scrape(b),
            lambda s: s["tongban_breaker_state"][hk()] == 2.0,
            what="the breaker to open",
        )
        found = await scrape(b)
    assert found["tongban_attempts_total"][hk(outcome="transient_error")] >= 5.0
    waiting = {"received", "queued", "delivering", "retry_wait"}
    counted = {dict(k)["state"]: v for k, v in found["tongban_exchanges"].items()}
    assert set(counted) <= waiting and sum(counted.values()) == 2.0
