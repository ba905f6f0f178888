"""Every step reaches the partner that filed, in order, while its notice API is failing.

Hong Kong's notice API here is a small endpoint on loopback whose own log lists each request as it
arrived (idempotency key, notice type, the answer it gave). It holds the first request while the
local system reports every further step, then fails it and the next one: the steps pile up
behind the notice being retried, and each must still arrive, in order, once each (a retry may
arrive again, with the same key).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from federation.domain.models import Exchange
from federation.runtime.broker import Broker
from tests.integration.notice_helpers import notice_answer, notice_endpoint
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import MAPPING
from tests.integration.test_notices import decide, file_one, notice_config
from tests.waiting import wait_for

REPORT = """\
report:
  reference_no: {from: application.reference, required: true}
  notice_type:
    switch: step
    cases:
      submitted: RECEIVED
      accepted: ACCEPTED
      correction_required: SUPPLEMENT_REQUIRED
      review: UNDER_REVIEW
      approved: APPROVED
      completed: CONCLUDED
    required: true
  remarks: note
  notice_time: {from: at, required: true}
"""

# What the local system reports after the application reached it: two correction rounds (补正),
# each with its own reasons, then the decision and 办结.
STEPS = [
    {"lifecycle": "correction_required", "note": "请补充普通话水平测试等级证书"},
    {"lifecycle": "submitted"},
    {"lifecycle": "correction_required", "note": "请补充学历认证报告"},
    {"lifecycle": "submitted"},
    {"lifecycle": "accepted"},
    {"lifecycle": "approved"},
    {"lifecycle": "completed"},
]
# The notices HK must hear, by idempotency key suffix, with the type in its words.
HEARD = [
    ("delivered", "RECEIVED"),
    ("lifecycle:correction_required", "SUPPLEMENT_REQUIRED"),
    ("lifecycle:submitted", "RECEIVED"),
    ("lifecycle:correction_required:2", "SUPPLEMENT_REQUIRED"),
    ("lifecycle:submitted:2", "RECEIVED"),
    ("lifecycle:accepted", "ACCEPTED"),
    ("lifecycle:approved", "APPROVED"),
    ("lifecycle:completed", "CONCLUDED"),
]


@dataclass
class NoticeApi:
    """HK's notice API: holds the first request until released, fails the first two."""

    failures: int = 2
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    log: list[tuple[str, str, dict[str, Any], int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        n = len(self.log) + 1
        if n == 1:
            self.arrived.set()
            await self.release.wait()
        status = 503 if n <= self.failures else 200
        self.log.append((key, str(body.get("notice_type")), body, status))
        return notice_answer(status)


@pytest.fixture
async def notice_api() -> AsyncIterator[tuple[NoticeApi, str]]:
    """The endpoint on loopback and its base URL (hk's inbound.callback)."""
    api = NoticeApi()
    async with notice_endpoint(api.handle) as url:
        yield api, url
        api.release.set()


async def settled(broker: Broker, xid: str, mark: str) -> Exchange:
    """The exchange once the notice for ``mark`` has an outcome."""
    found: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: (
            ex is not None
            and any(e.kind == "notice_delivered" and e.data.get("state") == mark for e in ex.events)
        ),
        what=f"the {mark} notice of {xid} to be delivered",
        timeout=60,
    )
    return found


async def test_every_step_reaches_the_partner_in_order_while_it_is_failing(
    make_config, simulators, broker_at, journal_of: Any, notice_api: tuple[NoticeApi, str]
) -> None:
    """Steps reported while the first notice is failing are all sent after it, in order, once
    each; both correction rounds are heard, each with its own key and its own reasons."""
    api, base = notice_api
    root = notice_config(make_config, max_attempts=4, read="30s", total="60s")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING + REPORT, encoding="utf-8")
    sims = {**await simulators(root), "hk:callback": SimpleNamespace(url=base)}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0401")
        await settle(broker, xid, DONE)
        await asyncio.wait_for(api.arrived.wait(), 30)  # the first notice is in flight
        for step in STEPS:
            await decide(url, xid, step)
        api.release.set()
        view = await settled(broker, xid, "lifecycle:completed")
    expected = [f"{xid}:{mark}" for mark, _ in HEARD]
    keys = [key for key, *_ in api.log]
    assert set(keys) == set(expected)
    assert [k for n, k in enumerate(keys) if k not in keys[:n]] == expected  # first arrivals
    said_yes = [(key, kind) for key, kind, _, status in api.log if status == 200]
    assert said_yes == [(f"{xid}:{mark}", kind) for mark, kind in HEARD]  # once each, in order
    assert {status for key, *_, status in api.log if key != expected[0]} == {200}
    bodies = {key: body for key, _, body, status in api.log if status == 200}
    assert bodies[f"{xid}:lifecycle:correction_required"]["remarks"] == STEPS[0]["note"]
    assert bodies[f"{xid}:lifecycle:correction_required:2"]["remarks"] == STEPS[2]["note"]
    delivered = [e.data["state"] for e in view.events if e.kind == "notice_delivered"]
    assert delivered == [mark for mark, _ in HEARD]
    assert view.notify_state is None


async def test_a_notice_on_its_way_when_a_step_comes_is_journalled_and_sent_once(
    make_config, simulators, broker_at, journal_of: Any, notice_api: tuple[NoticeApi, str]
) -> None:
    """The local system reports a step while the first notice is on its way (the step's write
    takes the notifier's lease): the notice's try and its outcome are journalled all the same,
    and the partner hears it once, then the step."""
    api, base = notice_api
    api.failures = 0
    root = notice_config(make_config, max_attempts=4, read="30s", total="60s")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING + REPORT, encoding="utf-8")
    sims = {**await simulators(root), "hk:callback": SimpleNamespace(url=base)}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0402")
        await settle(broker, xid, DONE)
        await asyncio.wait_for(api.arrived.wait(), 30)  # the first notice is in flight
        await decide(url, xid, {"lifecycle": "accepted"})
        api.release.set()
        view = await settled(broker, xid, "lifecycle:accepted")
    assert [key for key, *_ in api.log] == [f"{xid}:delivered", f"{xid}:lifecycle:accepted"]
    tries = [(e.kind, e.data["state"]) for e in view.events if e.kind.startswith("notice_")]
    assert tries == [
        ("notice_attempt", "delivered"),
        ("notice_delivered", "delivered"),
        ("notice_attempt", "lifecycle:accepted"),
        ("notice_delivered", "lifecycle:accepted"),
    ]
