"""Stopping the HTTP side: a connection accepted just before the stop still gets its answer.

aiohttp closes at once every connection with no request in progress. During a rolling restart of
`serve --workers N`, a client whose connection the old worker had accepted, but whose request
had not arrived yet, was cut off. The broker now stops accepting, lingers, then closes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from federation.api.server import running_broker

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


async def answer_after_the_stop(root: Path, journal: Path, linger: float) -> bytes:
    """Connect, let the broker accept, begin its stop, then send a request: what comes back."""
    stopping = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def serve() -> None:
        async with running_broker(
            root=root, journal_path=journal, port=0, poll_interval=0.05, linger=linger
        ) as (_broker, url):
            ready.set_result(url)
            await stopping.wait()

    server = asyncio.create_task(serve())
    host, port = (await ready).removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    await asyncio.sleep(0.2)  # accepted by the broker's loop, no request yet
    stopping.set()
    await asyncio.sleep(0.05)  # the stop has begun
    writer.write(REQUEST)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        await server


async def test_a_request_on_a_connection_accepted_before_the_stop_is_answered(
    make_config, tmp_path: Path
) -> None:
    """With the linger serve uses, the request is answered; without it, the connection is closed
    unanswered (what aiohttp does alone)."""
    root = make_config()
    lingering = await answer_after_the_stop(root, tmp_path / "a.sqlite", linger=0.5)
    assert lingering.startswith(b"HTTP/1.1 200")
    cut = await answer_after_the_stop(root, tmp_path / "b.sqlite", linger=0.0)
    assert not cut.startswith(b"HTTP/1.1 200")
