"""A request no route takes (a path no route answers, 404; a method its path does not take, 405)
and a console form past the app's size limit (aiohttp's own 413) are answered with problem
details and kept in the journal's refusals, as every refusal: the path without its query string
(its first characters when it is very long, storable when it is not UTF-8), the status and the
problem type, never the body (no route took one), only its size. On SQLite, PostgreSQL and in
memory, through the real HTTP app."""

from __future__ import annotations

import io
from typing import Any, cast

import aiohttp
import orjson

from federation.logging import capture_logs
from replay.journal import JournalAdmin, Refusal

HKID = "K802133(3)"  # typed into a query string or a body no route takes: never kept
PROBLEM = "urn:tongban:problem:"
PATH_KEPT = 1024  # characters of a path kept with its refusal (edge.PATH_KEPT)


async def call(url: str, method: str, path: str, body: bytes = b"") -> tuple[int, Any, Any]:
    """The status, the problem details and the headers of one request."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{url}{path}", data=io.BytesIO(body) if body else None, headers=headers
        ) as r,
    ):
        assert r.content_type == "application/problem+json", await r.text()
        return r.status, orjson.loads(await r.read()), r.headers


async def refusals(broker: Any) -> list[Refusal]:
    return await cast(JournalAdmin, broker.journal).refusals(100)


def line(r: Refusal) -> tuple[str, str, int, str, bytes, int]:
    return (r.method, r.path, r.status, r.problem, r.body, r.body_bytes)


async def test_a_path_or_method_no_route_takes_is_journalled(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    body = f"applicant={HKID}&password=hunter2".encode()
    with capture_logs() as logs:
        async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
            missing = await call(url, "GET", f"/v1/no-such-thing?applicant={HKID}")
            posted = await call(url, "POST", "/v1/nowhere", body)
            wrong = await call(url, "DELETE", "/v1/partners")
            kept = [line(r) for r in await refusals(broker)][::-1]
    assert missing[:2] == (
        404,
        {
            "type": PROBLEM + "not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no route answers this path",
            "instance": "/v1/no-such-thing",
        },
    )
    assert posted[0] == 404
    assert wrong[0] == 405 and wrong[1]["type"] == PROBLEM + "method-not-allowed"
    assert "GET" in wrong[1]["allowed"] and "GET" in wrong[2]["Allow"]
    assert kept == [
        ("GET", "/v1/no-such-thing", 404, "not-found", b"", 0),
        ("POST", "/v1/nowhere", 404, "not-found", b"", len(body)),
        ("DELETE", "/v1/partners", 405, "method-not-allowed", b"", 0),
    ]
    assert "802133" not in repr(logs) and "hunter2" not in repr(logs)


async def test_a_long_or_undecodable_unrouted_path_is_kept_bounded_and_storable(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    long = "/v1/" + "x" * 5000
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        assert (await call(url, "GET", long))[0] == 404
        assert (await call(url, "GET", "/v1/a%FF%00b"))[0] == 404
        odd, cut = await refusals(broker)
    assert cut.path == f"{long[:PATH_KEPT]}…({len(long)} characters)"
    assert odd.path == "/v1/a%FF\\x00b" and odd.problem == "not-found"


async def test_a_console_form_past_the_apps_limit_is_journalled_without_its_body(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """aiohttp's own 413 (the form reader past ``client_max_size``): kept, the size only."""
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        limit = broker.catalogue.config.broker.max_body_bytes
        body = b"key=" + b"s" * (limit + 4096)
        status, problem, _ = await call(url, "POST", "/console/sign-in", body)
        kept = await refusals(broker)
    assert status == 413 and problem["type"] == PROBLEM + "body-too-large"
    assert [line(r) for r in kept] == [
        ("POST", "/console/sign-in", 413, "body-too-large", b"", len(body))
    ]
