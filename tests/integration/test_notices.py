"""Notices in the partner's dialect: Hong Kong hears our word on what it filed as its own REST JSON.

The partner's notice API is the REST partner simulator (its own log: what it received under each
idempotency key), reached under hk's ``inbound.callback``; the local system is a simulator too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from adapters.registry import protocols
from federation.api.i18n import translations
from federation.config import load_config
from federation.domain.errors import ConfigError, FederationError
from federation.domain.models import Direction, Event, Exchange, State, StateChange
from federation.runtime.broker import Broker
from federation.runtime.callbacks import NotResent
from federation.runtime.notices import resend_notice
from federation.sim.rest import PartnerSimulator
from replay.journal import Backend
from tests.integration.notice_helpers import hk_filing
from tests.integration.test_delivery import DONE, free_port, settle
from tests.integration.test_inbound import APPLICATION, KEY, LOCAL, LOCAL_KEY, MAPPING, auth
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent.parent

REPLY = (
    '{code: result_code, message: result_message, success: {code: ["0000"]}, permanent: ["/^E/"]}'
)
INBOUND = f"""\
    inbound:
      keys_sha256: ["{hashlib.sha256(KEY.encode()).hexdigest()}"]
      callback: https://gateway.example.gov.hk/tongban/notices
      services:
        GD-GA-RP-HK:
          mapping: mappings/inbound-rp.yaml
          path: /applications/residence-permits
          report:
            path: /residence-permits
            reply: {REPLY}
"""
REPORT = """\
report:
  reference_no: {from: application.reference, required: true}
  notice_type:
    switch: step
    cases: {submitted: RECEIVED, accepted: ACCEPTED, correction_required: SUPPLEMENT_REQUIRED}
    required: true
  gd_case_no: case_number
  remarks: note
  notice_time:
    from: at
    required: true
    transform: {datetime: {from: iso, to: "DD/MM/YYYY HH:mm", to_zone: Asia/Hong_Kong}}
"""


def notice_config(make_config: Any, **options: Any) -> Path:
    """The two-partner test catalogue with a local system and hk filing GD-GA-RP-HK, hearing
    back by notices (report:) in its own JSON."""
    root: Path = make_config(**options)
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("partners:\n", LOCAL + "partners:\n", 1)
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + INBOUND, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING + REPORT, encoding="utf-8")
    return root


async def file_one(url: str, key: str) -> str:
    """hk files the test application under ``key``; its exchange id."""
    body = {"service": "GD-GA-RP-HK", "application": APPLICATION}
    async with (
        aiohttp.ClientSession(base_url=url) as http,
        http.post(
            "/v1/partners/hk/applications", json=body, headers={**auth(), "Idempotency-Key": key}
        ) as r,
    ):
        assert r.status == 202
        xid: str = (await r.json())["id"]
    return xid


async def decide(url: str, xid: str, decision: dict[str, str]) -> None:
    """The local system's decision on exchange ``xid``."""
    async with (
        aiohttp.ClientSession(base_url=url) as http,
        http.post(f"/v1/exchanges/{xid}/lifecycle", json=decision, headers=auth(LOCAL_KEY)) as r,
    ):
        assert r.status == 200, await r.text()


async def notice_events(broker: Broker, xid: str, last: str) -> Exchange:
    """The exchange once its events include a ``last`` event."""
    found: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and any(e.kind == last for e in ex.events),
        what=f"a {last} event of {xid}",
    )
    return found


def notices_at(sim: PartnerSimulator) -> SimpleNamespace:
    """hk's notice API base URL (inbound.callback) on the simulator."""
    return SimpleNamespace(url=f"{sim.url}/tongban/notices")


@pytest.fixture
async def notice_sim(make_config: Any) -> AsyncIterator[PartnerSimulator]:
    """hk's notice API: a REST partner simulator in Hong Kong's dialect."""
    partner = load_config(notice_config(make_config), protocols()).partners["hk"]
    sim = PartnerSimulator(partner, seed=3)
    await sim.start()
    yield sim
    await sim.stop()


