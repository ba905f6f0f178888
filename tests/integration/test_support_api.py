"""The support API on a running broker: GET /v1/exchanges (find) and POST /v1/replays (replay)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.domain.models import State
from federation.runtime.broker import Broker, Submission
from replay.journal import TrailQuery
from tests.conftest import HK_APPLICATION, HK_MAPPING, SC_APPLICATION, hk_submission
from tests.integration.test_delivery import DONE, settle

PROBLEM = "application/problem+json"
SEARCH = "search:\n  applicant_fields: [applicant.hkid]\n"
BUGGY_HK_MAPPING = HK_MAPPING.replace("from: applicant.hkid,", "from: applicant.hkid_number,")


def with_search(root: Path) -> Path:
    """The make_config catalogue with search by applicant (HKID) switched on."""
    partners = root / "partners.yaml"
    partners.write_text(partners.read_text(encoding="utf-8") + SEARCH, encoding="utf-8")
    return root


def sc_submission(key: str) -> Submission:
    return Submission(
        source="gd-portal",
        partner="sc",
        service="115101000000000000-HF-WITHDRAW",
        idempotency_key=key,
        application=SC_APPLICATION,
    )


async def submit_all(broker: Broker, subs: list[Submission]) -> list[str]:
    """Submit in order and wait until every one has ended; returns the exchange ids."""
    ids = [(await broker.submit(sub))[0].id for sub in subs]
    for xid in ids:
        ex = await settle(broker, xid, DONE)
        assert ex.state in DONE
    return ids


async def state_of(broker: Broker, xid: str) -> State:
    ex = await broker.get(xid)
    assert ex is not None
    return ex.state


async def get_json(http: aiohttp.ClientSession, path: str) -> tuple[int, str, Any]:
    async with http.get(path) as r:
        return r.status, r.content_type, await r.json(content_type=None)


async def post_json(http: aiohttp.ClientSession, body: Any) -> tuple[int, str, Any]:
    async with http.post("/v1/replays", json=body) as r:
        return r.status, r.content_type, await r.json(content_type=None)


def five() -> list[Submission]:
    """Three hk delivered, one sc delivered, one hk rejected (no registration mark) — in order."""
    no_mark = {"applicant": HK_APPLICATION["applicant"]}
    return [
        hk_submission("a-1"),
        sc_submission("a-2"),
        hk_submission(
            "a-3", application={**HK_APPLICATION, "vehicle": {"registration_mark": "X1"}}
        ),
        hk_submission("a-4", application=no_mark),
        hk_submission(
            "a-5", application={**HK_APPLICATION, "vehicle": {"registration_mark": "X2"}}
        ),
    ]


async def test_search_filters_newest_first_and_pages(make_config, simulators, broker_at) -> None:
    """Filters narrow the list, newest first; following 'next' pages through all, filters kept."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        ids = await submit_all(broker, five())

        async def keys(query: str) -> list[str]:
            status, _, body = await get_json(http, f"/v1/exchanges?{query}")
            assert status == 200, body
            return [e["idempotency_key"] for e in body["exchanges"]]

        everything = await keys("")
        rejected = await keys("state=rejected")
        sc = await keys("partner=sc")
        delivered_hk = await keys("state=delivered&partner=hk&service=TD-VL-RENEW")
        by_key = await keys("key=a-3")
        by_error = await keys("error=failed%20the%20mapping")
        by_id = await keys(f"id={ids[1]}")
        none = await keys("source=nobody")
        pages: list[list[str]] = []
        link: str | None = "/v1/exchanges?partner=hk&limit=2"
        while link is not None:
            status, _, body = await get_json(http, link)
            assert status == 200, body
            pages.append([e["idempotency_key"] for e in body["exchanges"]])
            link = body.get("next")
            assert link is None or "partner=hk" in link
    assert everything == ["a-5", "a-4", "a-3", "a-2", "a-1"]
    assert rejected == ["a-4"]
    assert sc == ["a-2"]
    assert delivered_hk == ["a-5", "a-3", "a-1"]
    assert by_key == ["a-3"]
    assert by_error == ["a-4"]
    assert by_id == ["a-2"]
    assert none == []
    assert pages == [["a-5", "a-4"], ["a-3", "a-1"], []]


