"""The HTTP edge over real loopback sockets: a client that drops mid-body, and every kind of error
answered as problem details by the one middleware, with nothing of the request in the log."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from aiohttp import web

from federation.api.edge import problems_middleware
from federation.api.net import start_site
from federation.domain.errors import (
    IdempotencyConflict,
    JournalUnavailable,
    MappingError,
    Problem,
    RefusalKind,
    RequestRefused,
)
from federation.logging import configure
from tests.waiting import wait_for

PROBLEM = "application/problem+json"
ID_NUMBER = "350203199208200046"
NAME = "余丽萍"
PHONE = "+852 9123 4567"
BANK_ACCOUNT = "6222 0212 3456 7890 128"
PERSONAL = (ID_NUMBER, NAME, PHONE, BANK_ACCOUNT)
APPLICATION = {
    "applicant": {"name": NAME, "id_number": ID_NUMBER, "phone": PHONE, "bank": BANK_ACCOUNT},
    "withdrawal": {"amount": "12800.00", "currency": "CNY"},
}


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The process's logging configured as in `tongban serve` (JSON), into a StringIO; reset after.

    The API's modules and their module-level loggers were imported long before this runs."""
    stream = io.StringIO()
    configure(stream=stream, json=True)
    yield stream
    structlog.reset_defaults()


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON lines written so far."""
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


# --- a client that goes away mid-body ------------------------------------------------------------


def half_a_submission() -> tuple[bytes, int]:
    """The first half of a submission (holding all its personal data) and the whole one's length."""
    whole = orjson.dumps(
        {
            "application": APPLICATION,
            "source": "gd-portal",
            "partner": "sc",
            "service": "115101000000000000-HF-WITHDRAW",
            "note": "x" * 400,
        }
    )
    half = whole[: len(whole) // 2]
    assert all(secret.encode() in half for secret in PERSONAL)
    return half, len(whole)


async def send_and_drop(url: str, head: str, body: bytes) -> None:
    """Open a connection, send the request head and part of a body, and close it."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_client_that_drops_mid_body_leaves_a_refusal_and_nothing_in_the_log(
    make_config: Callable[..., Any],
    broker_at: Callable[..., Any],
    log_stream: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    framing: str,
) -> None:
    """Half a body, then the connection closes: journalled as a refusal with that half; the log
    says only status and problem, no 500, no traceback, nothing of the application."""
    caplog.set_level(logging.DEBUG)
    half, whole = half_a_submission()
    head = "POST /v1/exchanges HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\n"
    head += "Idempotency-Key: k-half\r\n"
    if framing == "chunked":
        head += "Transfer-Encoding: chunked\r\n\r\n"
        sent = f"{len(half):x}\r\n".encode() + half + b"\r\n"
    else:
        head += f"Content-Length: {whole}\r\n\r\n"
        sent = half
    async with broker_at(make_config()) as (broker, url):
        await send_and_drop(url, head, sent)
        [refusal] = await wait_for(
            broker.journal.refusals, lambda rs: len(rs) == 1, what="the refusal"
        )
    assert (refusal.status, refusal.problem) == (400, "incomplete-body")
    assert (refusal.path, refusal.idempotency_key) == ("/v1/exchanges", "k-half")
    assert (refusal.body, refusal.body_bytes) == (half, len(half))
    [line] = [line for line in log_lines(log_stream) if line.get("component") == "api"]
    assert {k: line[k] for k in ("event", "status", "problem")} == {
        "event": "intake_refused",
        "status": 400,
        "problem": "incomplete-body",
    }
    logged = log_stream.getvalue() + caplog.text
    assert "request_failed" not in logged and "Traceback" not in logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    for secret in PERSONAL:
        assert secret not in logged, secret


# --- the one middleware --------------------------------------------------------------------------


def fail(exc: Exception) -> Callable[[web.Request], Any]:
    """A handler that raises ``exc``."""

    async def handler(request: web.Request) -> web.Response:
        raise exc

    return handler


async def take_application(request: web.Request) -> web.Response:
    """A handler with a bug: the message of the error it raises quotes the applicant's name."""
    data = await request.json()
    return web.json_response({"age": int(data["applicant"]["name"])})


@pytest.fixture
async def edge_url() -> AsyncIterator[str]:
    """An app of handlers that raise, behind the problems middleware, listening on loopback."""
    app = web.Application(middlewares=[problems_middleware])
    problem = Problem(path="applicant.id_number", message="not an ID number")
    for case, exc in {
        "refused": RequestRefused(RefusalKind.CONFLICT, "lifecycle-out-of-order", "too late"),
        "journal-down": JournalUnavailable("database is locked"),
        "reused-key": IdempotencyConflict("01JDX4Y6Z8A0B2C4D6E8F0G2H4"),
        "unmappable": MappingError([problem], mapping="mappings/sc-hf.yaml"),
    }.items():
        app.router.add_get(f"/fail/{case}", fail(exc))
    app.router.add_post("/things/{key}", take_application)
    runner, url = await start_site(app)
    yield url
    await runner.cleanup()


@pytest.mark.parametrize(
    ("case", "status", "slug"),
    [
        ("refused", 409, "lifecycle-out-of-order"),
        ("journal-down", 503, "journal-unavailable"),
        ("reused-key", 409, "idempotency-conflict"),
        ("unmappable", 422, "mapping-failed"),
    ],
)
async def test_domain_errors_are_answered_as_problem_details(
    edge_url: str, case: str, status: int, slug: str
) -> None:
    """Each domain error a handler lets through gets its status and problem, never a 500."""
    async with aiohttp.ClientSession() as http, http.get(f"{edge_url}/fail/{case}") as resp:
        assert resp.status == status
        assert resp.content_type == PROBLEM
        body = await resp.json(content_type=PROBLEM)
    assert (body["status"], body["type"]) == (status, f"urn:tongban:problem:{slug}")
    assert body["instance"] == f"/fail/{case}"


async def test_the_journal_down_is_a_503_to_retry(edge_url: str) -> None:
    """JournalUnavailable answers 503 with Retry-After."""
    async with aiohttp.ClientSession() as http, http.get(f"{edge_url}/fail/journal-down") as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"


async def test_an_unmappable_application_names_the_failing_field(edge_url: str) -> None:
    """A MappingError that escapes is a 422 naming each field that failed."""
    async with aiohttp.ClientSession() as http, http.get(f"{edge_url}/fail/unmappable") as resp:
        body = await resp.json(content_type=PROBLEM)
    assert body["errors"] == [{"path": "applicant.id_number", "message": "not an ID number"}]


async def test_an_unexpected_error_is_a_500_logged_without_the_request(
    edge_url: str, log_stream: io.StringIO
) -> None:
    """A bug is a 500 problem; its log line has the route, error type and traceback, and nothing
    of the body, the path's key or the error's message (which quotes the body)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{edge_url}/things/key-7Q2", json=APPLICATION) as resp,
    ):
        assert resp.status == 500
        body = await resp.json(content_type=PROBLEM)
    assert body["type"] == "urn:tongban:problem:internal-error"
    assert NAME not in orjson.dumps(body).decode()
    [line] = log_lines(log_stream)
    assert line["event"] == "request_failed"
    assert (line["level"], line["method"], line["route"]) == ("error", "POST", "/things/{key}")
    assert line["error"] == "ValueError"
    assert "in take_application" in line["exception"]
    assert "builtins.ValueError: (message withheld)" in line["exception"]
    assert "key-7Q2" not in log_stream.getvalue()
    for secret in PERSONAL:
        assert secret not in log_stream.getvalue(), secret
