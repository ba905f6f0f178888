"""An adapter that fails with an error no adapter is meant to raise (a bug in a custom adapter or a
library inside one): the attempt is journalled with its outcome unknown and the error's type, the
exchange ends unconfirmed for support staff to replay, the partner's breaker hears nothing, and
the worker goes on serving; on SQLite, PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from adapters.base import OutboundRequest, Reply
from federation.api.net import start_site
from federation.domain.errors import Transcript
from federation.domain.models import Exchange, Outcome, State
from federation.logging import capture_logs
from federation.runtime.breaker import BreakerState
from federation.runtime.catalogue import load_catalogue
from federation.runtime.metrics import Metrics
from federation.testing import FakeClock, reply
from replay.journal import Backend
from tests.conftest import HK_APPLICATION
from tests.integration.test_background_loops import due
from tests.integration.test_breaker_refusal import probing
from tests.integration.test_delivery_lease_lost import worker

NAME = HK_APPLICATION["applicant"]["name"]
PERSONAL = (NAME, "CHAN, Tai Man", "K802133(3)")


class Careless:
    """A custom adapter with a bug: it reads the owner's English name as a number, so its send
    raises a ValueError whose message quotes the applicant (but for the exchanges ``spared``,
    which it delivers)."""

    def __init__(self, spared: set[str]) -> None:
        self.spared = spared
        self.sent: list[OutboundRequest] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def send(self, request: OutboundRequest) -> Reply:
        self.sent.append(request)
        if request.exchange_id in self.spared:
            return reply({"ref_no": "HK-7", "status": "ok"})
        owner = request.payload["owner"]
        return reply({"ref_no": int(owner["name_en"])})


class AsciiReader:
    """A custom adapter that posts the request to its partner, then reads the reply as ASCII: a
    reply that names the applicant in Chinese raises a UnicodeDecodeError after the partner has
    taken the request."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self) -> None:
        """Nothing to open: a session per send."""

    async def close(self) -> None:
        """Nothing to close."""

    async def send(self, request: OutboundRequest) -> Reply:
        headers = {"Idempotency-Key": request.idempotency_key}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, json=dict(request.payload), headers=headers) as answer,
        ):
            raw = await answer.read()
        body = orjson.loads(raw.decode("ascii"))
        return Reply(status=answer.status, body=body, transcript=Transcript(request={}))


