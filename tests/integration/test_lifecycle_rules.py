"""The lifecycle's rules (Administrative Licensing Law): steps forward may be skipped, none go back,
the same word twice is no step; an out-of-order word is refused, journalled, and changes nothing."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from federation.domain.errors import JournalUnavailable, RequestRefused
from federation.domain.models import LIFECYCLE_FINAL, LIFECYCLE_NEXT, Lifecycle
from federation.runtime.lifecycle import record_lifecycle
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import (  # noqa: F401 (fixture)
    auth,
    inbound_config,
    reporting_config,
    sc_delivered,
)


def test_every_state_is_reachable_and_only_a_correction_round_returns_to_submitted() -> None:
    reachable, todo = {"submitted"}, ["submitted"]
    while todo:
        for nxt in LIFECYCLE_NEXT[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    assert reachable == {s.value for s in Lifecycle}
    assert [a for a, following in LIFECYCLE_NEXT.items() if "submitted" in following] == [
        "correction_required"
    ]
    assert LIFECYCLE_NEXT["served"] == frozenset()
    assert LIFECYCLE_NEXT["not_accepted"] == {"completed", "served"}  # 不予受理 is a decision
    decided = {"approved", "refused", "completed", "not_accepted", "served"}
    assert all(
        not LIFECYCLE_NEXT[d] & {"accepted", "review", "correction_required"} for d in decided
    )
    assert decided >= LIFECYCLE_FINAL


async def test_an_out_of_order_word_is_refused_journalled_and_changes_nothing(
    make_config, simulators, broker_at
) -> None:
    root = reporting_config(make_config)
    sims = await simulators(root)
    answers: list[tuple[int, dict[str, object]]] = []
    async with (
        broker_at(root, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-rules-1")
        for zt in ("PZ", "PZ", "SL", "BJ"):  # approved (skipping accepted), again, back, completed
            async with http.post(
                "/v1/partners/sc/status",
                headers=auth(),
                json={"idempotency_key": "sc-rules-1", "zt": zt},
            ) as r:
                answers.append((r.status, await r.json()))
        done = await broker.journal.get(ex.id)
        refusals = await broker.journal.refusals()
    assert done is not None
    assert [(status, body.get("changed")) for status, body in answers] == [
        (200, True),
        (200, False),  # the same word twice: no step, nothing journalled
        (409, None),
        (200, True),
    ]
    problem = answers[2][1]
    assert problem["type"] == "urn:tongban:problem:lifecycle-out-of-order"
    assert problem["detail"] == (
        f"exchange {ex.id} is approved: accepted cannot follow it (may follow: completed, served)"
    )
    assert [s["state"] for s in done.lifecycle()] == ["submitted", "approved", "completed"]
    assert done.lifecycle_state == "completed"
    [refused] = [e for e in done.events if e.kind == "lifecycle_refused"]
    assert refused.data["reported"] == "accepted" and refused.data["after"] == "approved"
    assert refused.data["partner_update"]["zt"] == "SL"
    assert [r.problem for r in refusals] == ["lifecycle-out-of-order"]


async def test_two_updates_at_once_cannot_both_pass_the_check(
    make_config, simulators, broker_at
) -> None:
    """approved and not_accepted, each allowed after submitted and neither after the other, both
    checked against the same latest word: one is written, the other checked again and refused."""
    root = reporting_config(make_config)
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, _):
        ex = await sc_delivered(broker, "sc-race-1")
        seen = await broker.journal.get(ex.id)  # both updates read it before either writes
        results = await asyncio.gather(
            record_lifecycle(broker.journal, broker.catalogue, seen, {"lifecycle": "approved"}, {}),
            record_lifecycle(
                broker.journal, broker.catalogue, seen, {"lifecycle": "not_accepted"}, {}
            ),
            return_exceptions=True,
        )
        done = await broker.journal.get(ex.id)
    written = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, RequestRefused)]
    assert len(written) == 1 and len(refused) == 1, results
    assert refused[0].code == "lifecycle-out-of-order"
    assert done is not None
    assert [s["state"] for s in done.lifecycle()] == ["submitted", written[0][0]]


async def test_a_supplement_delivered_after_the_partner_moved_on_reopens_nothing(
    make_config, simulators, broker_at
) -> None:
    """The material is stuck in retries while Sichuan approves anyway: when it finally gets
    through, the application stays approved and the late arrival is noted on it."""
    root = reporting_config(make_config, max_attempts=100)
    sims = await simulators(root)
    async with (
        broker_at(root, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-late-1")
        for zt in ("BZ",):
            async with http.post(
                "/v1/partners/sc/status",
                headers=auth(),
                json={"idempotency_key": "sc-late-1", "zt": zt},
            ) as r:
                assert r.status == 200
        sims["sc"].behaviour.fail_ratio = 1.0  # the supplement cannot get through for now
        async with http.post(
            f"/v1/exchanges/{ex.id}/supplements",
            json={"material": {"note": "合同", "files": ["tbfile://sc/ht.pdf"]}},
            headers={"Idempotency-Key": "sc-late-1-s1"},
        ) as r:
            child = (await r.json())["id"]
        async with http.post(
            "/v1/partners/sc/status",
            headers=auth(),
            json={"idempotency_key": "sc-late-1", "zt": "PZ"},
        ) as r:
            assert r.status == 200
        sims["sc"].behaviour.fail_ratio = 0.0
        sent = await settle(broker, child, DONE)
        done = await broker.journal.get(ex.id)
    assert sent.state.value == "delivered"
    assert done is not None
    assert [s["state"] for s in done.lifecycle()] == [
        "submitted",
        "correction_required",
        "approved",
    ]
    assert done.lifecycle_state == "approved"
    [late] = [e for e in done.events if e.kind == "lifecycle_refused"]
    assert late.data["via"] == "supplement" and late.data["supplement"] == child


@pytest.mark.parametrize(
    ("body", "status"),
    [({"lifecycle": ["approved"]}, 400), ({"lifecycle": 3}, 400), ({"lifecycle": None}, 400)],
)
async def test_a_lifecycle_that_is_not_text_is_a_clear_refusal(
    inbound_config,  # noqa: F811 (the fixture imported above)
    simulators,
    broker_at,
    body: dict[str, object],
    status: int,
) -> None:
    """A list or a number where a state belongs: problem details and a refusal row, not a 500."""
    from tests.integration.test_inbound import APPLICATION, LOCAL_KEY

    sims = await simulators(inbound_config)
    async with (
        broker_at(inbound_config, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(
            "/v1/partners/hk/applications",
            json={"service": "GD-GA-RP-HK", "application": APPLICATION},
            headers={**auth(), "Idempotency-Key": "hk-text-1"},
        ) as r:
            xid = (await r.json())["id"]
        await settle(broker, xid, DONE)
        async with http.post(
            f"/v1/exchanges/{xid}/lifecycle", json=body, headers=auth(LOCAL_KEY)
        ) as r:
            got = (r.status, await r.json())
        refusals = await broker.journal.refusals()
    assert got[0] == status
    assert got[1]["errors"][0]["path"] == "lifecycle"
    assert [r.problem for r in refusals] == ["invalid-request"]


@pytest.mark.parametrize("fails", ["parent", "supplement"])
async def test_a_stop_between_a_supplements_two_writes_leaves_no_application_waiting(
    make_config, simulators, broker_at, fails: str
) -> None:
    """The partner took the material; then the journal failed once, at the parent's note that
    the application is submitted again, or at the supplement's own delivered write after that
    note (as if the broker stopped between the two). Either way the supplement, still
    delivering, is claimed again once its lease expires and sent again with its key; the parent
    ends noted once, never refused as late, and the supplement delivered."""
    root = reporting_config(make_config, max_attempts=100)
    sims = await simulators(root)
    async with (
        broker_at(root, sims, lease=0.5) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-stop-1")
        async with http.post(
            "/v1/partners/sc/status",
            headers=auth(),
            json={"idempotency_key": "sc-stop-1", "zt": "BZ"},
        ) as r:
            assert r.status == 200
        journal = broker.journal
        record = journal.record
        failed: list[str] = []

        async def stopping_once(xid, events, change, **kw):  # type: ignore[no-untyped-def]
            at_parent = xid == ex.id and change.lifecycle_state == "submitted"
            at_supplement = xid != ex.id and change.state.value == "delivered"
            if not failed and (at_parent if fails == "parent" else at_supplement):
                failed.append(xid)
                raise JournalUnavailable("the broker stopped here")
            return await record(xid, events, change, **kw)

        journal.record = stopping_once  # type: ignore[method-assign]
        try:
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json={"material": {"note": "合同", "files": ["tbfile://sc/ht.pdf"]}},
                headers={"Idempotency-Key": "sc-stop-1-s1"},
            ) as r:
                child = (await r.json())["id"]
            sent = await settle(broker, child, DONE, timeout=30)
        finally:
            journal.record = record  # type: ignore[method-assign]
        done = await journal.get(ex.id)
    assert failed == [ex.id if fails == "parent" else child]
    assert sent.state.value == "delivered" and sent.attempts == 2
    assert done is not None
    assert [s["state"] for s in done.lifecycle()] == [
        "submitted",
        "correction_required",
        "submitted",
    ]
    assert done.lifecycle_state == "submitted"
    noted = [e for e in done.events if e.data.get("supplement") == child]
    assert [e.kind for e in noted] == ["lifecycle"]