async def test_hong_kong_hears_each_step_in_its_own_json(
    make_config, simulators, broker_at, notice_sim: PartnerSimulator
) -> None:
    """Delivered, then accepted with a case number: two notices in HK's words (its reference,
    notice types, Hong Kong time) reach its notice API, each journalled as delivered."""
    root = notice_config(make_config)
    sims = {**await simulators(root), "hk:callback": notices_at(notice_sim)}
    async with broker_at(root, sims) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0101")
        await settle(broker, xid, DONE)
        await notice_events(broker, xid, "notice_delivered")
        await decide(url, xid, {"lifecycle": "accepted", "case_number": "44000020261129000042"})
        await wait_for(
            lambda: broker.get(xid),
            lambda ex: (
                ex is not None and [e.kind for e in ex.events].count("notice_delivered") == 2
            ),
            what="the second notice to be delivered",
        )
        view = await broker.get(xid)
    assert view is not None and view.notify_state is None
    received = notice_sim.seen[f"{xid}:delivered"]
    accepted = notice_sim.seen[f"{xid}:lifecycle:accepted"]
    assert received.paths == ["/tongban/notices/residence-permits"]
    assert received.first_body["notice_type"] == "RECEIVED"
    assert received.first_body["reference_no"] == "HKGOV-2026-000123"
    assert accepted.first_body["notice_type"] == "ACCEPTED"
    assert accepted.first_body["gd_case_no"] == "44000020261129000042"
    assert "exchange_id" not in accepted.first_body  # HK's words, not tongban's callback JSON
    assert len(accepted.first_body["notice_time"]) == len("29/11/2026 10:00")
    attempts = [e for e in view.events if e.kind == "notice_attempt"]
    assert [a.data["outcome"] for a in attempts] == ["delivered", "delivered"]
    assert attempts[1].data["step"] == "accepted"
    assert attempts[1].data["request"]["url"].endswith("/tongban/notices/residence-permits")


async def test_a_refusal_answered_with_http_200_is_not_delivered(
    make_config, simulators, broker_at, notice_sim: PartnerSimulator
) -> None:
    """HK's notice API answers 200 with result_code E2001: the notice is rejected (with HK's code
    and message), never recorded as delivered, and not sent again."""
    root = notice_config(make_config)
    sims = {**await simulators(root), "hk:callback": notices_at(notice_sim)}
    notice_sim.behaviour.notice_refusal = "E2001"
    async with broker_at(root, sims) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0102")
        view = await notice_events(broker, xid, "notice_rejected")
    kinds = [e.kind for e in view.events]
    assert "notice_delivered" not in kinds
    [attempt] = [e for e in view.events if e.kind == "notice_attempt"]
    assert attempt.data["outcome"] == "permanent_error"
    assert attempt.data["error"]["partner_code"] == "E2001"
    assert attempt.data["response"]["status"] == 200
    assert notice_sim.seen[f"{xid}:delivered"].count == 1
    assert view.state is State.DELIVERED and view.notify_state is None


async def test_a_partner_that_is_down_is_retried_then_the_notice_is_resent(
    make_config, simulators, broker_at, journal_of: Any
) -> None:
    """Nobody listens at hk's notice API: the notice is tried as its retry policy says (3
    attempts), abandoned in the journal; once HK is back, support staff resend it, with the
    same idempotency key, and it is delivered."""
    root = notice_config(make_config, max_attempts=3)
    port = free_port()
    down = SimpleNamespace(url=f"http://127.0.0.1:{port}/tongban/notices")  # nobody there yet
    sims = {**await simulators(root), "hk:callback": down}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0103")
        abandoned = await notice_events(broker, xid, "notice_abandoned")
        partner = load_config(root, protocols()).partners["hk"]
        back = PartnerSimulator(partner, seed=5)
        await back.start(port=port)
        try:
            state = await resend_notice(
                broker.journal, xid, reason="DPO gateway back", by="support-1", clock=time.time
            )
            after = await wait_for(
                lambda: broker.get(xid),
                lambda ex: ex is not None and any(e.kind == "notice_delivered" for e in ex.events),
                what="the resent notice to be delivered",
            )
        finally:
            await back.stop()
    attempts = [e for e in abandoned.events if e.kind == "notice_attempt"]
    assert [a.data["outcome"] for a in attempts] == ["transient_error"] * 3
    assert [a.data["attempt"] for a in attempts] == [1, 2, 3]
    assert abandoned.notify_state is None and abandoned.state is State.DELIVERED
    assert state == "delivered"
    replayed = [e for e in after.events if e.kind == "notice_replayed"]
    assert replayed[0].data["by"] == "support-1"
    assert back.seen[f"{xid}:delivered"].first_body["notice_type"] == "RECEIVED"


