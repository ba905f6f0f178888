"""One supplement per correction round (补正): once one is accepted for the open round, another
is refused (409) until the partner asks again, whether sent at the same moment or seconds later
while the first waits for a partner that is down; one that ended rejected frees the round. Through
the HTTP app, on SQLite, PostgreSQL and the in-memory journal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import RequestRefused
from federation.domain.models import State
from federation.runtime.filing import file_supplement
from replay.journal import Query
from replay.service import Mode, ReplayService
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import reporting_config
from tests.unit.test_lifecycle_rounds import (
    MATERIAL,
    asked,
    noted,
    patient,
    steps,
    supplement,
)
from tests.waiting import wait_for

NOT_ASKED = "urn:tongban:problem:no-correction-requested"


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An unopened journal of each backend (the broker opens it)."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


async def supplements_of(broker: Any, xid: str) -> list[Any]:
    """The supplements journalled for exchange ``xid``."""
    found = await broker.journal.search(Query(partner="sc", with_supplement_of=True, limit=100))
    return [e for e in found if e.supplement_of == xid]


async def test_four_supplements_at_once_one_is_taken(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Four keys for one round, sent together: one 202, three 409 with refusal rows; one
    supplement journalled and sent; the losers' notes on the application withdrawn."""
    root = reporting_config(make_config)
    async with asked(root, simulators, broker_at, journal, "sc-four") as (sims, broker, http, ex):
        answers = await asyncio.gather(
            *(supplement(http, ex.id, f"sc-four-s{i}") for i in range(4))
        )
        [taken] = [body["id"] for status, body in answers if status == 202]
        await settle(broker, taken, DONE)
        done = await noted(broker, ex.id, "the material to be noted on the application")
        journalled = await supplements_of(broker, ex.id)
        refusals = await broker.journal.refusals()
    assert sorted(status for status, _ in answers) == [202, 409, 409, 409]
    assert {body["type"] for status, body in answers if status == 409} == {NOT_ASKED}
    assert [r.problem for r in refusals] == ["no-correction-requested"] * 3
    assert [e.id for e in journalled] == [taken]
    assert [k for k in sims["sc"].seen if k != ex.id] == [taken]  # the partner got one
    kinds = [e.kind for e in done.events]
    assert (kinds.count("supplement_filed"), kinds.count("supplement_withdrawn")) == (4, 3)
    assert steps(done) == ["submitted", "correction_required", "submitted"]


async def test_two_filings_that_read_the_same_round_cannot_both_pass(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Both checked against the same view of the application (correction_required, nothing
    filed): the journal's order of their notes decides, one is taken, the other refused."""
    root = reporting_config(make_config)
    async with asked(root, simulators, broker_at, journal, "sc-race") as (_, broker, _http, ex):
        seen = await broker.get(ex.id)
        results = await asyncio.gather(
            *(file_supplement(broker, seen, MATERIAL, f"sc-race-s{i}") for i in range(2)),
            return_exceptions=True,
        )
        journalled = await supplements_of(broker, ex.id)
    taken = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, RequestRefused)]
    assert len(taken) == 1 and len(refused) == 1, results
    assert refused[0].code == "no-correction-requested"
    assert [e.id for e in journalled] == [taken[0][0].id]


async def test_a_second_supplement_while_the_first_waits_for_a_partner_that_is_down(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Sichuan is down: the first material waits in retries; a second one, filed later for the
    same round, is refused and never sent; the first closes the round once Sichuan is back."""
    root = patient(reporting_config(make_config, max_attempts=100))
    async with asked(root, simulators, broker_at, journal, "sc-down") as (sims, broker, http, ex):
        sims["sc"].behaviour.fail_ratio = 1.0
        first = await supplement(http, ex.id, "sc-down-a")
        await wait_for(
            lambda: broker.get(first[1]["id"]),
            lambda s: s is not None and s.state is State.RETRY_WAIT,
            what="the first material to wait for Sichuan",
        )
        second = await supplement(http, ex.id, "sc-down-b")
        sims["sc"].behaviour.fail_ratio = 0.0
        await settle(broker, first[1]["id"], DONE)
        done = await broker.get(ex.id)
        journalled = await supplements_of(broker, ex.id)
    assert (first[0], second[0]) == (202, 409)
    assert second[1]["type"] == NOT_ASKED
    assert first[1]["id"] in second[1]["detail"]  # names the one on its way
    assert [e.id for e in journalled] == [first[1]["id"]]
    assert steps(done) == ["submitted", "correction_required", "submitted"]
    assert not [e for e in done.events if e.kind == "lifecycle_refused"]


async def test_a_rejected_supplement_frees_the_round(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """Sichuan refuses the first material outright (400): the round is still open, so a new
    supplement is taken, and closes it; the rejected one, sent again under its key, is a
    repeat of itself."""
    root = reporting_config(make_config)
    async with asked(root, simulators, broker_at, journal, "sc-rej") as (sims, broker, http, ex):
        sims["sc"].behaviour.fail_ratio, sims["sc"].behaviour.fail_status = 1.0, 400
        first = await supplement(http, ex.id, "sc-rej-a")
        rejected = await settle(broker, first[1]["id"], DONE)
        sims["sc"].behaviour.fail_ratio = 0.0
        again = await supplement(http, ex.id, "sc-rej-a")
        second = await supplement(http, ex.id, "sc-rej-b")
        await settle(broker, second[1]["id"], DONE)
        done = await noted(broker, ex.id, "the second material to close the round")
    assert rejected.state is State.REJECTED
    assert (first[0], again[0], second[0]) == (202, 200, 202)
    assert again[1]["id"] == first[1]["id"]
    assert steps(done) == ["submitted", "correction_required", "submitted"]


async def test_material_for_a_supplement_names_the_application_it_belongs_to(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """A supplement sent for a supplement: 409 ``supplement`` naming the application, with a
    refusal row, not the generic "has not asked for more material"."""
    root = reporting_config(make_config)
    async with asked(root, simulators, broker_at, journal, "sc-sos") as (_, broker, http, ex):
        child = (await supplement(http, ex.id, "sc-sos-a"))[1]["id"]
        await settle(broker, child, DONE)
        status, problem = await supplement(http, child, "sc-sos-b")
        refusals = await broker.journal.refusals()
    assert status == 409
    assert problem["type"] == "urn:tongban:problem:supplement"
    assert ex.id in problem["detail"]
    assert [r.problem for r in refusals] == ["supplement"]


async def test_material_for_an_application_being_sent_again_is_refused_as_not_delivered(
    make_config: Any, simulators: Any, broker_at: Any, journal: Any
) -> None:
    """The application waits for a correction but is being sent again (replayed, Sichuan down):
    material for it is 409 not-delivered with a refusal row, not a 500, and nothing is filed."""
    root = patient(reporting_config(make_config, max_attempts=100))
    async with asked(root, simulators, broker_at, journal, "sc-again") as (sims, broker, http, ex):
        sims["sc"].behaviour.fail_ratio = 1.0
        service = ReplayService(broker.journal)
        plan = await service.plan(Query(exchange_id=ex.id), Mode.RESEND)
        await service.run(plan, reason="partner lost it", by="ops")
        status, problem = await supplement(http, ex.id, "sc-again-s1")
        refusals = await broker.journal.refusals()
        journalled = await supplements_of(broker, ex.id)
    assert status == 409
    assert problem["type"] == "urn:tongban:problem:not-delivered"
    assert [r.problem for r in refusals] == ["not-delivered"]
    assert journalled == []
