"""A request aiohttp cannot parse after others on the same connection (kept alive, or sent with
them at once) is answered and journalled as it would be on a connection of its own: 431 for a
header line too long after a whole request line, and the row's method and path are the refused
request's, never an earlier one's, nor read from a body. Raw bytes over loopback sockets, on
SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from replay.journal import Refusal
from tests.integration.test_unparsed_refusals import HKID, kept

GOOD = f"GET /healthz?applicant={HKID} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
BROKEN = b"POST /v1/second HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"
LONG = b"GET /v1/third HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n"
# a body holding what reads as a request line, personal data in its path: never a row's
LOOKALIKE = f"GET /v1/{HKID} HTTP/1.1\r\n".encode()
POSTED = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(LOOKALIKE)


async def edge_rows(journal: Any, count: int) -> list[Refusal]:
    """The journal's rows of what aiohttp refused (POST /healthz's 405s are the app's), once
    ``count`` are there."""
    for _ in range(200):
        rows = [r for r in await kept(journal, count) if r.problem != "method-not-allowed"]
        if len(rows) >= count:
            break
        await asyncio.sleep(0.02)
    return rows


async def answer(reader: asyncio.StreamReader) -> bytes:
    """One answer's status line (its body read past)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.split(b"\r\n")
    sizes = [h.split(b":")[1] for h in lines if h.lower().startswith(b"content-length:")]
    await reader.readexactly(int(sizes[0]) if sizes else 0)
    return lines[0]


async def on_one(url: str, *writes: bytes) -> list[bytes]:
    """``writes`` sent on one connection, each answered before the next is sent (a write
    ending without a blank line is a head whose body comes next, not waited for); the status
    lines, the last the refusal's, read to the connection's end."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    statuses = []
    try:
        for data in writes[:-1]:
            writer.write(data)
            await writer.drain()
            if (data.endswith(b"\r\n\r\n") and data is not POSTED) or data is LOOKALIKE:
                statuses.append(await answer(reader))
        writer.write(writes[-1])
        await writer.drain()
        last = await asyncio.wait_for(reader.read(), 5)
        statuses.append(last.split(b"\r\n", 1)[0])
    finally:
        writer.close()
    return statuses


async def test_a_refusal_after_requests_on_one_connection_is_the_refused_ones(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """Kept alive: a long header after a good request is 431 and a broken one 400, each row the
    refused request's; sent at once, after a good request or after a body that reads as a
    request line, the same; a body sent apart, then a broken request, the same."""
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        answered = [
            await on_one(url, GOOD, LONG),
            await on_one(url, GOOD, GOOD, BROKEN),
            await on_one(url, GOOD + LONG),
            await on_one(url, POSTED + LOOKALIKE + GOOD + BROKEN),
            await on_one(url, POSTED, LOOKALIKE, LONG),
        ]
        rows = await edge_rows(broker.journal, 5)
    refused = [statuses[-1].split(b" ", 1)[1] for statuses in answered]
    assert refused == [
        b"431 Request Header Fields Too Large",
        b"400 Bad Request",
        b"431 Request Header Fields Too Large",
        b"400 Bad Request",
        b"431 Request Header Fields Too Large",
    ]
    assert [(r.method, r.path, r.status, r.problem) for r in rows] == [
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("POST", "/v1/second", 400, "bad-request"),
        ("GET", "/v1/third", 431, "headers-too-large"),
        ("POST", "/v1/second", 400, "bad-request"),
        ("GET", "/v1/third", 431, "headers-too-large"),
    ]
    for r in rows:
        assert "802133" not in f"{r.path} {r.detail}", r