@pytest.fixture
async def partner() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A partner on loopback that takes every application and answers with the holder's name in
    Chinese; its URL and what it took."""
    took: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        took.append(await request.json())
        body = {"ref_no": "HK-1", "status": "ok", "holder": NAME}
        return web.json_response(body, dumps=lambda b: orjson.dumps(b).decode())

    app = web.Application()
    app.router.add_post("/renewals", handle)
    runner, url = await start_site(app)
    try:
        yield f"{url}/renewals", took
    finally:
        await runner.cleanup()


def unconfirmed_by(done: Exchange | None, error: str) -> None:
    """``done`` ended unconfirmed after one attempt of unknown outcome that failed with an
    ``error`` of ours, named by its type alone."""
    assert done is not None and done.state is State.UNCONFIRMED and done.attempts == 1
    assert done.last_error is not None and done.last_error["kind"] == "unconfirmed"
    assert done.last_error["exception"] == error
    assert not any(p in repr(done.last_error) for p in PERSONAL)
    [attempt] = done.attempt_history()
    assert attempt.outcome is Outcome.UNKNOWN_OUTCOME and attempt.error == done.last_error
    assert attempt.finished_at is not None and attempt.duration_ms is not None


async def test_an_adapter_error_of_ours_ends_the_exchange_unconfirmed_and_the_worker_serves_on(
    make_config: Any, journal: Backend
) -> None:
    """Six exchanges whose custom adapter raises a ValueError quoting the applicant, one whose
    adapter answers: each of the six ends unconfirmed after one attempt (journalled, the error's
    type only), the seventh is delivered by the same worker, the breaker (5 failures) stays
    closed, nothing is claimed again later, and no log line or journal error names the
    applicant."""
    catalogue = load_catalogue(make_config())
    crashing = [await due(journal, f"unexpected-{n}") for n in range(6)]
    fine = await due(journal, "unexpected-fine")
    careless = Careless(spared={fine.id})
    metrics = Metrics("w1")
    w1 = worker(journal, catalogue, "w1", careless, metrics=metrics)
    with capture_logs() as logs:
        assert await w1.work_once() == 7
    for ex in crashing:
        unconfirmed_by(await journal.get(ex.id), "ValueError")
    delivered = await journal.get(fine.id)
    assert delivered is not None and delivered.state is State.DELIVERED
    assert len(careless.sent) == 7
    breaker = w1.partner_status("hk")["breaker"]
    assert breaker["state"] == "closed" and breaker["consecutive_failures"] == 0
    later = time.time() + 1000
    assert await journal.claim(owner="w2", now=later, lease_until=later + 5, limit=10) == []
    crashes = [e for e in logs if e["event"] == "adapter_crashed"]
    assert len(crashes) == 6 and {e["error"] for e in crashes} == {"ValueError"}
    assert all("ValueError" in e["exception"] for e in crashes)
    assert not [e for e in logs if e["event"] == "worker_crashed_on_exchange"]
    assert not any(p in repr(logs) for p in PERSONAL)
    counted = metrics.registry.get_sample_value(
        "tongban_attempts_total", {"partner": "hk", "outcome": "adapter_crashed"}
    )
    assert counted == 6
    assert (await journal.verify())[1] is None


async def test_an_adapter_error_after_the_partner_took_the_request_is_not_sent_again(
    make_config: Any, journal: Backend, partner: tuple[str, list[dict[str, Any]]]
) -> None:
    """A custom adapter posts to a partner on loopback, which takes the application, then fails
    to read the reply (UnicodeDecodeError): the exchange ends unconfirmed, never rejected (the
    partner said no such thing), the partner has it once, and it is never sent again."""
    url, took = partner
    catalogue = load_catalogue(make_config())
    ex = await due(journal, "unexpected-after")
    with capture_logs() as logs:
        assert await worker(journal, catalogue, "w1", AsciiReader(url)).work_once() == 1
    unconfirmed_by(await journal.get(ex.id), "UnicodeDecodeError")
    assert len(took) == 1 and took[0]["owner"]["name_en"] == "CHAN, Tai Man"
    later = time.time() + 1000
    assert await journal.claim(owner="w2", now=later, lease_until=later + 5, limit=10) == []
    assert len(took) == 1
    [crash] = [e for e in logs if e["event"] == "adapter_crashed"]
    assert crash["error"] == "UnicodeDecodeError"
    assert not any(p in repr(logs) for p in PERSONAL)


async def test_a_half_open_probe_that_crashes_leaves_the_breaker_half_open(
    make_config: Any, journal: Backend
) -> None:
    """The half-open breaker's probe meets the adapter's bug: the exchange ends unconfirmed, the
    breaker stays half-open with the probe's place free (the partner said nothing), and the next
    exchange is the probe that reaches the partner and closes it."""
    clock = FakeClock(time.time())
    catalogue = load_catalogue(make_config())
    bad = await due(journal, "unexpected-probe")
    careless = Careless(spared=set())
    w1, breaker = probing(journal, catalogue, careless, clock)
    assert await w1.work_once() == 1
    unconfirmed_by(await journal.get(bad.id), "ValueError")
    assert breaker.state is BreakerState.HALF_OPEN, breaker.view()
    good = await due(journal, "unexpected-after-probe")
    careless.spared.add(good.id)
    assert await w1.work_once() == 1
    delivered = await journal.get(good.id)
    assert delivered is not None and delivered.state is State.DELIVERED
    assert breaker.closed


async def test_an_unforeseen_error_outside_the_adapter_is_logged_by_the_worker_by_its_type(
    make_config: Any, journal: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody foresaw outside the adapter (the journal's write raising one quoting the
    applicant) is still caught by the worker: logged as worker_crashed_on_exchange by its type
    and a traceback without messages, never the applicant's name."""
    catalogue = load_catalogue(make_config())

    async def record(*_: Any, **__: Any) -> None:
        raise RuntimeError(f"row of {NAME}")

    monkeypatch.setattr(journal, "record", record)
    await due(journal, "unexpected-journal")
    with capture_logs() as logs:
        assert await worker(journal, catalogue, "w1", Careless(spared=set())).work_once() == 1
    [crashed] = [e for e in logs if e["event"] == "worker_crashed_on_exchange"]
    assert crashed["error"] == "RuntimeError" and "RuntimeError" in crashed["exception"]
    assert not any(p in repr(logs) for p in PERSONAL)
