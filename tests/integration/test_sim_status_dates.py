"""A polled partner dates its status when the status was set, not when it is asked, and so does its
simulator: Hong Kong TD's ``updated_at`` stays the same over questions about a state that did not
move and moves on with the state. Asked over SOAP on loopback, and through the broker's poller
with the shipped mapping (whose ``at:`` reads ``updated_at``): TD still saying DOCUMENTS_REQUIRED
after the material reached it (it has not read it yet) is its old request, not a new correction
round, on SQLite, PostgreSQL and the in-memory journal."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from lxml import etree  # type: ignore[import-untyped]

from adapters import xmlsafe
from adapters.envelope import VERSIONS, open_envelope
from adapters.registry import protocols
from adapters.soap import wsdl_port
from adapters.wsdl import Operation, compile_operation
from federation.config import load_config
from federation.domain.models import State
from federation.runtime.poller import Poller
from federation.sim.soap import SoapPartnerSimulator
from replay.journal import Backend
from tests.conftest import REPO
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_soap_lifecycle import _delivered, hk_config  # noqa: F401 (fixture)

EXAMPLE = REPO / "mappings/hk/td-vehicle-licence-renewal.examples/01-kiosk-guangzhou-12-months.json"
HK = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2025, 4, 28, 9, 0, tzinfo=dt.UTC)
COVER_NOTE = {
    "note": "Cover note",
    "attachments": [{"kind": "insurance_cover_note", "title": "Cover", "file": "tbfile://c"}],
}


class Clock:
    """TD's clock, moved on by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def later(self, minutes: int) -> str:
        """Move on ``minutes``; the new time as TD writes it (seconds, Hong Kong's offset)."""
        self.now += dt.timedelta(minutes=minutes)
        return self.now.astimezone(HK).isoformat(timespec="seconds")


