"""Correction rounds (补正) as a partner, or the local system, says them: a new request for
material while the round's supplement is on its way is a new round, journalled and told, which
that supplement's delivery does not close; a notice after the supplement landed is a new round
even in the first round's words, unless the partner dates it before the material left; a status
mapped to a note that is no text is refused. Through the HTTP app, on SQLite, PostgreSQL and the
in-memory journal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from federation.api.net import start_site
from federation.domain.models import Exchange, State
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import (  # noqa: F401 (fixture)
    APPLICATION,
    LOCAL_KEY,
    auth,
    inbound_config,
    reporting_config,
    sc_delivered,
)
from tests.waiting import wait_for, wait_until

MATERIAL = {"note": "购房合同扫描件", "files": ["tbfile://sc/hetong.pdf"]}


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An unopened journal of each backend (the broker opens it)."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


@contextlib.asynccontextmanager
async def source_sink() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """The portal's callback endpoint on loopback: its URL, and (Idempotency-Key, body) heard."""
    heard: list[tuple[str, dict[str, Any]]] = []

    async def sink(request: web.Request) -> web.Response:
        heard.append((request.headers.get("Idempotency-Key", ""), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/outcomes", sink)
    runner, url = await start_site(app)
    try:
        yield f"{url}/outcomes", heard
    finally:
        await runner.cleanup()


async def said(
    http: aiohttp.ClientSession, key: str, zt: str, yj: object = None, **more: object
) -> tuple[int, dict[str, Any]]:
    """Sichuan reports ``zt`` (with its words ``yj``) on the application it knows by ``key``."""
    body: dict[str, object] = {"idempotency_key": key, "zt": zt, **more}
    if yj is not None:
        body["yj"] = yj
    async with http.post("/v1/partners/sc/status", headers=auth(), json=body) as r:
        return r.status, await r.json()


async def supplement(http: aiohttp.ClientSession, xid: str, key: str) -> tuple[int, dict[str, Any]]:
    """The portal sends material for exchange ``xid`` under ``key``."""
    async with http.post(
        f"/v1/exchanges/{xid}/supplements",
        json={"material": MATERIAL},
        headers={"Idempotency-Key": key},
    ) as r:
        return r.status, await r.json()


def patient(root: Path) -> Path:
    """The catalogue in ``root`` with breakers that stay closed: a partner that is down for a
    while is tried again as soon as it is back, not after a cool-down."""
    yaml = root / "partners.yaml"
    text = yaml.read_text(encoding="utf-8")
    yaml.write_text(
        text.replace("defaults:\n", "defaults:\n  breaker: {failures: 1000}\n", 1),
        encoding="utf-8",
    )
    return root


def steps(ex: Exchange | None) -> list[str]:
    assert ex is not None
    return [s["state"] for s in ex.lifecycle()]


@contextlib.asynccontextmanager
async def asked(
    root: Path, simulators: Any, broker_at: Any, journal: Any, key: str
) -> AsyncIterator[tuple[dict[str, Any], Any, aiohttp.ClientSession, Exchange]]:
    """The broker on ``root``'s catalogue and a client of its HTTP app, with an application
    delivered to Sichuan under ``key`` for which Sichuan has asked for a contract (补正): the
    partners' simulators, the broker, the client and the application."""
    sims = await simulators(root)
    async with (
        broker_at(root, sims, journal_obj=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, key)
        assert (await said(http, key, "BZ", "请补充购房合同"))[0] == 200
        yield sims, broker, http, ex


async def noted(broker: Any, xid: str, what: str) -> Exchange:
    """Application ``xid`` once its lifecycle is back at submitted (its material noted)."""
    return await wait_for(
        lambda: broker.get(xid),
        lambda p: p is not None and p.lifecycle_state == "submitted",
        what=what,
    )


def dated(root: Path) -> None:
    """Sichuan's mapping in ``root`` with the partner's own time (``sj``) mapped as ``at``."""
    mapping = root / "mappings" / "sc-hf.yaml"
    text = mapping.read_text(encoding="utf-8").replace("  note: yj\n", "  note: yj\n  at: sj\n")
    mapping.write_text(text, encoding="utf-8")


async def test_a_new_request_while_the_supplement_is_on_its_way_is_a_round_it_does_not_close(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Sichuan asks for a contract; the portal's material waits in retries; Sichuan asks for an
    income proof too: journalled as a second round and told to the portal (its own key), a
    resend of it changes nothing; the first material, delivered, leaves the round open (noted as
    late), and the portal's material for the second round is taken and closes it."""
    async with source_sink() as (callback, heard):
        root = patient(reporting_config(make_config, callback=callback, max_attempts=100))
        sims = await simulators(root)
        async with (
            broker_at(root, sims, journal_obj=journal) as (broker, url),
            aiohttp.ClientSession(base_url=url) as http,
        ):
            ex = await sc_delivered(broker, "sc-r2")
            first = await said(http, "sc-r2", "BZ", "请补充购房合同")
            sims["sc"].behaviour.fail_ratio = 1.0  # the material cannot get through for now
            status, body = await supplement(http, ex.id, "sc-r2-s1")
            assert status == 202
            s1 = body["id"]
            second = await said(http, "sc-r2", "BZ", "还缺收入证明")
            resent = await said(http, "sc-r2", "BZ", "还缺收入证明")
            sims["sc"].behaviour.fail_ratio = 0.0
            late = await settle(broker, s1, DONE)
            open_again = await broker.get(ex.id)
            status2, body2 = await supplement(http, ex.id, "sc-r2-s2")
            assert status2 == 202, body2
            await settle(broker, body2["id"], DONE)
            closed = await wait_for(
                lambda: broker.get(ex.id),
                lambda p: p is not None and p.lifecycle_state == "submitted",
                what="the second round's material to close it",
            )
            round2 = f"{ex.id}:lifecycle:correction_required:2"
            await wait_until(
                lambda: any(k == round2 for k, _ in heard), what="the portal to hear round 2"
            )
    assert [(s, b.get("changed")) for s, b in (first, second, resent)] == [
        (200, True),
        (200, True),  # a new round, not "the same state again"
        (200, False),
    ]
    assert late.state is State.DELIVERED
    assert open_again is not None and open_again.lifecycle_state == "correction_required"
    assert steps(open_again) == ["submitted", "correction_required", "correction_required"]
    [noted] = [e for e in open_again.events if e.kind == "lifecycle_refused"]
    assert noted.data["supplement"] == s1 and noted.data["via"] == "supplement"
    assert [e.data["note"] for e in open_again.events if e.kind == "lifecycle"][
        -1
    ] == "还缺收入证明"
    assert steps(closed)[-1] == "submitted"
    told = [b for k, b in heard if k == round2]  # at least once: a repeat has the same key
    assert told and {b["lifecycle"] for b in told} == {"correction_required"}


async def test_the_first_rounds_words_after_the_supplement_landed_are_a_new_round(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Sichuan asks for material again in the first round's words (a set phrase), after the
    material reached it, with no time of its own: a new round, told to the portal, never
    dropped as a resend (a partner's request lost, the application stalled at submitted, the
    applicant never told); the same notice straight after is that round's resend."""
    root = reporting_config(make_config)
    async with asked(root, simulators, broker_at, journal, "sc-dup") as (_, broker, http, ex):
        status, body = await supplement(http, ex.id, "sc-dup-s1")
        assert status == 202
        await settle(broker, body["id"], DONE)
        await noted(broker, ex.id, "the material to be noted on the application")
        asked_again = await said(http, "sc-dup", "BZ", "请补充购房合同")
        resent = await said(http, "sc-dup", "BZ", "请补充购房合同")
        status2, _ = await supplement(http, ex.id, "sc-dup-s2")
        done = await broker.get(ex.id)
    assert asked_again[1]["changed"] is True
    assert resent == (
        200,
        {"exchange_id": ex.id, "lifecycle": "correction_required", "changed": False},
    )
    assert status2 == 202  # the round is open: its material is taken
    assert steps(done)[:4] == [
        "submitted",
        "correction_required",
        "submitted",
        "correction_required",
    ]


async def test_the_partners_time_tells_an_old_notice_from_a_new_round(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """With the partner's own time mapped (``at``): the first round's 补正 dated before the material
    reached it is the old request (nothing journalled, no step), the same words dated after are a
    new round."""
    root = reporting_config(make_config)
    dated(root)
    sims = await simulators(root)
    async with (
        broker_at(root, sims, journal_obj=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-at")
        old = "2020-01-01T09:00:00+08:00"
        assert (await said(http, "sc-at", "BZ", "请补充购房合同", sj=old))[0] == 200
        status, body = await supplement(http, ex.id, "sc-at-s1")
        assert status == 202
        await settle(broker, body["id"], DONE)
        await noted(broker, ex.id, "the material to be noted on the application")
        stale = await said(http, "sc-at", "BZ", "请补充购房合同", sj=old)
        again = await said(http, "sc-at", "BZ", "请补充购房合同", sj=old)
        kept = await broker.get(ex.id)
        fresh = await said(http, "sc-at", "BZ", "请补充购房合同", sj="2999-01-01T09:00:00+08:00")
        done = await broker.get(ex.id)
    assert [(r[0], r[1]["changed"]) for r in (stale, again, fresh)] == [
        (200, False),
        (200, False),
        (200, True),
    ]
    assert kept is not None and kept.lifecycle_state == "submitted"
    assert not [e for e in kept.events if e.kind == "lifecycle_repeated"]
    assert steps(done) == ["submitted", "correction_required", "submitted", "correction_required"]


async def test_the_same_words_at_a_new_time_are_nothing_new(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """A partner that dates each answer with the time of the answer (as a polled one may): the
    same state in the same words is no step and nothing journalled, and a 补正 said again so
    while the round's material waits in retries is no new round."""
    root = patient(reporting_config(make_config, max_attempts=100))
    dated(root)
    sims = await simulators(root)
    async with (
        broker_at(root, sims, journal_obj=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-time")
        answers = [await said(http, "sc-time", "SL", "受理", sj="2026-01-01T09:00:00+08:00")]
        answers.append(await said(http, "sc-time", "SL", "受理", sj="2026-01-01T09:05:00+08:00"))
        answers.append(
            await said(http, "sc-time", "BZ", "请补充合同", sj="2026-01-01T10:00:00+08:00")
        )
        sims["sc"].behaviour.fail_ratio = 1.0
        assert (await supplement(http, ex.id, "sc-time-s1"))[0] == 202
        answers.append(
            await said(http, "sc-time", "BZ", "请补充合同", sj="2026-01-01T10:05:00+08:00")
        )
        done = await broker.get(ex.id)
    assert [(s, b["changed"]) for s, b in answers] == [
        (200, True),
        (200, False),
        (200, True),
        (200, False),
    ]
    assert done is not None
    assert steps(done) == ["submitted", "accepted", "correction_required"]
    assert not [e for e in done.events if e.kind == "lifecycle_repeated"]


async def test_the_local_systems_new_request_while_the_partners_material_is_on_its_way(
    inbound_config: Path,  # noqa: F811 (the fixture imported above)
    simulators: Any,
    broker_at: Any,
    journal: Any,
) -> None:
    """The other way: the local authority asks hk for more while hk's first material waits in
    retries: a second round (changed), which that material's delivery leaves open; hk's
    material for the second round is taken."""
    mapping = inbound_config / "mappings" / "inbound-rp.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8")
        + "supplement:\n  note: {from: material.remarks, required: true}\n",
        encoding="utf-8",
    )
    text = (patient(inbound_config) / "partners.yaml").read_text(encoding="utf-8")
    (inbound_config / "partners.yaml").write_text(
        text.replace("max_attempts: 5", "max_attempts: 100"), encoding="utf-8"
    )
    sims = await simulators(inbound_config)
    path = "/v1/partners/hk/applications/HK-R2/supplements"
    async with (
        broker_at(inbound_config, sims, journal_obj=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(
            "/v1/partners/hk/applications",
            json={"service": "GD-GA-RP-HK", "application": APPLICATION},
            headers={**auth(), "Idempotency-Key": "HK-R2"},
        ) as r:
            xid = (await r.json())["id"]
        await settle(broker, xid, DONE)
        answers = []
        for note in ("请补充住址证明", "还需补充工作证明"):
            async with http.post(
                f"/v1/exchanges/{xid}/lifecycle",
                json={"lifecycle": "correction_required", "note": note},
                headers=auth(LOCAL_KEY),
            ) as r:
                answers.append((r.status, (await r.json())["changed"]))
            if len(answers) == 1:
                sims["local"].behaviour.fail_ratio = 1.0
                async with http.post(
                    path,
                    json={"material": {"remarks": "租赁合同"}},
                    headers={**auth(), "Idempotency-Key": "HK-R2-S1"},
                ) as r:
                    assert r.status == 202
                    first = (await r.json())["id"]
        sims["local"].behaviour.fail_ratio = 0.0
        await settle(broker, first, DONE)
        still = await broker.get(xid)
        async with http.post(
            path,
            json={"material": {"remarks": "工作证明"}},
            headers={**auth(), "Idempotency-Key": "HK-R2-S2"},
        ) as r:
            second = r.status
    assert answers == [(200, True), (200, True)]
    assert still is not None and still.lifecycle_state == "correction_required"
    assert steps(still) == ["submitted", "correction_required", "correction_required"]
    assert second == 202


@pytest.mark.parametrize("yj", [{"x": 1}, ["缺合同"], True])
async def test_a_status_whose_note_is_no_text_is_refused_and_journalled(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any, yj: object
) -> None:
    """A note the mapping reads as an object, a list or true: 422 naming the field, a refusal
    row, and no step (the portal is never handed the partner's structure as the note)."""
    root = reporting_config(make_config)
    sims = await simulators(root)
    async with (
        broker_at(root, sims, journal_obj=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-note")
        status, problem = await said(http, "sc-note", "BZ", yj)
        number = await said(http, "sc-note", "SL", 17)  # a number is its digits
        refusals = await broker.journal.refusals()
        done = await broker.get(ex.id)
    assert status == 422
    assert problem["type"] == "urn:tongban:problem:mapping-failed"
    assert problem["errors"] == [{"path": "note", "message": problem["errors"][0]["message"]}]
    assert [r.problem for r in refusals] == ["mapping-failed"]
    assert steps(done) == ["submitted", "accepted"]
    assert number[0] == 200
    assert done is not None
    assert [e.data.get("note") for e in done.events if e.kind == "lifecycle"] == ["17"]