async def test_resend_refuses_what_it_cannot_resend(make_config, broker_at) -> None:
    """No reason, no such exchange, nothing sent yet: each refused with why."""
    root = notice_config(make_config)
    async with broker_at(root) as (broker, _url):
        for xid, reason, words in (
            ("01JD0000000000000000000000", "x", "no application a partner filed"),
            ("01JD0000000000000000000000", " ", "needs a reason"),
        ):
            with pytest.raises(FederationError, match=words):
                await resend_notice(broker.journal, xid, reason=reason, by="s", clock=time.time)


@pytest.mark.parametrize(
    ("report", "words"),
    [
        ("{path: /x, operation: Y}", "give either path"),
        ("{operation: NotificarDecisao}", "needs a SOAP partner"),
        ("{path: x}", "a URL path"),
    ],
)
def test_report_settings_are_checked_at_their_line(make_config, report: str, words: str) -> None:
    """A report: that cannot be sent is a configuration error at its line in partners.yaml."""
    root = notice_config(make_config)
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    old = f"          report:\n            path: /residence-permits\n            reply: {REPLY}\n"
    text = text.replace(old, f"          report: {report}\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(root, protocols())
    [problem] = err.value.problems
    line = text.splitlines().index(f"          report: {report}") + 1
    assert words in problem.message
    assert problem.line == line
    assert problem.path.startswith("partners[0].inbound.services.GD-GA-RP-HK.report")


def test_a_rest_notice_needs_the_partners_callback(make_config) -> None:
    """A REST notice path with no inbound.callback to put it under: an error at the path."""
    root = notice_config(make_config)
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("      callback: https://gateway.example.gov.hk/tongban/notices\n", "")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(root, protocols())
    [problem] = err.value.problems
    assert "inbound.callback" in problem.message
    assert problem.line == text.splitlines().index("            path: /residence-permits") + 1


def test_a_soap_partners_rest_notice_route_drops_its_soap_settings() -> None:
    """Hong Kong's TD speaks SOAP; DPO's notice API is REST under hk's inbound.callback: the route
    is plain REST there, with none of TD's SOAP settings or credentials."""
    from federation.runtime.catalogue import load_catalogue
    from federation.runtime.notices import channel_partner

    hk = load_catalogue(REPO).config.partners["hk"]
    assert hk.protocol == "soap" and hk.inbound is not None
    route = channel_partner(hk, hk.inbound.services["GD-GA-RP-HK"])
    assert (route.protocol, route.endpoint) == ("rest", hk.inbound.callback)
    assert set(route.options) == {"rest"} and route.auth is None
    assert route.services["GD-GA-RP-HK"].options["rest"].path == "/residence-permits"


@pytest.mark.parametrize("service", ["GD-GA-RP-HK", "GD-HQ-BR-MO"])
def test_the_catalogues_report_sections_have_a_word_for_every_step(service: str) -> None:
    """HK's and Macao's report: sections map every lifecycle step, and an application that never
    reached the local system, into their own words (none is left unmapped)."""
    from federation.domain.models import Lifecycle
    from federation.mapping.report import UNDELIVERED, map_notice, notice_document
    from federation.runtime.catalogue import load_catalogue

    section = load_catalogue(REPO).mapping("local", service).report  # type: ignore[union-attr]
    assert section is not None
    application = {"reference_no": "DPO-1", "numeroReferencia": "SAFP-1"}
    words = set()
    for step in [*(s.value for s in Lifecycle), *UNDELIVERED]:
        document = notice_document(
            step=step,
            at="2026-11-29T02:00:00.000Z",
            original={"receipt": {"receipt_number": "GDGA-RP-1"}},
            application=application,
        )
        body, warnings = map_notice(section, document)
        assert warnings == []
        words.add(body.get("notice_type") or body.get("fase"))
        assert (body.get("notice_time") or body.get("dataFase")) in (
            "29/11/2026 10:00",
            "2026-11-29T10:00:00+08:00",
        )
    assert len(words) >= len(Lifecycle)  # each step its own word (undelivered may share one)


def filed_exchange() -> Exchange:
    """An application hk filed, delivered to the local system (no journal needed)."""

    return Exchange(
        id="01KB0Z6Q4Y7M2N8P3R5T9V1W3X",
        direction=Direction.INBOUND,
        source="hk",
        target="local",
        service="GD-GA-RP-HK",
        idempotency_key="HKDPO-2026-0301",
        request_hash="sha256:x",
        state=State.DELIVERED,
        application=APPLICATION,
        created_at=time.time(),
        updated_at=time.time(),
    )


async def test_the_routes_breaker_opens_and_holds_notices(make_config) -> None:
    """Five transient failures open the route's breaker (the partner's breaker policy): the next
    notice is held until it may probe, without a request; a refusal says the partner is up."""
    from federation.runtime.catalogue import load_catalogue
    from federation.runtime.notices import Notices, route_of
    from federation.testing import MockAdapter, permanent, transient

    catalogue = load_catalogue(notice_config(make_config, max_attempts=10))
    exchange = filed_exchange()
    route = route_of(catalogue, exchange)
    assert route is not None

    def down(_request: Any) -> Any:
        raise transient(503)

    adapter = MockAdapter(down)
    notices = Notices(adapters=lambda _partner: adapter)
    tried = [await notices.attempt(route, exchange, "delivered", n) for n in range(1, 7)]
    await notices.close()
    kinds = [[e.kind for e in t.events] for t in tried]
    assert kinds == [["notice_attempt"]] * 5 + [["notice_held"]]
    assert len(adapter.requests) == 5 and not tried[5].done
    assert tried[5].next_at is not None and tried[5].next_at > time.time() + 20  # cool_down 30s

    refused = MockAdapter(lambda _request: (_ for _ in ()).throw(permanent(422)))
    notices = Notices(adapters=lambda _partner: refused)
    first = await notices.attempt(route, exchange, "delivered", 1)
    guards = notices.guards("hk", "GD-GA-RP-HK")
    await notices.close()
    assert [e.kind for e in first.events] == ["notice_attempt", "notice_rejected"] and first.done
    assert guards is not None and guards.breaker.closed


async def test_a_step_the_report_has_no_word_for_is_unmapped_not_sent(make_config) -> None:
    """The test mapping has no word for 'review': notice_unmapped with the problem at its line,
    nothing sent, nothing retried."""
    from federation.runtime.catalogue import load_catalogue
    from federation.runtime.notices import Notices, route_of
    from federation.testing import MockAdapter, reply

    catalogue = load_catalogue(notice_config(make_config))
    exchange = filed_exchange()
    route = route_of(catalogue, exchange)
    assert route is not None
    adapter = MockAdapter(lambda _request: reply({"result_code": "0000"}))
    notices = Notices(adapters=lambda _partner: adapter)
    tried = await notices.attempt(route, exchange, "lifecycle:review", 1)
    await notices.close()
    [event] = tried.events
    assert (event.kind, tried.done, adapter.requests) == ("notice_unmapped", True, [])
    [problem] = event.data["problems"]
    assert problem["path"] == "step" and "no case for 'review'" in problem["message"]
    assert problem["line"] is not None


async def noticed(journal: Backend, key: str) -> str:
    """An application hk filed, delivered to the local system and its notice delivered (nothing
    pending); its id."""
    at = time.time()
    ex, _ = await journal.create(hk_filing(key, {}, at), owner="w1", lease_until=at + 30)
    for state in (State.QUEUED, State.DELIVERING):
        await journal.record(ex.id, [], StateChange(state=state, attempts=1), owner="w1")
    await journal.record(ex.id, [], StateChange(state=State.DELIVERED, notify=True), owner="w1")
    await settled(journal, ex.id, "delivered")
    return ex.id


async def settled(journal: Backend, xid: str, mark: str) -> None:
    """The notifier (n0) delivered ``xid``'s notice ``mark``."""
    now = time.time() + 1
    claimed = await journal.claim_notifications(owner="n0", now=now, lease_until=now + 30, limit=5)
    assert [c.id for c in claimed] == [xid]
    event = Event(exchange_id=xid, kind="notice_delivered", at=now, data={"state": mark})
    await journal.finish_notification(xid, [event], owner="n0", done=True)


def accepted(xid: str, before: str | None) -> tuple[Event, StateChange]:
    """The local system's `accepted`, journalled as a status update does (its notice armed)."""
    event = Event(exchange_id=xid, kind="lifecycle", at=time.time(), data={"lifecycle": "accepted"})
    change = StateChange(
        state=State.DELIVERED,
        expect=frozenset({State.DELIVERED}),
        notify=True,
        notify_as="lifecycle:accepted",
        lifecycle_state="accepted",
        expect_lifecycle=before,
    )
    return event, change


def hant(exc: NotResent) -> str:
    """Why not, as a reader of 繁體 reads it."""
    return exc.text.render(translations("zh_Hant", "cli").gettext)


async def test_a_notice_still_pending_is_not_resent(journal: Backend) -> None:
    """A step's notice is pending (the broker sends it anyway): a resend is refused, in the
    reader's language, and writes nothing."""
    xid = await noticed(journal, "HKDPO-2026-0104")
    event, change = accepted(xid, None)
    await journal.record(xid, [event], change)
    with pytest.raises(NotResent) as caught:
        await resend_notice(journal, xid, reason="x", by="s", clock=time.time)
    assert str(caught.value).startswith(f"a notice of exchange {xid} is still pending")
    assert hant(caught.value).startswith(f"交換 {xid} 仍有通知在等待發送")
    after = await journal.get(xid)
    assert after is not None and after.notify_state == "lifecycle:accepted"
    assert "notice_replayed" not in [e.kind for e in after.events]


@pytest.mark.parametrize("claim", [False, True])
async def test_a_step_that_comes_during_a_notice_resend_keeps_its_notice(
    journal: Backend, monkeypatch: Any, claim: bool
) -> None:
    """The local system's `accepted` is journalled between the resend's check and its write (the
    notifier may have leased its notice already): the resend is refused, in the reader's
    language, and writes nothing; the step's notice stays pending, the notifier's lease with it."""
    xid = await noticed(journal, f"HKDPO-2026-0105-{claim}")
    read = journal.get

    async def get(exchange_id: str) -> Exchange | None:
        monkeypatch.setattr(journal, "get", read)  # one read only
        got = await read(exchange_id)
        event, change = accepted(xid, None)
        await journal.record(xid, [event], change)
        if claim:
            now = time.time() + 1
            await journal.claim_notifications(owner="n1", now=now, lease_until=now + 30, limit=5)
        return got

    monkeypatch.setattr(journal, "get", get)
    with pytest.raises(NotResent) as caught:
        await resend_notice(journal, xid, reason="x", by="s", clock=time.time)
    assert f"exchange {xid} changed while its notice was being queued again" in str(caught.value)
    assert hant(caught.value).startswith(f"交換 {xid} 在其通知重新排隊時發生了變化")
    after = await journal.get(xid)
    assert after is not None and after.notify_state == "lifecycle:accepted"
    assert "notice_replayed" not in [e.kind for e in after.events]
    if claim:  # the notifier that leased the step's notice still holds it
        await journal.finish_notification(xid, [], owner="n1", done=True)
