"""The lifecycle's rules (Administrative Licensing Law): steps forward may be skipped, none go back,
the same word twice is no step; an out-of-order word is refused, journalled, and changes nothing."""

from __future__ import annotations

import aiohttp

from federation.broker import Submission
from federation.models import LIFECYCLE_FINAL, LIFECYCLE_NEXT, Lifecycle
from tests.conftest import SC_APPLICATION
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import auth, reporting_config

SERVICE = "115101000000000000-HF-WITHDRAW"


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
        ex, _ = await broker.submit(
            Submission(
                source="gd-portal",
                partner="sc",
                service=SERVICE,
                idempotency_key="sc-rules-1",
                application=SC_APPLICATION,
            )
        )
        await settle(broker, ex.id, DONE)
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
