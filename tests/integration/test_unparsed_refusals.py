"""What the server refuses before any app sees it (a request line or a header aiohttp cannot
parse: 400 bad-request; a header line too long or too many headers: 431 headers-too-large) is
answered as problem details and kept in the journal's refusals: the client's address, the status
and problem type, and the request line's method and path when the first line reads as one (no
query string, bounded), else empty. No header (a key, a cookie) and nothing of aiohttp's message
(which quotes the line) reaches the journal, its files or the logs. A flood of garbage loses no
refusal silently: each is a row or counted as dropped. Raw bytes over loopback sockets, on
SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import orjson
from aiohttp import web

from federation.api.net import start_site
from federation.api.unparsed import EdgeRefusals
from federation.logging import capture_logs
from replay.journal import Backend, JournalAdmin, Refusal
from tests.integration.test_console_form_refusals import holding
from tests.integration.test_http_edge import raw

BEARER = "Bearer sk-live-7f3a9c2e11d04b8e"  # a credential in a header: never kept
HKID = "K802133(3)"  # personal data in a query string or a header: never kept
SECRETS = ("sk-live-7f3a9c2e11d04b8e", "802133", "hunter2")

GARBAGE = b"NOT HTTP AT ALL\r\n\r\n"
BROKEN_HEADER = (
    f"GET /v1/partners?applicant={HKID} HTTP/1.1\r\nAuthorization: {BEARER}\r\n"
    "password hunter2\r\n\r\n"
).encode()
LONG_HEADER = (
    f"GET /healthz?applicant={HKID} HTTP/1.1\r\nHost: x\r\nAuthorization: {BEARER}"
    + "a" * 20000
    + "\r\n\r\n"
).encode()
MANY_HEADERS = (
    b"POST /v1/exchanges HTTP/1.1\r\nCookie: tongban_console=hunter2\r\n"
    + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(300))
    + b"\r\n"
)
LONG_LINE = b"GET /v1/" + b"p" * 10000 + b" HTTP/1.1\r\n\r\n"
TLS_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40


async def kept(journal: Any, count: int) -> list[Refusal]:
    """The journal's refusals once ``count`` are there (they are written in the background)."""
    admin = cast(JournalAdmin, journal)
    for _ in range(200):
        rows = await admin.refusals(100)
        if len(rows) >= count:
            return rows[::-1]
        await asyncio.sleep(0.02)
    return (await admin.refusals(100))[::-1]


def line(r: Refusal) -> tuple[str, str, int, str, bytes, int, str]:
    return (r.method, r.path, r.status, r.problem, r.body, r.body_bytes, r.remote)


async def test_requests_aiohttp_cannot_parse_are_journalled_without_their_headers(
    make_config: Any, broker_at: Any, journal_of: Any, tmp_path: Path
) -> None:
    """Each unparsable request is answered by its problem type and is one refusal row, the
    method and path when its request line read, no header, no query string, no body."""
    sent = [GARBAGE, BROKEN_HEADER, LONG_HEADER, MANY_HEADERS, LONG_LINE, TLS_HELLO]
    with capture_logs() as logs:
        async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
            answers = [await raw(url, data) for data in sent]
            rows = await kept(broker.journal, len(sent))
    problems = [orjson.loads(body) for _, _, body in answers]
    assert [(p["status"], p["type"].rsplit(":", 1)[1]) for p in problems] == [
        (400, "bad-request"),
        (400, "bad-request"),
        (431, "headers-too-large"),
        (431, "headers-too-large"),
        (400, "bad-request"),
        (400, "bad-request"),
    ]
    assert [int(status.split()[1]) for status, _, _ in answers] == [p["status"] for p in problems]
    local = "127.0.0.1"
    assert [line(r) for r in rows] == [
        ("", "", 400, "bad-request", b"", 0, local),
        ("GET", "/v1/partners", 400, "bad-request", b"", 0, local),
        ("GET", "/healthz", 431, "headers-too-large", b"", 0, local),
        ("POST", "/v1/exchanges", 431, "headers-too-large", b"", 0, local),
        ("GET", "/v1/" + "p" * 1020 + "…(cut)", 400, "bad-request", b"", 0, local),
        ("", "", 400, "bad-request", b"", 0, local),
    ]
    assert rows[1].detail == (
        "the request is not well-formed HTTP (BadHttpMessage); nothing of it is kept"
    )
    for r in rows:
        text = f"{r.method} {r.path} {r.problem} {r.detail} {r.remote}"
        assert not any(s in text for s in SECRETS), r
    assert not any(s in repr(logs) for s in SECRETS)
    assert "Traceback" not in repr(logs)
    assert not holding(tmp_path, list(SECRETS), sqlite="SQLite" in type(journal_of).__name__)


async def flood(journal: Backend, count: int, **writer: Any) -> tuple[list[str], EdgeRefusals]:
    """``count`` garbage connections at once against a bare edge server journalling by a writer
    made with ``writer``; the statuses answered, and the writer once the server has stopped."""
    async with EdgeRefusals(journal, **writer) as refusals:
        runner, url = await start_site(
            web.Application(), edge=True, refusals=refusals, access_log=None
        )
        try:
            answers = await asyncio.gather(*(raw(url, GARBAGE) for _ in range(count)))
        finally:
            await runner.cleanup()
    return [status.split()[1] for status, _, _ in answers], refusals


async def test_a_burst_of_garbage_is_one_row_per_connection(journal: Backend) -> None:
    """Fifty garbage connections at once: fifty 400s and fifty rows, none dropped."""
    statuses, refusals = await flood(journal, 50)
    rows = await cast(JournalAdmin, journal).refusals(100)
    assert statuses == ["400"] * 50
    assert (len(rows), refusals.dropped) == (50, 0)
    assert {(r.problem, r.status) for r in rows} == {("bad-request", 400)}


async def test_a_flood_past_the_queue_loses_no_refusal_silently(journal: Backend) -> None:
    """Past the writer's queue (four here) a refusal is dropped, not queued without bound: each
    of fifty is a row or counted as dropped, the count logged; the stop drains the queue (no
    task is left to be destroyed: warnings are errors)."""
    with capture_logs() as logs:
        statuses, refusals = await flood(journal, 50, pending=4)
    rows = await cast(JournalAdmin, journal).refusals(100)
    assert statuses == ["400"] * 50
    assert rows and refusals.dropped
    assert len(rows) + refusals.dropped == 50
    logged = [e for e in logs if e["event"] == "edge_refusals_dropped"]
    assert sum(e["dropped"] for e in logged) == refusals.dropped
    assert all(e["log_level"] == "warning" for e in logged)


async def test_a_journal_that_cannot_take_the_row_leaves_the_answer_as_it_is(
    journal: Backend,
) -> None:
    """The journal closed under the server: every garbage request is still answered 400, the
    failure is one log line per row naming the error's type, nothing of the request."""
    await journal.close()
    with capture_logs() as logs:
        statuses, refusals = await flood(journal, 3)
    assert statuses == ["400"] * 3
    failed = [e for e in logs if e["event"] == "refusal_not_journalled"]
    assert len(failed) == 3 and refusals.dropped == 0
    assert {e["problem"] for e in failed} == {"bad-request"}
    assert "NOT HTTP" not in repr(logs) and "Traceback" not in repr(logs)
