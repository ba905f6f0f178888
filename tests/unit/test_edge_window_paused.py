"""The edge's connection handler, fed reads directly: a body whose last bytes the parser read
while paused (the body past its reader's buffer, unread) holds back what followed in that read;
the connection cannot tell where the next request begins, and a request it then refuses is kept
naming nothing, never a line read from the middle of its head."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast
from unittest import mock

from aiohttp import web

from federation.api.net import EdgeServer
from federation.api.unparsed import EdgeRefusals
from replay.journal import Refusal

HKID = "K802133(3)"
LOOKALIKE = f"GET /v1/{HKID} HTTP/1.1\r\n".encode()
# a refused head (a header line too long) one of whose lines reads as a request line from its
# middle on
NOTED = (
    f"GET /v1/third HTTP/1.1\r\nHost: x\r\nX-Note: fetch /v1/{HKID} now\r\nX-A: ".encode()
    + b"a" * 20000
    + b"\r\n\r\n"
)


class Kept:
    """Stands in for the journal's writer: the refusals the handler queued."""

    def __init__(self) -> None:
        self.rows: list[Refusal] = []

    def keep(self, refusal: Refusal) -> None:
        self.rows.append(refusal)


async def until(done: Callable[[], object]) -> None:
    """Wait (a second at most) for ``done()``: a handler that never gets there fails the test."""
    async with asyncio.timeout(1):
        while not done():
            await asyncio.sleep(0.01)


def connection(kept: Kept) -> Any:
    """An edge connection to an app that answers 405 without reading the body, on a transport
    that takes what is written."""

    async def app(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=405)

    server = EdgeServer(app, loop=asyncio.get_running_loop())
    server.refusals = cast(EdgeRefusals, kept)
    handler = server()
    transport = mock.Mock()
    transport.is_closing.return_value = False
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("127.0.0.1", 40000) if name == "peername" else default
    )
    handler.connection_made(transport)
    return handler


async def test_after_a_body_read_while_paused_a_refusal_names_nothing() -> None:
    kept = Kept()
    handler = connection(kept)
    size = 600_000  # past the body reader's buffer in one read: the parser pauses at its end
    body = (LOOKALIKE * (size // len(LOOKALIKE) + 1))[:size]
    head = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    split = NOTED.index(b"fetch")
    try:
        handler.data_received(head + body + NOTED[:split])
        assert handler._reading_paused, "the parser did not pause: the case is not the one meant"
        await until(lambda: not handler._reading_paused)  # the 405 sent, the body read past
        handler.data_received(NOTED[split:])
        await until(lambda: kept.rows)
    finally:
        handler.connection_lost(None)
    assert [(r.method, r.path) for r in kept.rows] == [("", "")]
    assert HKID[1:7] not in f"{kept.rows[0].path} {kept.rows[0].detail}"
