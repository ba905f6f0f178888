"""The parts of a request aiohttp could not parse that a refusal keeps: the method and path of a
first line that reads as a request line (no query string, bounded, storable), nothing of one that
does not; the refused request's start among several sent at once, never a body's; 431 for
headers past the limits after a whole request line; and a writer whose journal hangs stops
within its drain, counting what it had not written."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong

from federation.api.unparsed import (
    EdgeRefusals,
    failing_head,
    request_line,
    unparsed_detail,
    unparsed_refusal,
    unparsed_status,
)
from federation.logging import capture_logs
from replay.journal import Journal


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            b"GET /v1/partners?applicant=K802133(3) HTTP/1.1\r\nHost: x\r\n",
            ("GET", "/v1/partners", True),
        ),
        (b"POST /v1/a%FF%00b#frag HTTP/1.1\r\n", ("POST", "/v1/a\\udcff\\x00b", True)),
        (b"NOT HTTP AT ALL\r\n", ("", "", True)),
        (b"Bearer sk-live-1 /x\r\n", ("", "", True)),  # no path second
        (b"\x16\x03\x01\x00\xa5\x01", ("", "", False)),
        (b"G@T /x HTTP/1.1\r\n", ("", "", True)),
        (b"GET /" + b"p" * 3000, ("GET", "/" + "p" * 1023 + "…(cut)", False)),
        (b"", ("", "", False)),
    ],
)
def test_the_first_line_kept(head: bytes, expected: tuple[str, str, bool]) -> None:
    """Method and path only from a line that reads as a request line."""
    assert request_line(head[:2048]) == expected


def test_headers_past_the_limits_are_431_only_after_a_whole_request_line() -> None:
    """A header line too long or too many headers: 431; a request line too long stays 400."""
    too_long = LineTooLong(b"X-Big: aaa", 8190)
    assert unparsed_status(400, too_long, True) == 431
    assert unparsed_status(400, BadHttpMessage("Too many headers received"), True) == 431
    assert unparsed_status(400, too_long, False) == 400
    assert unparsed_status(400, BadHttpMethod("NOT"), True) == 400


def test_the_detail_kept_names_the_error_type_never_its_message() -> None:
    """aiohttp's message quotes the line it could not read; the row keeps its type only."""
    exc = BadHttpMessage("Invalid HTTP header: b'Authorization: Bearer sk-live-1'")
    assert "sk-live" not in unparsed_detail(400, exc)
    assert "BadHttpMessage" in unparsed_detail(400, exc)


GOOD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
BROKEN = b"POST /v1/second HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"
LONG = b"GET /v1/third HTTP/1.1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n"
LOOKALIKE = b"GET /v1/K802133 HTTP/1.1\r\n"  # a body reading as a request line
SIZED = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(LOOKALIKE) + LOOKALIKE
CHUNKED = (
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n"
    + LOOKALIKE
    + b"\r\n0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("window", "cut", "first"),
    [
        (LONG + GOOD, False, b"GET /v1/third "),
        (GOOD + LONG, False, b"GET /v1/third "),
        (GOOD + GOOD + BROKEN, False, b"POST /v1/second "),
        (SIZED + GOOD + BROKEN, False, b"POST /v1/second "),
        (SIZED + LONG, False, b"GET /v1/third "),
        (CHUNKED + BROKEN, False, b"POST /v1/second "),
        (b"NOT HTTP AT ALL\r\n\r\n", False, b"NOT HTTP "),
        (GOOD + b"GET /v1/fourth HTTP/1.1\r\nHo", True, b""),  # cut before the refusal
    ],
)
async def test_the_refused_request_is_found_among_those_sent_at_once(
    window: bytes, cut: bool, first: bytes
) -> None:
    """Read again with the server's limits, the bytes from the refused request's first line."""
    loop = asyncio.get_running_loop()
    head = failing_head(window, cut=cut, limits={}, loop=loop)
    assert head.startswith(first) and len(head) <= 2048


class Hanging:
    """A journal whose writes never end."""

    async def refuse(self, _: Any) -> None:
        await asyncio.Event().wait()


async def test_a_writer_whose_journal_hangs_stops_within_its_drain() -> None:
    """The stop waits its drain, then cancels the write in flight and counts it and the queued
    ones as dropped (logged), no task left behind."""
    row = unparsed_refusal(remote="", method="", path="", status=400, slug="bad-request", detail="")
    with capture_logs() as logs:
        async with EdgeRefusals(cast(Journal, Hanging()), pending=2, drain=0.05) as refusals:
            for _ in range(4):  # two queued, then two dropped; the writer takes one
                refusals.keep(row)
            await asyncio.sleep(0.01)
    assert refusals.dropped == 4  # two dropped, one cut in its write, one still queued
    logged = [e for e in logs if e["event"] == "edge_refusals_dropped"]
    assert sum(e["dropped"] for e in logged) == 4
