"""Delivery guarantees on loopback: blips, outages with the breaker, callbacks, a locked journal."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.registry import protocols
from federation.api.net import start_site
from federation.config import load_config
from federation.domain.models import State
from federation.sim.rest import PartnerSimulator
from replay.sqlite import SQLiteJournal
from tests.conftest import HK_APPLICATION, hk_submission
from tests.integration.test_delivery import DONE, free_port, settle
from tests.waiting import wait_for, wait_until

BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}


def with_breaker(root: Path, text: str) -> None:
    """Append partner-level settings to the hk partner of a test catalogue."""
    partners = root / "partners.yaml"
    partners.write_text(
        partners.read_text().replace("    concurrency: 8\n", "    concurrency: 8\n" + text),
        encoding="utf-8",
    )


async def test_a_blip_is_retried_in_process(make_config, simulators, broker_at) -> None:
    """One 503 then success: delivered on the second attempt without a journal-scheduled wait."""
    root = make_config()
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission("blip"))
        await wait_until(lambda: sims["hk"].requests >= 1, what="the first attempt", interval=0.001)
        sims["hk"].behaviour.fail_ratio = 0.0
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.DELIVERED
    assert [a.outcome.value for a in done.attempt_history() if a.outcome] == [
        "transient_error",
        "delivered",
    ]
    assert "retry_wait" not in {e.data.get("state") for e in done.events}
    assert done.next_attempt_at is None


async def test_outage_opens_and_closes_the_breaker(make_config, broker_at) -> None:
    """Partner down, then back: all delivered, the breaker opened and closed, attempts bounded."""
    root = make_config(max_attempts=30)
    with_breaker(root, "    breaker: {failures: 3, cool_down: 300ms}\n")
    port = free_port()
    partner = load_config(root, protocols()).partners["hk"]
    url = f"http://127.0.0.1:{port}"
    down = {"hk": type("Sim", (), {"url": url})()}
    async with (
        broker_at(root, down) as (broker, base),
        aiohttp.ClientSession(base_url=base) as http,
    ):
        ids = [(await broker.submit(hk_submission(f"o{i}")))[0].id for i in range(20)]

        async def hk_now() -> dict[str, Any]:
            async with http.get("/v1/partners") as r:
                return {p["id"]: p for p in (await r.json())["partners"]}["hk"]

        # the partner stays down until its breaker has opened
        during = await wait_for(
            hk_now, lambda hk: hk["breaker"]["times_opened"] >= 1, what="hk's breaker to open"
        )
        sim = PartnerSimulator(partner)
        await sim.start(port=port)
        try:
            results = [await settle(broker, xid, DONE, timeout=30) for xid in ids]
            async with http.get("/v1/partners") as r:
                after = {p["id"]: p for p in (await r.json())["partners"]}["hk"]
        finally:
            await sim.stop()
    assert all(r.state is State.DELIVERED for r in results)
    assert during["breaker"]["state"] in ("open", "half_open")  # nothing could close it
    assert after["breaker"]["state"] == "closed"
    assert after["breaker"]["times_opened"] >= 1
    assert max(r.attempts for r in results) <= 30
    # While the breaker was open, exchanges waited instead of spending attempts.
    assert sum(r.attempts for r in results) < 20 * 10
    assert set(sim.seen) == set(ids)  # each sent with its exchange id as the key


class CallbackSink:
    """A source system's callback endpoint that records what it is told (and can fail first)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_first = fail_first

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((request.headers["Idempotency-Key"], body))
        if len(self.calls) <= self.fail_first:
            return web.Response(status=503)
        return web.Response(status=204)


async def test_source_hears_how_each_application_ended(make_config, simulators, broker_at) -> None:
    """Each end state is POSTed to the source's callback; a failing callback is retried."""
    sink = CallbackSink(fail_first=1)
    app = web.Application()
    app.router.add_post("/tongban/outcomes", sink.handle)
    runner, url = await start_site(app)
    try:
        root = make_config(max_attempts=1)
        partners = root / "partners.yaml"
        partners.write_text(
            partners.read_text().replace(
                "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n",
                "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
                f"    callback: {url}/tongban/outcomes\n",
            ),
            encoding="utf-8",
        )
        sims = await simulators(root)
        async with broker_at(root, sims) as (broker, _):
            good, _ = await broker.submit(hk_submission("good"))
            bad, _ = await broker.submit(hk_submission("bad", application={"applicant": {}}))
            await settle(broker, good.id, DONE)
            await settle(broker, bad.id, DONE)
            sims["hk"].behaviour.fail_ratio = 1.0
            failing, _ = await broker.submit(hk_submission("fails"))
            await settle(broker, failing.id, DONE)
            # Every callback settled in the journal: nothing more is to be sent.
            views = await wait_for(
                lambda: asyncio.gather(*(broker.get(x.id) for x in (good, bad, failing))),
                lambda vs: all(v is not None and v.notify_state is None for v in vs),
                what="every callback to be delivered or abandoned",
                timeout=15,
            )
            good_view = views[0]
    finally:
        await runner.cleanup()
    by_key = {k: b for k, b in sink.calls}
    assert by_key[f"{good.id}:delivered"]["receipt"]["receipt_number"].startswith("HK")
    assert by_key[f"{bad.id}:rejected"]["last_error"]["kind"] == "mapping"
    assert by_key[f"{failing.id}:failed"]["last_error"]["status"] == 503
    assert len(sink.calls) == 4  # the first one failed (503) and was retried
    assert good_view is not None
    kinds = [e.kind for e in good_view.events]
    assert kinds.count("callback_failed") + kinds.count("callback_delivered") >= 1
    assert good_view.notify_state is None


async def test_locked_journal_answers_503_and_writes_nothing(
    make_config, broker_at, tmp_path: Path
) -> None:
    """Another process holds the journal's write lock: intake says 503; after release it accepts."""
    root = make_config()
    path = tmp_path / "locked.sqlite"
    journal = SQLiteJournal(path, busy_timeout=0.2)
    async with broker_at(root, journal=path) as _:
        pass  # create the file and schema
    async with broker_at(root, journal=path, journal_obj=journal) as (broker, url):
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k"}) as r:
                assert r.status == 503
                problem = await r.json()
            locker.execute("ROLLBACK")
            locker.close()
            async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k"}) as r:
                assert r.status == 202
        counts = await broker.journal.counts()
    assert problem["type"].endswith("journal-unavailable")
    assert sum(counts.values()) == 1
