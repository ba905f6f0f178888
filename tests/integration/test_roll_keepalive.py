"""Stopping the HTTP side with keep-alive clients: a request on an open connection is answered.

During a rolling restart of `serve --workers N` (SIGHUP, an admin reload, a console save) and at
SIGTERM, the old worker stops. aiohttp alone closes every connection with no request in progress
at once, among them keep-alive connections a client was writing its next request into: clients
saw "server disconnected", "connection reset" and "Can not write request body". Now the stop
answers every request with ``Connection: close`` (the client's next request goes on a new
connection, to a worker still listening), keeps answering requests arriving on connections
already open, and closes a connection left idle at the end of its grace.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from federation.api.server import running_broker
from tests.waiting import wait_until

KEEP_ALIVE = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


async def answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]]:
    """One HTTP/1.1 response read off the connection: its status line and headers (lowercase
    names); its body, of Content-Length bytes, read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status.encode(), headers


class Broker:
    """A broker serving in a task of its own, stopped on request, with a keep-alive client."""

    def __init__(self, root: Path, journal: Path, grace: float) -> None:
        self.stopping = asyncio.Event()
        self.ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._serve(root, journal, grace))

    async def _serve(self, root: Path, journal: Path, grace: float) -> None:
        async with running_broker(
            root=root, journal_path=journal, port=0, poll_interval=0.05, linger=grace
        ) as (_broker, url):
            self.ready.set_result(url)
            await self.stopping.wait()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.host, port = (await self.ready).removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        return await asyncio.open_connection(self.host, self.port)

    async def refuses(self) -> bool:
        """Whether the broker has stopped accepting (its stop has begun)."""
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            return True
        writer.close()
        return False

    async def stop_begun(self) -> None:
        self.stopping.set()
        for _ in range(500):
            if await self.refuses():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the broker never stopped accepting")


async def test_a_request_on_a_keep_alive_connection_during_the_stop_is_answered_and_closed(
    make_config, tmp_path: Path
) -> None:
    """A client with a keep-alive connection sends its next request after the stop has begun:
    it is answered (200), told ``Connection: close``, and the connection is then closed; the
    stop ends once no connection is left, well before its grace (an hour here)."""
    broker = Broker(make_config(), tmp_path / "j.sqlite", grace=3600)
    reader, writer = await broker.connect()
    writer.write(KEEP_ALIVE)
    status, headers = await answer(reader)
    assert status.startswith(b"HTTP/1.1 200")
    assert headers.get("connection", "").lower() != "close"  # kept alive before the stop
    await broker.stop_begun()
    writer.write(KEEP_ALIVE)  # the client's next request, on the connection it holds
    await writer.drain()
    status, headers = await answer(reader)
    assert status.startswith(b"HTTP/1.1 200")
    assert headers.get("connection", "").lower() == "close"
    assert await reader.read() == b""  # closed by the broker after that answer
    writer.close()
    await asyncio.wait_for(broker.task, 60)  # not the hour: no connection was left open


async def test_a_connection_left_idle_is_closed_at_the_end_of_the_grace(
    make_config, tmp_path: Path
) -> None:
    """A keep-alive connection that never sends again does not hold the stop: it is closed when
    the grace ends, and the stop completes."""
    broker = Broker(make_config(), tmp_path / "j.sqlite", grace=0.2)
    reader, writer = await broker.connect()
    writer.write(KEEP_ALIVE)
    status, _ = await answer(reader)
    assert status.startswith(b"HTTP/1.1 200")
    await broker.stop_begun()
    assert await asyncio.wait_for(reader.read(), 60) == b""
    writer.close()
    await asyncio.wait_for(broker.task, 60)
    assert broker.task.exception() is None


async def test_a_request_in_progress_when_the_stop_begins_is_answered_with_close(
    make_config, tmp_path: Path
) -> None:
    """A request whose headers arrived before the stop, its body after: answered, with
    ``Connection: close`` (the body is incomplete JSON: a problem, not a cut connection)."""
    broker = Broker(make_config(), tmp_path / "j.sqlite", grace=3600)
    reader, writer = await broker.connect()
    writer.write(
        b"POST /v1/exchanges HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{"
    )
    await writer.drain()
    await broker.stop_begun()
    writer.write(b"}")
    status, headers = await answer(reader)
    assert status.split(b" ")[1].isdigit()
    assert headers.get("connection", "").lower() == "close"
    assert await reader.read() == b""
    writer.close()
    await wait_until(lambda: broker.task.done(), what="the stop finished", timeout=60)
