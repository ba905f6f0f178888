"""Running the broker as a server process: signals, lifetime, the listening line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from federation.broker import Broker
from federation.intake import create_app
from federation.logging import get_logger
from federation.net import start_site
from replay.sqlite import SQLiteJournal


@contextlib.asynccontextmanager
async def running_broker(
    *,
    root: Path,
    journal_path: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    endpoints: Mapping[str, str] | None = None,
    lease: float | None = None,
    poll_interval: float | None = None,
) -> AsyncIterator[tuple[Broker, str]]:
    """A broker with its HTTP API listening; yields the broker and its base URL."""
    broker = Broker(
        root=root,
        journal=SQLiteJournal(journal_path),
        endpoints=endpoints,
        lease=lease,
        poll_interval=poll_interval,
    )
    async with broker.open():
        runner: web.AppRunner
        runner, url = await start_site(create_app(broker), host, port, access_log=None)
        try:
            yield broker, url
        finally:
            await runner.cleanup()


async def serve_forever(**kwargs: object) -> None:
    """Run until SIGINT or SIGTERM, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log = get_logger(component="server")
    async with running_broker(**kwargs) as (_broker, url):  # type: ignore[arg-type]
        log.info("broker_listening", url=url, journal=str(kwargs.get("journal_path")))
        print(f"tongban listening on {url}", flush=True)
        await stop.wait()
        log.info("broker_stopping")
