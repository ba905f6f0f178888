"""The intake API over real loopback sockets: happy path, idempotency and every kind of bad input."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import HK_APPLICATION
from tests.waiting import wait_for

BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}
PROBLEM = "application/problem+json"


async def wait_for_state(
    http: aiohttp.ClientSession, location: str, states: set[str], timeout: float = 10.0
) -> dict[str, Any]:
    """Poll an exchange until it reaches one of ``states``; fail at ``timeout``."""

    async def view() -> dict[str, Any]:
        async with http.get(location) as resp:
            got: dict[str, Any] = await resp.json()
            return got

    return await wait_for(
        view, lambda v: v["state"] in states, what=f"{location} to be {states}", timeout=timeout
    )


async def test_application_is_accepted_journalled_and_delivered(
    make_config, simulators, broker_at
) -> None:
    """POST → 202 with Location; the exchange ends delivered with the partner's receipt and timings."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k1"}) as r:
            assert r.status == 202
            answer = await r.json()
            assert r.headers["Location"] == f"/v1/exchanges/{answer['id']}"
        view = await wait_for_state(
            http, r.headers["Location"], {"delivered", "failed", "rejected"}
        )
    assert view["state"] == "delivered"
    assert view["receipt"]["receipt_number"].startswith("HK")
    assert view["receipt"]["status"] == "RECEIVED"
    [attempt] = view["attempts"]
    assert attempt["outcome"] == "delivered"
    assert attempt["duration_ms"] > 0
    assert attempt["request"]["headers"]["Idempotency-Key"] == answer["id"]  # its own, not k1
    assert attempt["request"]["url"].endswith("/vehicle-licences/renewals")
    assert next(iter(view["mapping_versions"].values())).startswith("sha256:")
    seen = sims["hk"].seen[answer["id"]]
    assert seen.first_body["owner"] == {"name_en": "CHAN, Tai Man", "hkid": "K802133(3)"}
    assert seen.first_body["licence"] == {"period_months": 12}


async def test_application_is_journalled_before_the_202(
    make_config, simulators, broker_at, tmp_path
) -> None:
    """When 202 arrives, the exchange and its received event are already committed to the file."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "j.sqlite"
    async with (
        broker_at(root, sims, journal=journal) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k1"}) as r:
            xid = (await r.json())["id"]
            # A second, independent connection reads what has been committed.
            with sqlite3.connect(journal) as conn:
                row = conn.execute("SELECT state FROM exchanges WHERE id = ?", (xid,)).fetchone()
                kinds = [
                    k
                    for (k,) in conn.execute(
                        "SELECT kind FROM events WHERE exchange_id = ? ORDER BY seq", (xid,)
                    )
                ]
    assert row is not None
    assert kinds[0] == "received"


async def test_same_key_same_body_returns_the_same_exchange(
    make_config, simulators, broker_at
) -> None:
    """A retried submission is not a second application: 200 and the same id."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k1"}) as r1:
            first = await r1.json()
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k1"}) as r2:
            second = await r2.json()
            assert r2.status == 200
            assert r2.headers["Location"] == f"/v1/exchanges/{first['id']}"
        await wait_for_state(http, f"/v1/exchanges/{first['id']}", {"delivered"})
    assert second["id"] == first["id"]
    assert second["created"] is False
    assert sims["hk"].seen[first["id"]].count == 1


async def test_same_key_different_body_is_a_conflict(make_config, simulators, broker_at) -> None:
    """Reusing a key for another application is refused with 409 naming the first exchange."""
    root = make_config()
    sims = await simulators(root)
    other = {**BODY, "application": {**HK_APPLICATION, "vehicle": {"registration_mark": "XY9"}}}
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k1"}) as r1:
            first = await r1.json()
        async with http.post("/v1/exchanges", json=other, headers={"Idempotency-Key": "k1"}) as r2:
            assert r2.status == 409
            assert r2.content_type == PROBLEM
            problem = await r2.json()
        refusals = await broker.journal.refusals()
    assert problem["exchange_id"] == first["id"]
    assert problem["type"].endswith("idempotency-conflict")
    assert refusals[0].status == 409
    assert b"XY9" in refusals[0].body


@pytest.mark.parametrize(
    ("body", "headers", "status", "slug"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "malformed-json"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "invalid-request"),
        (b'{"partner": "hk"}', {"Content-Type": "application/json"}, 400, "invalid-request"),
        (
            b"partner=hk",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported-media-type",
        ),
        (b"<xml/>", {"Content-Type": "text/xml"}, 415, "unsupported-media-type"),
    ],
    ids=["malformed", "not-object", "missing-fields", "form", "xml"],
)
async def test_bad_bodies_get_problem_details_and_a_journal_record(
    make_config, simulators, broker_at, body: bytes, headers: dict[str, str], status: int, slug: str
) -> None:
    """Malformed or wrongly typed bodies: 400/415 problem details, never a 500, and a refusal row."""
    root = make_config()
    async with broker_at(root) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post(
            "/v1/exchanges", data=body, headers={**headers, "Idempotency-Key": "k"}
        ) as r:
            assert r.status == status
            assert r.content_type == PROBLEM
            problem = await r.json()
        refusals = await broker.journal.refusals()
    assert problem["type"] == f"urn:tongban:problem:{slug}"
    assert problem["status"] == status
    assert problem["detail"]
    assert refusals[0].problem == slug
    assert refusals[0].body == body


