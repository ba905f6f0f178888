"""The HTTP edge of a running broker over real sockets: no Server banner, a stalled body cut after
``broker.body_timeout`` and journalled, aiohttp's own refusals as problem details, and search
filters that are not numbers or cursors answered 400."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from tests.conftest import HK_APPLICATION

PROBLEM = "application/problem+json"


@pytest.fixture
def quick_config(make_config) -> Path:
    """The test catalogue with a body timeout of 300 ms."""
    root: Path = make_config()
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sources:\n", "broker:\n  body_timeout: 300ms\nsources:\n", 1))
    return root


async def raw(
    url: str, data: bytes, *, pause_after: bool = False
) -> tuple[str, dict[str, str], bytes]:
    """Send ``data`` as it is on a fresh connection; the status line, headers and body read back
    (with ``pause_after``, the connection is left open without sending more)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10 if pause_after else 5)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


async def test_no_answer_carries_a_server_header(make_config, broker_at) -> None:
    """Success, a problem, health and aiohttp's own 400 all come without a Server header."""
    root = make_config()
    body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
    async with broker_at(root) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        seen = {}
        async with http.post(
            "/v1/exchanges",
            json={**body, "application": HK_APPLICATION},
            headers={"Idempotency-Key": "srv-1"},
        ) as r:
            seen["accepted"] = (r.status, r.headers.get("Server"))
        async with http.get("/v1/nothing-here") as r:
            seen["not found"] = (r.status, r.headers.get("Server"))
        async with http.get("/healthz") as r:
            seen["health"] = (r.status, r.headers.get("Server"))
        status, headers, _ = await raw(url, b"GARBAGE\r\n\r\n")
        seen["malformed"] = (int(status.split()[1]), headers.get("server"))
    assert seen == {
        "accepted": (202, None),
        "not found": (404, None),
        "health": (200, None),
        "malformed": (400, None),
    }


async def test_a_stalled_body_is_cut_answered_408_and_journalled(quick_config, broker_at) -> None:
    """A client that sends half its body and stops gets a 408 problem and a refusal row with the
    part it sent, after the configured timeout rather than never."""
    body = orjson.dumps(
        {
            "source": "gd-portal",
            "partner": "hk",
            "service": "TD-VL-RENEW",
            "application": HK_APPLICATION,
        }
    )
    half = body[: len(body) // 2]
    head = (
        "POST /v1/exchanges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: stall-1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with broker_at(quick_config) as (broker, url):
        started = asyncio.get_running_loop().time()
        status, headers, answer = await raw(url, head + half, pause_after=True)
        took = asyncio.get_running_loop().time() - started
        refusals = await broker.journal.refusals()
    assert status.split()[1] == "408"
    assert headers["content-type"] == PROBLEM
    problem = orjson.loads(answer)
    assert problem["type"] == "urn:tongban:problem:body-timeout"
    assert took < 5
    assert [(r.problem, r.status, r.body, r.idempotency_key) for r in refusals] == [
        ("body-timeout", 408, half, "stall-1")
    ]


@pytest.mark.parametrize(
    ("name", "request_bytes", "status"),
    [
        ("a malformed request line", b"NOT HTTP AT ALL\r\n\r\n", 400),
        (
            "a header line too long",
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
            431,
        ),
        ("a broken header", b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    ],
)
async def test_aiohttps_own_refusals_are_problem_details(
    make_config, broker_at, name: str, request_bytes: bytes, status: int
) -> None:
    """What aiohttp refuses before any route runs is answered as problem details, not text."""
    async with broker_at(make_config()) as (_, url):
        line, headers, body = await raw(url, request_bytes)
    got = int(line.split()[1])
    assert got in (400, status), name
    assert headers["content-type"] == PROBLEM, name
    problem = orjson.loads(body)
    assert problem["status"] == got
    assert problem["type"].startswith("urn:tongban:problem:")


@pytest.mark.parametrize(
    "query",
    ["since=nan", "since=inf", "until=-inf", "since=NaN", "before=not-a-cursor", "before=%00"],
)
async def test_search_filters_that_are_no_time_or_cursor_are_400(
    make_config, broker_at, query: str
) -> None:
    """Non-finite times and cursors that are not exchange ids are refused as invalid queries."""
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.get(f"/v1/exchanges?{query}") as r:
            status, ctype, problem = r.status, r.content_type, await r.json(content_type=None)
    assert (status, ctype) == (400, PROBLEM)
    assert problem["type"] == "urn:tongban:problem:invalid-query"
