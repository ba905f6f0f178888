"""Delivery to REST partners on loopback: receipts, retries, refusals, timeouts, restarts, limits."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from aiohttp import web

from federation.api.net import start_site
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State
from federation.runtime.broker import Broker
from replay.sqlite import SQLiteJournal
from tests.conftest import hk_submission
from tests.waiting import wait_for


async def settle(broker: Broker, xid: str, states: set[State], timeout: float = 10.0):
    """Wait until the exchange reaches one of ``states`` and return it; fail at ``timeout``."""
    return await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state in states,
        what=f"exchange {xid} to be {' or '.join(sorted(s.value for s in states))}",
        timeout=timeout,
    )


DONE = {State.DELIVERED, State.FAILED, State.REJECTED}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_transient_failures_are_retried_with_the_same_key(
    make_config, simulators, broker_at
) -> None:
    """503s put the exchange in retry_wait; it is delivered later, every attempt with the same key."""
    root = make_config()
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission("retry-key"))
        waiting = await settle(broker, ex.id, {State.RETRY_WAIT})
        assert waiting.state is State.RETRY_WAIT
        assert waiting.last_error is not None and waiting.last_error["status"] == 503
        assert waiting.next_attempt_at is not None
        sims["hk"].behaviour.fail_ratio = 0.0
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.DELIVERED
    attempts = done.attempt_history()
    assert [a.outcome.value for a in attempts[:-1]] == ["transient_error"] * (len(attempts) - 1)
    assert attempts[-1].outcome is not None and attempts[-1].outcome.value == "delivered"
    assert {a.request["headers"]["Idempotency-Key"] for a in attempts} == {"retry-key"}
    assert sims["hk"].seen["retry-key"].count == 1


async def test_retry_after_is_honoured(make_config, simulators, broker_at) -> None:
    """A 429 with Retry-After: 30 schedules the next attempt no sooner than 30 s later."""
    root = make_config()
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    sims["hk"].behaviour.fail_status = 429
    sims["hk"].behaviour.retry_after = 30
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission())
        waiting = await settle(broker, ex.id, {State.RETRY_WAIT})
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at - waiting.updated_at >= 29.9


async def test_partner_refusal_is_permanent(make_config, simulators, broker_at) -> None:
    """A 4xx from the partner rejects the exchange at once, with the status and the partner's words."""
    root = make_config()
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    sims["hk"].behaviour.fail_status = 422
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission())
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.REJECTED
    assert done.attempts == 1
    assert done.last_error is not None
    assert done.last_error["status"] == 422
    assert "simulated failure" in done.last_error["message"]


async def test_unreachable_partner_fails_after_the_policy(make_config, broker_at) -> None:
    """Connection refused on every attempt: failed after max_attempts, with the last error kept."""
    root = make_config(max_attempts=3)
    port = free_port()
    closed = {"hk": type("Sim", (), {"url": f"http://127.0.0.1:{port}"})()}
    async with broker_at(root, closed) as (broker, _):
        ex, _ = await broker.submit(hk_submission())
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.FAILED
    assert done.attempts == 3
    assert done.last_error is not None and "cannot connect" in done.last_error["message"]
    assert [e.kind for e in done.events][-1] == "retries_exhausted"


async def test_timeout_after_sending_is_an_unknown_outcome(
    make_config, simulators, broker_at
) -> None:
    """A partner slower than the read timeout: unknown_outcome, retried with the same key."""
    root = make_config(read="200ms", total="1s")
    sims = await simulators(root)
    sims["hk"].behaviour.delay = 0.5
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission("slow-key"))
        waiting = await settle(broker, ex.id, {State.RETRY_WAIT})
        sims["hk"].behaviour.delay = 0.0
        done = await settle(broker, ex.id, DONE)
    first = waiting.attempt_history()[0]
    assert first.outcome is not None and first.outcome.value == "unknown_outcome"
    assert done.state is State.DELIVERED
    # The slow first request did reach the partner: the retry carried the same key.
    assert sims["hk"].seen["slow-key"].count >= 2


async def test_mapping_failure_rejects_without_calling_the_partner(
    make_config, simulators, broker_at
) -> None:
    """Missing required fields: rejected with every failing path; the partner never hears of it."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission(application={"applicant": {"name": "陳大文"}}))
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.REJECTED
    assert done.last_error is not None
    paths = {p["path"] for p in done.last_error["problems"]}
    assert paths == {"vehicle.registration_mark", "applicant.name_en", "applicant.hkid"}
    assert all(
        p["file"] == "mappings/hk-vl.yaml" and p["line"] for p in done.last_error["problems"]
    )
    assert sims["hk"].requests == 0


async def test_unreadable_receipt_still_counts_as_delivered(make_config, broker_at) -> None:
    """A 200 whose body is not JSON: delivered (the partner has it) with receipt_invalid recorded."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html>OK</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner, url = await start_site(app)
    try:
        root = make_config()
        partner = {"hk": type("Sim", (), {"url": url})()}
        async with broker_at(root, partner) as (broker, _):
            ex, _ = await broker.submit(hk_submission())
            done = await settle(broker, ex.id, DONE)
    finally:
        await runner.cleanup()
    assert done.state is State.DELIVERED
    assert "receipt_invalid" in [e.kind for e in done.events]
    assert done.last_error is not None and "not JSON" in done.last_error["message"]


async def test_concurrency_per_partner_is_bounded(make_config, simulators, broker_at) -> None:
    """With concurrency 8, a slow partner never sees more than 8 requests at once."""
    root = make_config()
    sims = await simulators(root)
    sims["hk"].behaviour.delay = 0.05
    async with broker_at(root, sims) as (broker, _):
        ids = [(await broker.submit(hk_submission(f"k{i}")))[0].id for i in range(40)]
        for xid in ids:
            assert (await settle(broker, xid, DONE)).state is State.DELIVERED
    assert sims["hk"].max_in_flight == 8
    assert len(sims["hk"].seen) == 40


async def test_work_resumes_after_a_restart(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """Accepted while the partner was down; after a broker restart the exchange is delivered."""
    root = make_config(max_attempts=50)
    journal = tmp_path / "restart.sqlite"
    port = free_port()
    down = {"hk": type("Sim", (), {"url": f"http://127.0.0.1:{port}"})()}
    async with broker_at(root, down, journal=journal) as (broker, _):
        ex, _ = await broker.submit(hk_submission("survivor"))
        await settle(broker, ex.id, {State.RETRY_WAIT})
    sims = await simulators(root)
    async with broker_at(root, sims, journal=journal) as (broker, _):
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.DELIVERED
    assert "survivor" in sims["hk"].seen


async def test_expired_lease_of_a_dead_worker_is_reclaimed(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """An exchange leased to a worker that vanished is taken over once the lease expires."""
    root = make_config()
    journal_path = tmp_path / "lease.sqlite"
    journal = SQLiteJournal(journal_path)
    await journal.open()
    now = time.time()
    new = NewExchange(
        id=new_id(),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key="orphan",
        request_hash="sha256:x",
        application=hk_submission().application,
        received_at=now,
    )
    await journal.create(new, owner="dead-worker", lease_until=now + 0.5)
    await journal.close()
    sims = await simulators(root)
    async with broker_at(root, sims, journal=journal_path) as (broker, _):
        done = await settle(broker, new.id, DONE)
    assert done.state is State.DELIVERED
    reclaimed = [e for e in done.events if e.kind == "lease_reclaimed"]
    assert reclaimed and reclaimed[0].data["from"] == "dead-worker"
    assert reclaimed[0].at >= now + 0.5