async def test_search_by_applicant_reference(make_config, simulators, broker_at) -> None:
    """An HKID typed differently finds the applications that carry it, and only those."""
    root = with_search(make_config())
    sims = await simulators(root)
    other = {**HK_APPLICATION, "applicant": {**HK_APPLICATION["applicant"], "hkid": "C668668(E)"}}
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        await submit_all(broker, [hk_submission("p-1"), hk_submission("p-2", application=other)])
        _, _, k = await get_json(http, "/v1/exchanges?applicant=k802133%20(3)")
        _, _, c = await get_json(http, "/v1/exchanges?applicant=%EF%BC%A3668668%EF%BC%88E%EF%BC%89")
        _, _, again = await get_json(http, "/v1/exchanges?applicant=K802133(3)&partner=hk")
        searches = await broker.journal.trail(TrailQuery(action="search", limit=10))
    assert [e["idempotency_key"] for e in k["exchanges"]] == ["p-1"]
    assert [e["idempotency_key"] for e in c["exchanges"]] == ["p-2"]
    assert [e["idempotency_key"] for e in again["exchanges"]] == ["p-1"]
    # The audit trail names the applicant searched for by keyed reference, never the ID itself.
    targets = [e.target for e in searches]
    assert len(targets) == 3
    assert not any("802133" in t or "668668" in t for t in targets), targets
    assert all("applicant=ref%3A" in t for t in targets)
    assert targets[0].replace("&partner=hk", "") == targets[2]  # the same person, the same ref


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("colour=red", "unknown filter(s): colour"),
        ("state=lost", "'lost' is not a state"),
        ("limit=many", "limit must be a whole number"),
        ("limit=5000", "limit must be between 1 and 1000"),
        ("since=yesterday", "'yesterday' is not a time"),
    ],
)
async def test_a_bad_filter_is_400_problem_details(make_config, broker_at, query, says) -> None:
    """Every filter the API cannot understand is answered 400 invalid-query, saying what is wrong."""
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        status, ctype, body = await get_json(http, f"/v1/exchanges?{query}")
    assert (status, ctype) == (400, PROBLEM)
    assert body["type"] == "urn:tongban:problem:invalid-query"
    assert says in body["detail"]


@pytest.mark.parametrize(
    ("body", "slug", "says"),
    [
        (
            {"mode": "resend", "exchange_id": "X", "reason": "r", "force": True},
            "invalid-request",
            "unknown field(s): force",
        ),
        ({"mode": "again", "exchange_id": "X", "reason": "r"}, "invalid-request", "mode must be"),
        ({"mode": "resend", "reason": "r"}, "invalid-request", "give an exchange_id or a filter"),
        (
            {"mode": "resend", "filter": {"state": "lost"}, "reason": "r"},
            "invalid-query",
            "'lost' is not a state",
        ),
        (
            {"mode": "resend", "filter": {"state": "failed"}},
            "invalid-request",
            "a replay needs a reason",
        ),
        (
            {"mode": "resend", "filter": {"state": "failed"}, "reason": "  "},
            "invalid-request",
            "a replay needs a reason",
        ),
        (["resend"], "invalid-request", "body must be a JSON object"),
    ],
)
async def test_a_bad_replay_request_is_400_problem_details(
    make_config, broker_at, body, slug, says
) -> None:
    """Unknown fields, a bad mode or filter, no target, no reason: 400 with what is wrong."""
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        status, ctype, answer = await post_json(http, body)
    assert (status, ctype) == (400, PROBLEM), answer
    assert answer["type"] == f"urn:tongban:problem:{slug}"
    assert says in answer["detail"]


async def test_a_filter_that_is_not_an_object_is_400(make_config, broker_at) -> None:
    """`"filter": "state=failed"` is a client mistake (400), not an internal error (500)."""
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        status, ctype, answer = await post_json(
            http, {"mode": "resend", "filter": "state=failed", "reason": "r", "dry_run": True}
        )
    assert (status, ctype) == (400, PROBLEM), answer
    assert answer["type"] == "urn:tongban:problem:invalid-request"


async def test_dry_run_lists_and_changes_nothing_and_bulk_needs_confirm(
    make_config, simulators, broker_at
) -> None:
    """A dry run lists what would be replayed or skipped and why; unconfirmed bulk: 400, no change."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        ids = await submit_all(broker, five())
        s1, _, resend = await post_json(
            http, {"mode": "resend", "filter": {"partner": "hk"}, "dry_run": True}
        )
        s2, ctype, unconfirmed = await post_json(
            http, {"mode": "remap", "filter": {"partner": "hk"}, "reason": "check"}
        )
        states = [await state_of(broker, xid) for xid in ids]
    assert s1 == 200
    assert resend["would_replay"] == [ids[4], ids[2], ids[0]]
    assert resend["would_skip"] == [
        {"id": ids[3], "why": resend["would_skip"][0]["why"], "code": "never-sent"}
    ]
    assert "never sent" in resend["would_skip"][0]["why"]
    assert (s2, ctype) == (400, PROBLEM)
    assert unconfirmed["type"] == "urn:tongban:problem:confirmation-required"
    assert "would replay 4 exchange(s)" in unconfirmed["detail"]
    assert unconfirmed["would_replay"] == [ids[4], ids[3], ids[2], ids[0]]
    assert [s.value for s in states] == ["delivered"] * 3 + ["rejected", "delivered"]


async def test_a_replay_filter_keeps_its_before_cursor(make_config, simulators, broker_at) -> None:
    """A replay filter with `before` takes only exchanges older than it, as the search does."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        ids = await submit_all(broker, five())
        _, _, found = await get_json(http, f"/v1/exchanges?state=delivered&before={ids[2]}")
        _, _, plan = await post_json(
            http,
            {"mode": "resend", "filter": {"state": "delivered", "before": ids[2]}, "dry_run": True},
        )
    assert [e["id"] for e in found["exchanges"]] == [ids[1], ids[0]]
    assert plan["would_replay"] == [ids[1], ids[0]]


