"""Correction rounds (补正) told apart by what the partner says and when it says it was: a polled
state the partner has not caught up on is no new round, a partner's time is compared with when
the material left (not when the partner answered the POST that carried it), a notice dated after
the supplement was filed is a new round in the round's own words, and new words are a new round
whatever their date. Through the HTTP app (and the poller), on SQLite, PostgreSQL and the
in-memory journal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp

from federation.domain.models import Exchange, State
from federation.runtime.poller import Poller
from replay.journal import Backend
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import reporting_config
from tests.integration.test_soap_lifecycle import _delivered, hk_config  # noqa: F401 (fixture)
from tests.unit.test_lifecycle_rounds import (
    asked,
    dated,
    noted,
    patient,
    said,
    steps,
    supplement,
)

HK_MAPPING = Path("mappings/hk/td-vehicle-licence-renewal.yaml")
COVER_NOTE = {
    "note": "Cover note",
    "attachments": [{"kind": "insurance_cover_note", "title": "Cover", "file": "tbfile://c"}],
}


def undated(root: Path) -> Path:
    """The catalogue in ``root`` with TD's status: section mapping no ``at:``."""
    mapping = root / HK_MAPPING
    lines = mapping.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("  at: {from: updated_at")]
    assert len(kept) == len(lines) - 1  # the shipped mapping still dates its status
    mapping.write_text("".join(kept), encoding="utf-8")
    return root


def repeated(ex: Exchange) -> list[Any]:
    """The notes of the ``lifecycle_repeated`` events of ``ex``."""
    return [e.data.get("note") for e in ex.events if e.kind == "lifecycle_repeated"]


async def test_a_polled_request_the_partner_has_not_caught_up_on_is_no_new_round(
    hk_config: Path,  # noqa: F811 (the fixture imported above)
    simulators: Any,
    broker_at: Any,
    journal_of: Backend,
) -> None:
    """Polled with no time mapped, TD still answers DOCUMENTS_REQUIRED after the material reached it
    (it has not looked yet): no second round, kept once for support staff, the next material
    refused as no round is open."""
    sims = await simulators(undated(hk_config))
    sims["hk"].behaviour.status_script = ["DOCUMENTS_REQUIRED"] * 3
    async with (
        broker_at(hk_config, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await _delivered(broker, "vl-undated")
        poller = Poller(broker, every=0.0)
        changes = [await poller.poll_once()]
        async with http.post(
            f"/v1/exchanges/{ex.id}/supplements",
            json={"material": COVER_NOTE},
            headers={"Idempotency-Key": "vl-undated-s1"},
        ) as r:
            assert r.status == 202
            child = (await r.json())["id"]
        await settle(broker, child, DONE)
        changes += [await poller.poll_once(), await poller.poll_once()]
        async with http.post(
            f"/v1/exchanges/{ex.id}/supplements",
            json={"material": COVER_NOTE},
            headers={"Idempotency-Key": "vl-undated-s2"},
        ) as r:
            again = r.status
        done = await broker.get(ex.id)
    assert changes == [1, 0, 0]
    assert done is not None
    assert steps(done) == ["submitted", "correction_required", "submitted"]
    assert len(repeated(done)) == 1  # once, not on every poll
    assert again == 409


async def test_the_partners_time_is_compared_with_when_the_material_left(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """Sichuan takes 4.5 s to answer the supplement's POST and asks again in its set phrase, dated
    1 s after the material left: a new round (not the old request, as when compared with the
    answer's time), and the applicant's material for it is taken."""
    root = patient(reporting_config(make_config, max_attempts=100, read="30s", total="60s"))
    dated(root)
    async with asked(root, simulators, broker_at, journal_of, "sc-slow") as (
        sims,
        broker,
        http,
        ex,
    ):
        sims["sc"].behaviour.delay = 4.5
        sent = dt.datetime.now(dt.UTC)
        status, body = await supplement(http, ex.id, "sc-slow-s1")
        assert status == 202
        await settle(broker, body["id"], DONE)
        sims["sc"].behaviour.delay = 0.0
        await noted(broker, ex.id, "the material noted on the application")
        when = (sent + dt.timedelta(seconds=1)).isoformat()
        again = await said(http, "sc-slow", "BZ", "请补充购房合同", sj=when)
        after = await broker.get(ex.id)
        second, _ = await supplement(http, ex.id, "sc-slow-s2")
    assert again[1]["changed"] is True
    assert steps(after) == ["submitted", "correction_required", "submitted", "correction_required"]
    assert second == 202


async def test_new_words_dated_before_the_material_left_are_a_new_round(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """After the material reached Sichuan, a 补正 in words never heard, dated before the material
    left (a late notice, a clock behind): a new round the portal hears of; the old request in its
    old words and time is nothing new."""
    root = reporting_config(make_config)
    dated(root)
    old = "2020-01-01T09:00:00+08:00"
    async with asked(root, simulators, broker_at, journal_of, "sc-late") as (_, broker, http, ex):
        status, body = await supplement(http, ex.id, "sc-late-s1")
        assert status == 202
        await settle(broker, body["id"], DONE)
        await noted(broker, ex.id, "the material noted on the application")
        resent = await said(http, "sc-late", "BZ", "请补充购房合同", sj=old)
        kept = await broker.get(ex.id)
        more = await said(http, "sc-late", "BZ", "请补充购房合同及收入证明", sj=old)
        done = await broker.get(ex.id)
    assert [(r[0], r[1]["changed"]) for r in (resent, more)] == [(200, False), (200, True)]
    assert kept is not None and steps(kept)[-1] == "submitted" and not repeated(kept)
    assert steps(done) == ["submitted", "correction_required", "submitted", "correction_required"]


async def test_a_notice_in_the_rounds_words_dated_after_the_filing_is_a_new_round(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """While the portal's material waits in retries, Sichuan resends its notice undated (nothing
    new), then (having had the material after all) asks again in its set phrase, dated after the
    material was filed: a second round, which that material's delivery leaves open, and the
    portal's material for it is taken."""
    root = patient(reporting_config(make_config, max_attempts=100))
    dated(root)
    async with asked(root, simulators, broker_at, journal_of, "sc-win") as (sims, broker, http, ex):
        sims["sc"].behaviour.fail_ratio = 1.0  # the material waits in retries
        status, body = await supplement(http, ex.id, "sc-win-s1")
        assert status == 202
        undated = await said(http, "sc-win", "BZ", "请补充购房合同")  # its notice resent
        now = dt.datetime.now(dt.UTC).isoformat()
        again = await said(http, "sc-win", "BZ", "请补充购房合同", sj=now)
        resent = await said(http, "sc-win", "BZ", "请补充购房合同", sj=now)
        sims["sc"].behaviour.fail_ratio = 0.0
        late = await settle(broker, body["id"], DONE)
        still = await broker.get(ex.id)
        second, _ = await supplement(http, ex.id, "sc-win-s2")
    assert [(r[0], r[1]["changed"]) for r in (undated, again, resent)] == [
        (200, False),
        (200, True),
        (200, False),
    ]
    assert late.state is State.DELIVERED
    assert still is not None and still.lifecycle_state == "correction_required"
    assert steps(still) == ["submitted", "correction_required", "correction_required"]
    assert second == 202
