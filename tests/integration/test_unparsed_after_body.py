"""A request aiohttp cannot parse, sent on a kept-alive connection after a body read over several
reads, is answered and journalled as its own: its head may arrive in the same read as the body's
last bytes (by Content-Length, or chunked), or begin there and end in a later read. The row names
the refused request (431 for a header line too long after a whole request line), never a
fragment, nor a line of the body; where the body ran past what the connection keeps, the row
names nothing rather than something wrong. And a parsing error the handler meets while reading a
body is the app's to answer, never journalled as a request the server could not parse. Raw bytes
over loopback sockets, on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.http_exceptions import TransferEncodingError
from aiohttp.web import Request

from federation.api import edge
from federation.api.unparsed import WINDOW_KEPT
from tests.integration.test_http_edge import raw
from tests.integration.test_unparsed_keepalive import (
    BROKEN,
    LONG,
    LOOKALIKE,
    POSTED,
    answer,
    edge_rows,
)
from tests.integration.test_unparsed_refusals import GARBAGE, HKID, kept

CHUNKED = b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
EXCHANGE = (
    b"POST /v1/exchanges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)

# a refused head, one of whose header lines reads as a request line from its middle on
NOTED = LONG.replace(b"X-A:", f"X-Note: fetch /v1/{HKID} now\r\nX-A:".encode())

LARGE = (
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"
    + (LOOKALIKE * (200000 // len(LOOKALIKE) + 1))[:200000]
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def in_reads(url: str, head: bytes, *more: bytes) -> bytes:
    """``head`` (a POST /healthz with the start of its body) sent, and its 405 read back: the
    server has read it. Then each of ``more`` sent apart (a pause lets the server read each on
    its own); the status line of the last answer, read to the connection's end."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        await writer.drain()
        assert (await answer(reader)).startswith(b"HTTP/1.1 405"), "the head was not answered"
        for data in more:
            await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()
        return (await asyncio.wait_for(reader.read(), 5)).split(b"\r\n", 1)[0]
    finally:
        writer.close()


async def test_a_refused_request_in_the_read_that_ends_a_body_is_named(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """The body's last bytes and the refused request (or its start) in one read: by
    Content-Length, the head whole or ending in a later read (from the middle of a line that
    reads as a request line); chunked, over three reads; a body of 200 kB and the start of the
    refused head in one write, its end once the body was answered; a chunked body ending a
    read, the refused request in the next; a chunked body ending where the refused head
    begins, its end in the next read."""
    split, note = len(b"GET /v1/th"), NOTED.index(b"fetch")
    chunked_body = chunk(LOOKALIKE) + b"0\r\n\r\n"
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        answered = [
            await in_reads(url, POSTED + LOOKALIKE[:5], LOOKALIKE[5:] + LONG),
            await in_reads(url, POSTED + LOOKALIKE[:5], LOOKALIKE[5:] + BROKEN),
            await in_reads(url, POSTED + LOOKALIKE[:5], LOOKALIKE[5:] + LONG[:split], LONG[split:]),
            await in_reads(url, POSTED + LOOKALIKE[:5], LOOKALIKE[5:] + NOTED[:note], NOTED[note:]),
            await in_reads(
                url, CHUNKED + chunked_body[:9], chunked_body[9:20], chunked_body[20:] + LONG
            ),
            await in_reads(url, LARGE + NOTED[:note], NOTED[note:]),
            await in_reads(url, CHUNKED + chunked_body[:9], chunked_body[9:], LONG),
            await in_reads(
                url, CHUNKED + chunked_body[:9], chunked_body[9:] + NOTED[:note], NOTED[note:]
            ),
        ]
        rows = await edge_rows(broker.journal, len(answered))
    assert [a.split(b" ", 2)[1] for a in answered] == [b"431", b"400"] + [b"431"] * 6
    assert [(r.method, r.path, r.status, r.problem) for r in rows] == [
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("POST", "/v1/second", 400, "bad-request"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("GET", "/v1/third", 431, "headers-too-large"),
    ]
    for r in rows:
        assert "802133" not in f"{r.path} {r.detail}", r


async def test_after_a_chunked_body_past_what_is_kept_the_row_names_nothing(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """A chunked body longer than the connection keeps (lines of it read as request lines),
    the refused request in the read that ends it: the row names no request, least of all one
    of the body's lines."""
    lines = LOOKALIKE * (WINDOW_KEPT // len(LOOKALIKE) + 100)
    body = chunk(lines[:40000]) + chunk(lines[40000:]) + b"0\r\n\r\n"
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        status = await in_reads(url, CHUNKED + body[:100], body[100:50000], body[50000:] + LONG)
        rows = await edge_rows(broker.journal, 1)
    assert status.split(b" ", 2)[1] == b"400"  # the request line unseen: not told a 431
    assert [(r.method, r.path) for r in rows] == [("", "")]
    assert "802133" not in f"{rows[0].path} {rows[0].detail}"


async def test_a_chunked_body_broken_in_its_framing_is_refused_as_its_request(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """A chunk size that is not one, in the read with the head: 400, the row the request's."""
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(EXCHANGE + chunk(b"{}") + b"zz\r\n\r\n")
            await writer.drain()
            status = (await asyncio.wait_for(reader.read(), 5)).split(b"\r\n", 1)[0]
        finally:
            writer.close()
        rows = await kept(broker.journal, 1)
    assert status.split(b" ", 2)[1] == b"400"
    assert [(r.method, r.path, r.status, r.problem) for r in rows] == [
        ("POST", "/v1/exchanges", 400, "bad-request")
    ]


async def test_a_parsing_error_met_by_a_handler_is_the_apps_500_not_an_unparsed_row(
    make_config: Any, broker_at: Any, journal_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HttpProcessingError raised in a route while it reads a body (as aiohttp raises for a
    broken chunked framing) reaches the app's error handling, never the server's hook for what
    it could not parse: one row, 500 internal-error, with the request's method and path."""

    async def broken(request: Request, *_: object) -> tuple[bytes, int]:
        await request.content.readany()
        raise TransferEncodingError("Not enough data to satisfy transfer length header.")

    monkeypatch.setattr(edge, "read_body", broken)
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(EXCHANGE + chunk(b"{}") + b"0\r\n\r\n")
            await writer.drain()
            status = await answer(reader)
        finally:
            writer.close()
        # garbage after it, journalled by the same queue as a server's refusal of the request
        # would have been: once its row is there, one before it would be too
        await raw(url, GARBAGE)
        rows = await kept(broker.journal, 2)
    assert status.split(b" ", 2)[1] == b"500"
    assert [(r.method, r.path, r.status, r.problem) for r in rows] == [
        ("POST", "/v1/exchanges", 500, "internal-error"),
        ("", "", 400, "bad-request"),
    ]