async def test_single_resend_is_delivered_by_the_running_broker(
    make_config, simulators, broker_at
) -> None:
    """A failed exchange replayed by id is sent again with the same key and delivered."""
    root = make_config(max_attempts=2)
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        [xid] = await submit_all(broker, [hk_submission("once")])
        assert await state_of(broker, xid) is State.FAILED
        sims["hk"].behaviour.fail_ratio = 0.0
        status, _, answer = await post_json(
            http, {"mode": "resend", "exchange_id": xid, "reason": "TD back"}
        )
        done = await settle(broker, xid, {State.DELIVERED})
    assert status == 200, answer
    assert answer["replayed"] == [xid] and answer["skipped"] == []
    assert done.state is State.DELIVERED
    assert done.idempotency_key == "once" and sims["hk"].seen[xid].count == 1  # its id: the key
    replayed = [e for e in done.events if e.kind == "replayed"]
    assert [(e.data["by"], e.data["mode"], e.data["reason"]) for e in replayed] == [
        ("loopback", "resend", "TD back")  # the acting principal: an unguarded broker's own host
    ]
    assert replayed[0].data["batch"] == answer["batch"]


async def test_confirmed_bulk_remap_delivers_what_a_fixed_mapping_rejected(
    make_config, simulators, broker_at
) -> None:
    """Rejected by a mapping bug; fixed, reloaded, remapped in bulk with confirm: all delivered."""
    root = make_config(hk_mapping=BUGGY_HK_MAPPING)
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        subs = [hk_submission(f"bug-{i}", application={**HK_APPLICATION, "n": i}) for i in range(3)]
        ids = await submit_all(broker, subs)
        assert [await state_of(broker, x) for x in ids] == [State.REJECTED] * 3
        (root / "mappings" / "hk-vl.yaml").write_text(HK_MAPPING, encoding="utf-8")
        async with http.post("/v1/admin/reload") as r:
            assert r.status == 200
        status, _, answer = await post_json(
            http,
            {
                "mode": "remap",
                "filter": {"state": "rejected", "partner": "hk"},
                "reason": "fixed mapping",
                "confirm": True,
            },
        )
        done = [await settle(broker, x, {State.DELIVERED}) for x in ids]
        again_status, _, again = await post_json(
            http,
            {"mode": "remap", "filter": {"state": "rejected"}, "reason": "again", "confirm": True},
        )
    assert status == 200, answer
    assert sorted(answer["replayed"]) == sorted(ids)
    assert [ex.state for ex in done] == [State.DELIVERED] * 3
    assert [ex.idempotency_key for ex in done] == ["bug-0", "bug-1", "bug-2"]
    assert {k: sims["hk"].seen[k].count for k in ids} == dict.fromkeys(ids, 1)
    assert all(ex.mapped is not None and ex.mapped["owner"]["hkid"] == "K802133(3)" for ex in done)
    assert again_status == 200 and again["replayed"] == []  # nothing is queued twice


async def test_an_altered_record_is_answered_as_a_damaged_journal(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """An event whose sealed bytes were changed behind the journal's back does not open: GET of
    its exchange is 500 journal-damaged problem details (not a bare internal error), in the
    caller's language, the journal unchanged; the other exchanges still read."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "journal.sqlite"
    async with (
        broker_at(root, sims, journal=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        altered, kept = await submit_all(broker, [hk_submission("d-1"), hk_submission("d-2")])
        with contextlib.closing(sqlite3.connect(journal)) as conn, conn:
            seq, data = conn.execute(
                "SELECT seq, data FROM events WHERE exchange_id = ? AND kind = 'mapped'",
                (altered,),
            ).fetchone()
            flipped = bytes(data[:-1]) + bytes([data[-1] ^ 1])
            conn.execute("UPDATE events SET data = ? WHERE seq = ?", (flipped, seq))
        status, ctype, body = await get_json(http, f"/v1/exchanges/{altered}")
        assert (status, ctype) == (500, "application/problem+json")
        assert body["type"] == "urn:tongban:problem:journal-damaged"
        async with http.get(
            f"/v1/exchanges/{altered}", headers={"Accept-Language": "zh-Hant"}
        ) as r:
            assert (await r.json(content_type=None))[
                "title"
            ] == "日誌庫中有一筆記錄無法按寫入時的內容讀出"
        status, _, body = await get_json(http, f"/v1/exchanges/{kept}")
        assert status == 200 and body["id"] == kept
