"""adapters.httpio: a reply is read whole up to the limit and refused one byte past it, with or
without Content-Length, and transport failures keep their classification and transcript."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.httpio import Answer, exchange
from federation.domain.errors import TransientError, UnknownOutcomeError

LIMIT = 4096
PARTNER: Any = SimpleNamespace(id="hk", timeouts=SimpleNamespace(connect=1.0, read=0.5, total=2.0))
SENT = {"method": "POST", "url": "http://partner/soap", "body_bytes": 3}


@contextlib.asynccontextmanager
async def server(handler: Any) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    srv = TestServer(app)
    await srv.start_server()
    try:
        yield str(srv.make_url("/soap"))
    finally:
        await srv.close()


def sized(size: int, *, announced: bool) -> Any:
    """A handler answering ``size`` bytes, with Content-Length or chunked (1 KiB a write)."""

    async def handler(req: web.Request) -> web.StreamResponse:
        await req.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/xml", "Retry-After": "7"})
        if announced:
            resp.content_length = size
        await resp.prepare(req)
        for at in range(0, size, 1024):
            await resp.write(b"x" * min(1024, size - at))
        await resp.write_eof()
        return resp

    return handler


async def send(url: str, limit: int = LIMIT) -> Answer:
    async with aiohttp.ClientSession() as session:
        return await exchange(
            session,
            "POST",
            url,
            data=b"abc",
            headers={"Content-Type": "text/xml"},
            partner=PARTNER,
            operation="Op",
            sent=SENT,
            limit=limit,
        )


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_a_reply_of_exactly_the_limit_is_read_whole(announced: bool) -> None:
    async with server(sized(LIMIT, announced=announced)) as url:
        answer = await send(url)
    assert answer.body == b"x" * LIMIT
    assert (answer.status, answer.content_type, answer.retry_after) == (200, "text/xml", 7.0)


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_one_byte_over_the_limit_is_an_unknown_outcome(announced: bool) -> None:
    async with server(sized(LIMIT + 1, announced=announced)) as url:
        with pytest.raises(UnknownOutcomeError) as info:
            await send(url)
    exc = info.value
    assert f"hk sent a reply over {LIMIT} bytes (after decompression)" in exc.message
    assert exc.transcript is not None
    assert exc.transcript.request == SENT and exc.transcript.response is None
    assert (exc.partner, exc.operation) == ("hk", "Op")


async def test_a_refused_connection_is_transient_with_the_request_in_its_transcript() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        await send(f"http://127.0.0.1:{port}/soap")
    assert info.value.message.startswith("cannot connect to hk: ")
    assert info.value.transcript is not None and info.value.transcript.request == SENT
    assert not isinstance(info.value, UnknownOutcomeError)


async def test_no_answer_in_time_is_an_unknown_outcome() -> None:
    async def slow(req: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    async with (
        server(slow) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0, sock_read=0.2)) as session,
    ):
        with pytest.raises(UnknownOutcomeError) as info:
            await exchange(
                session,
                "POST",
                url,
                data=b"abc",
                headers={},
                partner=PARTNER,
                operation="Op",
                sent=SENT,
                limit=LIMIT,
            )
    assert info.value.message == (
        "hk did not answer in time (read 0.5s, total 2s); it may have processed the request"
    )
    assert isinstance(info.value.__cause__, TimeoutError)