async def test_missing_fields_are_all_listed(make_config, broker_at) -> None:
    """A body missing several fields gets one 400 that lists every one of them."""
    root = make_config()
    async with broker_at(root) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post(
            "/v1/exchanges", json={"partner": "hk", "extra": 1}, headers={"Idempotency-Key": "k"}
        ) as r:
            problem = await r.json()
    paths = {e["path"] for e in problem["errors"]}
    assert paths == {"source", "service", "application", "extra"}


@pytest.mark.parametrize(
    ("changes", "key", "status", "slug"),
    [
        ({"partner": "tw"}, "k", 404, "unknown-partner"),
        ({"service": "NO-SUCH-ITEM"}, "k", 404, "unknown-service"),
        ({"source": "somebody"}, "k", 400, "unknown-source"),
        ({}, None, 400, "missing-idempotency-key"),
        ({}, "x" * 300, 400, "missing-idempotency-key"),
    ],
    ids=["partner", "service", "source", "no-key", "long-key"],
)
async def test_unknown_targets_and_keys(
    make_config, broker_at, changes: dict[str, str], key: str | None, status: int, slug: str
) -> None:
    """Unknown partner or service → 404; unknown source or a missing/invalid key → 400."""
    root = make_config()
    headers = {"Idempotency-Key": key} if key else {}
    async with broker_at(root) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json={**BODY, **changes}, headers=headers) as r:
            assert r.status == status
            problem = await r.json()
        counts = await broker.journal.counts()
    assert problem["type"].endswith(slug)
    assert counts == {}


async def test_body_over_the_limit_is_413(make_config, broker_at) -> None:
    """A body over max_body_bytes gets 413 with the limit, announced or streamed."""
    root = make_config()
    big = {**BODY, "application": {**HK_APPLICATION, "attachment": "x" * (1024 * 1024 + 10)}}
    async with broker_at(root) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post(
            "/v1/exchanges",
            data=io.BytesIO(orjson.dumps(big)),
            headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
        ) as r:
            assert r.status == 413
            problem = await r.json()

        async def chunks():  # no Content-Length: the limit must hold while streaming
            for _ in range(20):
                yield b"x" * 65536

        async with http.post(
            "/v1/exchanges",
            data=chunks(),
            headers={"Idempotency-Key": "k2", "Content-Type": "application/json"},
        ) as r2:
            assert r2.status == 413
        refusals = await broker.journal.refusals()
    assert problem["limit"] == 1024 * 1024
    assert {r.problem for r in refusals} == {"body-too-large"}
    assert refusals[-1].body_bytes > 1024 * 1024


async def test_get_unknown_exchange_and_unknown_route(make_config, broker_at) -> None:
    """Unknown ids and routes answer 404 problem details; wrong methods 405."""
    root = make_config()
    async with broker_at(root) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.get("/v1/exchanges/01ARZ3NDEKTSV4RRFFQ69G5FAV") as r1:
            assert (r1.status, r1.content_type) == (404, PROBLEM)
        async with http.get("/v1/exchanges/../../etc/passwd") as r2:
            assert r2.status == 404
        async with http.get("/nothing-here") as r3:
            assert (r3.status, r3.content_type) == (404, PROBLEM)
        async with http.delete("/v1/exchanges") as r4:
            assert (r4.status, r4.content_type) == (405, PROBLEM)


async def test_health_readiness_partners_and_stats(make_config, simulators, broker_at) -> None:
    """healthz, readyz, the partner list and per-state counts answer as an operator expects."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.get("/healthz") as r:
            assert r.status == 200
        async with http.get("/readyz") as r:
            assert (await r.json())["status"] == "ready"
        async with http.get("/v1/partners") as r:
            partners = (await r.json())["partners"]
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k"}) as r:
            location = r.headers["Location"]
        await wait_for_state(http, location, {"delivered"})
        async with http.get("/v1/stats") as r:
            stats = await r.json()
        async with http.get("/v1/partners") as r:
            after = {p["id"]: p for p in (await r.json())["partners"]}
    assert {p["id"] for p in partners} == {"hk", "sc"}
    assert partners[0]["region"] == {"code": "81", "iso": "CN-HK"}
    assert stats["exchanges"] == {"delivered": 1}
    # the partner's answer time: none before a call, a positive figure after one
    assert {p["id"]: p["p95_ms"] for p in partners} == {"hk": None, "sc": None}
    assert after["hk"]["p95_ms"] > 0 and after["sc"]["p95_ms"] is None


async def test_payloads_only_on_request(make_config, simulators, broker_at) -> None:
    """The exchange view leaves out personal data unless ?include=payloads is asked for."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k"}) as r:
            location = r.headers["Location"]
        plain = await wait_for_state(http, location, {"delivered"})
        async with http.get(location, params={"include": "payloads"}) as r:
            full = await r.json()
    assert "application" not in plain
    assert "K802133(3)" not in str(plain)
    assert full["application"] == HK_APPLICATION
    assert full["mapped"]["owner"]["hkid"] == "K802133(3)"


async def test_journal_unavailable_answers_503(make_config, broker_at, tmp_path: Path) -> None:
    """If the journal cannot be written, intake says 503 with problem details and sends nothing."""
    root = make_config()
    async with broker_at(root) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        await broker.journal.close()  # as if the disk went away under the broker
        async with http.post("/v1/exchanges", json=BODY, headers={"Idempotency-Key": "k"}) as r:
            assert r.status == 503
            assert r.content_type == PROBLEM
            assert r.headers["Retry-After"]
        async with http.get("/readyz") as r:
            assert r.status == 503
        await broker.journal.open()  # let the context close cleanly