class TD:
    """SOAP calls to a Hong Kong TD simulator over loopback, written and read with its WSDL."""

    def __init__(self, sim: SoapPartnerSimulator, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        options = sim.options
        port = wsdl_port(options)
        header = etree.QName(options.idempotency_header)
        self.ops: dict[str, Operation] = {
            name: compile_operation(
                port, name, action=None, header=header, version=VERSIONS[options.version]
            )
            for name in ("RenewVehicleLicence", "GetRenewalStatus", "SubmitSupplementaryDocuments")
        }

    async def call(self, name: str, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Call operation ``name`` under idempotency key ``key``; its answer's values."""
        op = self.ops[name]
        header = f"<{op.header_name}>{key}</{op.header_name}>"
        body = op.envelope.render([header], op.input.write(values))
        async with self.http.post(self.sim.url, data=body, headers=dict(op.http_headers)) as r:
            text = await r.read()
            assert r.status == 200, text
        opened = open_envelope(xmlsafe.parse(text, xmlsafe.REPLY_LIMITS))
        assert op.output is not None
        return dict(op.output.read(opened.body, opened.first))

    async def status(self, ref_no: str, n: int) -> tuple[str, str]:
        """Ask GetRenewalStatus about ``ref_no``: (status, updated_at)."""
        got = await self.call("GetRenewalStatus", f"q-{n}", {"ref_no": ref_no})
        return got["status"], _iso(got["updated_at"])


def _iso(value: Any) -> str:
    """A dateTime as read (text, or a datetime) as TD writes it."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


@pytest.fixture
async def td() -> AsyncIterator[tuple[TD, Clock]]:
    """A TD simulator of the shipped catalogue on loopback, with a clock the test moves."""
    partner = load_config(REPO, protocols()).partners["hk"]
    sim = SoapPartnerSimulator(partner, seed=7)
    clock = Clock(START)
    sim.clock = clock
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield TD(sim, http), clock
    finally:
        await sim.stop()


async def _filed(td: TD, key: str) -> str:
    """File the example renewal with TD; its ref_no."""
    request = orjson.loads(EXAMPLE.read_bytes())["expected"]
    got = await td.call("RenewVehicleLicence", key, request)
    return str(got["ref_no"])


async def test_a_status_asked_again_without_a_change_keeps_its_date(
    td: tuple[TD, Clock],
) -> None:
    """PROCESSING, then APPROVED, each dated when TD's script reached it; asked again later about
    APPROVED (its last step), the same date, not the time of the question."""
    client, clock = td
    client.sim.behaviour.status_script = ["PROCESSING", "APPROVED"]
    ref = await _filed(client, "f-1")
    processing = clock.later(10)
    first = await client.status(ref, 1)
    approved = clock.later(60)
    second = await client.status(ref, 2)
    clock.later(60)
    third = await client.status(ref, 3)
    assert (first, second) == (("PROCESSING", processing), ("APPROVED", approved))
    assert third == ("APPROVED", approved)


async def test_a_request_for_material_keeps_its_date_until_the_material_is_read(
    td: tuple[TD, Clock],
) -> None:
    """DOCUMENTS_REQUIRED keeps the date TD set it while nothing comes, and while the supplement
    that came is not read; once read, the next step has a later date."""
    client, clock = td
    client.sim.ask_for_more_material()
    ref = await _filed(client, "f-2")
    asked = clock.later(10)
    first = await client.status(ref, 1)
    clock.later(30)
    waiting = await client.status(ref, 2)
    client.sim.behaviour.reads_material = False
    clock.later(30)
    supplement = {
        "ref_no": ref,
        "remarks": "Cover note",
        "supporting_document": [{"document_type": "INS_COVER", "title": "c", "file_ref": "f:c"}],
    }
    await client.call("SubmitSupplementaryDocuments", "s-1", supplement)
    clock.later(30)
    unread = await client.status(ref, 3)
    client.sim.behaviour.reads_material = True
    resumed = clock.later(30)
    after = await client.status(ref, 4)
    assert first == waiting == unread == ("DOCUMENTS_REQUIRED", asked)
    assert after == ("PROCESSING", resumed) and resumed > asked


async def test_a_polled_request_for_material_not_read_yet_is_no_new_round(
    hk_config: Path,  # noqa: F811 (the fixture imported above)
    simulators: Any,
    broker_at: Any,
    journal_of: Backend,
) -> None:
    """With the shipped mapping (at: from updated_at): TD asks for a cover note an hour before the
    applicant brings it; the material is delivered, and TD, not having read it yet, still answers
    DOCUMENTS_REQUIRED dated when it asked: its old request, no second round for the source. Once
    it reads the material, the application goes on."""
    sims = await simulators(hk_config)
    td = sims["hk"]
    td.ask_for_more_material()
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    td.clock = lambda: an_hour_ago
    async with (
        broker_at(hk_config, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await _delivered(broker, "vl-dated")
        poller = Poller(broker, every=0.0)
        changes = [await poller.poll_once()]
        td.clock = lambda: dt.datetime.now(dt.UTC)  # from now on TD's time is the real one
        td.behaviour.reads_material = False
        async with http.post(
            f"/v1/exchanges/{ex.id}/supplements",
            json={"material": COVER_NOTE},
            headers={"Idempotency-Key": "vl-dated-s1"},
        ) as r:
            assert r.status == 202, await r.text()
            child = (await r.json())["id"]
        sent = await settle(broker, child, DONE)
        changes += [await poller.poll_once(), await poller.poll_once()]
        unread = await broker.get(ex.id)
        td.behaviour.reads_material = True
        changes.append(await poller.poll_once())
        done = await broker.get(ex.id)
    assert sent.state is State.DELIVERED, sent.last_error
    assert unread is not None and done is not None
    assert changes == [1, 0, 0, 1]
    assert [s["state"] for s in unread.lifecycle()] == [
        "submitted",
        "correction_required",
        "submitted",
    ]
    assert [s["state"] for s in done.lifecycle()][-1] == "accepted"


async def test_whether_td_reads_material_is_set_over_http(td: tuple[TD, Clock]) -> None:
    """``POST /_sim/behaviour`` takes ``reads_material`` as a JSON boolean, and only as one (a
    number is refused there, as a boolean is for a number)."""
    client, _ = td
    url = f"{client.sim.url}/_sim/behaviour"
    answers = []
    for body in ({"reads_material": 1}, {"fail_status": True}, {"reads_material": False}):
        async with client.http.post(url, json=body) as r:
            answers.append(r.status)
    assert answers == [422, 422, 200]
    assert client.sim.behaviour.reads_material is False
