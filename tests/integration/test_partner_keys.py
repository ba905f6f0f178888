"""The idempotency key a partner is sent: one per exchange (its id), the same on every attempt and
replay, so two sources reusing one key file two applications; and a partner's status update finds
its application by that key or by exchange_id. Each on SQLite, PostgreSQL and memory journals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from federation.runtime.broker import Submission
from replay.journal import Query
from replay.service import Mode, ReplayService
from tests.conftest import HK_APPLICATION, SC_APPLICATION
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import auth, reporting_config
from tests.waiting import wait_for

KEY = "VL-20250428-0001"  # one key, reused by two sources for two applications
PORTAL = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
SECOND = "  - id: gz-citizen-centre\n    name: {zh: 广州市民中心, en: Guangzhou Citizen Centre}\n"
OTHER_HK = {
    "applicant": {"name": "李永燊", "name_en": "LEE, Wing Sun", "hkid": "K802133(3)"},
    "vehicle": {"registration_mark": "WS2025"},
}
OTHER_SC = {
    "applicant": {"name": "黄志强", "id_number": "440106198802153216"},
    "withdrawal": {"amount": "5600.00", "currency": "CNY"},
}


def two_sources(root: Path) -> Path:
    """The catalogue at ``root`` with a second source, the Guangzhou citizen centre."""
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    assert PORTAL in text
    path.write_text(text.replace(PORTAL, PORTAL + SECOND, 1), encoding="utf-8")
    return root


def submission(source: str, partner: str, application: dict[str, Any]) -> Submission:
    service = "TD-VL-RENEW" if partner == "hk" else "115101000000000000-HF-WITHDRAW"
    return Submission(
        source=source,
        partner=partner,
        service=service,
        idempotency_key=KEY,
        application=application,
    )


def sent_keys(exchange: Any, header: str = "Idempotency-Key") -> list[str]:
    """The key each attempt of ``exchange`` went with, as its transcript keeps it (an attempt cut
    short by a stopped broker has none)."""
    return [a.request["headers"][header] for a in exchange.attempt_history() if a.request]


async def test_two_sources_reusing_a_key_file_two_applications(
    make_config, simulators, broker_at, journal_of
) -> None:
    """The portal and the citizen centre both send VL-20250428-0001, for two people: the partner
    sees two keys (each exchange's id), processes both, and each exchange has its own receipt."""
    root = two_sources(make_config())
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
        first, _ = await broker.submit(submission("gd-portal", "hk", HK_APPLICATION))
        second, _ = await broker.submit(submission("gz-citizen-centre", "hk", OTHER_HK))
        one = await settle(broker, first.id, DONE)
        two = await settle(broker, second.id, DONE)
    assert one.id != two.id
    assert one.state is State.DELIVERED and two.state is State.DELIVERED
    seen = sims["hk"].seen
    assert set(seen) == {one.id, two.id} and KEY not in seen
    assert [seen[one.id].count, seen[two.id].count] == [1, 1]
    assert seen[one.id].first_body["vehicle"]["registration_mark"] == "AB1234"
    assert seen[two.id].first_body["vehicle"]["registration_mark"] == "WS2025"
    assert one.receipt and two.receipt
    assert one.receipt["receipt_number"] != two.receipt["receipt_number"]
    assert sent_keys(one) == [one.id] and sent_keys(two) == [two.id]
    assert one.idempotency_key == two.idempotency_key == KEY  # the sources' own, kept


async def test_retries_and_replays_send_the_same_key(
    make_config, simulators, broker_at, journal_of
) -> None:
    """Sichuan is down: two attempts fail, a resend fails again, a remap gets through. Every
    attempt went with the exchange's one key, and the partner filed it once."""
    root = make_config(max_attempts=2)
    sims = await simulators(root)
    sims["sc"].behaviour.fail_ratio = 1.0
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
        ex, _ = await broker.submit(submission("gd-portal", "sc", SC_APPLICATION))
        failed = await settle(broker, ex.id, DONE)
        assert failed.state is State.FAILED
        replays = ReplayService(broker.journal)
        await replays.run(
            await replays.plan(Query(exchange_id=ex.id), Mode.RESEND), reason="sc back", by="ops"
        )
        await settle(broker, ex.id, {State.FAILED}, timeout=10)
        again = await wait_attempts(broker, ex.id, 4)
        assert again.state is State.FAILED
        sims["sc"].behaviour.fail_ratio = 0.0
        await replays.run(
            await replays.plan(Query(exchange_id=ex.id), Mode.REMAP), reason="sc fixed", by="ops"
        )
        done = await settle(broker, ex.id, {State.DELIVERED})
    assert sent_keys(done) == [ex.id] * 5
    assert [e.data.get("key") for e in done.events if e.kind == "mapped"] == [ex.id, ex.id]
    assert list(sims["sc"].seen) == [ex.id] and sims["sc"].seen[ex.id].count == 1


async def wait_attempts(broker: Any, xid: str, count: int) -> Any:
    """The exchange once it has ended with ``count`` attempts."""
    return await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state in DONE and ex.attempts >= count,
        what=f"exchange {xid} to end after {count} attempts",
        timeout=10,
    )


