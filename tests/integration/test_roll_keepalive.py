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
import json
import signal
from pathlib import Path

import pytest

from federation.api.server import running_broker
from tests.acceptance.conftest import Proc, procs, serve  # noqa: F401 (procs: a fixture)
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


@pytest.mark.slow
async def test_at_sigterm_the_port_refuses_while_the_workers_drain(
    make_config,
    tmp_path: Path,
    procs: list[Proc],  # noqa: F811
) -> None:
    """`serve --workers 2` stopping: while the workers still drain (keep-alive connections held
    open keep them in their grace, and requests on those are answered), a client that connects is
    refused at once. Before, the parent held the listening sockets to the end: the connection was
    queued where no worker would accept it, then reset when the parent closed them (clients told
    Connection: close met that reset)."""
    root = make_config()
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    parent = serve(
        root,
        tmp_path / "w.sqlite",
        json.loads(sim.first_line)["hk"],
        tmp_path / "parent.log",
        "--workers",
        "2",
    )
    procs.append(parent)
    host, port = parent.first_line.rsplit("/", 1)[1].rsplit(":", 1)
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(8):  # keep-alive connections to both workers (the kernel spreads them)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(KEEP_ALIVE)
        await answer(reader)
        held.append((reader, writer))
    parent.popen.send_signal(signal.SIGTERM)

    async def refused() -> bool:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except ConnectionRefusedError:
            return True
        writer.close()
        return False

    while not await refused():
        await asyncio.sleep(0.02)
    # refused while the workers still drain: the requests on the connections held are answered
    for reader, writer in held:
        writer.write(KEEP_ALIVE)
        status, headers = await answer(reader)
        assert status.startswith(b"HTTP/1.1 200")
        assert headers.get("connection", "").lower() == "close"
        writer.close()
    assert await asyncio.to_thread(parent.popen.wait, 60) == 0