async def test_an_exchange_mapped_before_keeps_the_sources_key(
    make_config, simulators, broker_at, journal_of
) -> None:
    """An older broker mapped and sent this one with the source's key, then stopped: the attempt
    after the upgrade goes with that key too (a new one would file it twice)."""
    root = make_config()
    sims = await simulators(root)
    now = time.time()
    new = NewExchange(
        id=new_id(),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="sc",
        service="115101000000000000-HF-WITHDRAW",
        idempotency_key="legacy-1",
        request_hash="sha256:x",
        application=SC_APPLICATION,
        received_at=now,
    )
    mapped = {"sqrxm": "余丽萍", "sfzhm": "510104199307070153", "tqje": "12800.00"}
    await journal_of.open()
    await journal_of.create(new, owner="old-broker", lease_until=now + 0.3)
    await journal_of.record(
        new.id,
        [Event(exchange_id=new.id, kind="mapped", at=now, data={"mapped": mapped, "versions": {}})],
        StateChange(state=State.DELIVERING, attempts=1),
        owner="old-broker",
        lease_until=now + 0.3,
    )
    await journal_of.close()
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
        done = await settle(broker, new.id, DONE)
    assert done.state is State.DELIVERED
    assert [a.outcome.value for a in done.attempt_history() if a.outcome] == [
        "unknown_outcome",  # the old broker's, closed when its lease was taken over
        "delivered",
    ]
    assert sent_keys(done) == ["legacy-1"]
    assert list(sims["sc"].seen) == ["legacy-1"]


async def test_a_status_update_names_the_application_by_the_sent_key_or_exchange_id(
    make_config, simulators, broker_at, journal_of
) -> None:
    """Two sources' applications to Sichuan under one key: the source's key names neither (409),
    the key Sichuan was sent names one, exchange_id names the other; both given must agree."""
    root = two_sources(reporting_config(make_config))
    sims = await simulators(root)
    answers: list[tuple[int, dict[str, Any]]] = []
    async with (
        broker_at(root, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        first, _ = await broker.submit(submission("gd-portal", "sc", SC_APPLICATION))
        second, _ = await broker.submit(submission("gz-citizen-centre", "sc", OTHER_SC))
        await settle(broker, first.id, DONE)
        await settle(broker, second.id, DONE)
        updates = [
            {"idempotency_key": KEY, "zt": "SL"},
            {"idempotency_key": first.id, "zt": "SL"},
            {"exchange_id": second.id, "zt": "PZ"},
            {"exchange_id": second.id, "idempotency_key": first.id, "zt": "BJ"},
            {"exchange_id": new_id(), "zt": "BJ"},
        ]
        for update in updates:
            async with http.post("/v1/partners/sc/status", headers=auth(), json=update) as r:
                answers.append((r.status, await r.json()))
        one, two = await broker.get(first.id), await broker.get(second.id)
    assert [status for status, _ in answers] == [409, 200, 200, 400, 404]
    assert answers[0][1]["type"] == "urn:tongban:problem:ambiguous"
    assert answers[1][1]["exchange_id"] == first.id and answers[2][1]["exchange_id"] == second.id
    assert [s["state"] for s in one.lifecycle()] == ["submitted", "accepted"]
    assert [s["state"] for s in two.lifecycle()] == ["submitted", "approved"]


async def test_a_supplement_goes_with_its_own_key_and_names_the_application_by_its_key(
    make_config, simulators, broker_at, journal_of
) -> None:
    """补正: the material is its own exchange, sent with its own id; what it says of the
    application (``original``) is the key Sichuan knows the application by."""
    root = reporting_config(make_config)
    sims = await simulators(root)
    async with (
        broker_at(root, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        parent, _ = await broker.submit(submission("gd-portal", "sc", SC_APPLICATION))
        await settle(broker, parent.id, DONE)
        update = {"idempotency_key": parent.id, "zt": "BZ"}
        async with http.post("/v1/partners/sc/status", headers=auth(), json=update) as r:
            assert r.status == 200
        async with http.post(
            f"/v1/exchanges/{parent.id}/supplements",
            json={"material": {"note": "合同", "files": ["tbfile://sc/ht.pdf"]}},
            headers={"Idempotency-Key": f"{KEY}-s1"},
        ) as r:
            assert r.status == 202, await r.text()
            child_id = (await r.json())["id"]
        child = await settle(broker, child_id, DONE)
    assert child.state is State.DELIVERED
    assert sent_keys(child) == [child.id]
    assert child.application["original"]["idempotency_key"] == parent.id
    assert set(sims["sc"].seen) == {parent.id, child.id}
