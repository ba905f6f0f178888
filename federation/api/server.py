"""Running the broker as a server process: signals, lifetime, the listening line."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from federation.api.app import create_app
from federation.api.net import start_site
from federation.domain.errors import ConfigError
from federation.logging import get_logger, loop_exception_handler
from federation.runtime import heap
from federation.runtime.broker import Broker
from federation.runtime.shutdown import DRAIN, Deadline
from federation.runtime.systemd import SystemdNotifier
from replay.factory import key_path, open_journal
from replay.journal import Journal
from replay.pgsql import masked
from replay.refs import load_key


@contextlib.asynccontextmanager
async def running_broker(
    *,
    root: Path,
    journal_path: Path | str,
    host: str = "127.0.0.1",
    port: int = 8080,
    endpoints: Mapping[str, str] | None = None,
    lease: float | None = None,
    poll_interval: float | None = None,
    journal: Journal | None = None,
    inbound_keys: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    status_poll_every: float | None = None,
    sock: socket.socket | None = None,
    linger: float = 0.0,
) -> AsyncIterator[tuple[Broker, str]]:
    """A broker with its HTTP API listening (on ``sock`` when given: a socket its parent bound);
    yields the broker and its base URL. At the end it stops accepting, then gives connections
    accepted just before ``linger`` seconds to send their request before the rest is closed."""
    broker = Broker(
        root=root,
        search_key=functools.cache(lambda: load_key(key_path(journal_path))),
        journal=journal or open_journal(journal_path),
        endpoints=endpoints,
        lease=lease,
        poll_interval=poll_interval,
        inbound_keys=inbound_keys,
        status_poll_every=status_poll_every,
    )
    async with broker.open():
        runner: web.AppRunner
        runner, url = await start_site(
            create_app(broker),
            host,
            port,
            ssl_context=ssl_context,
            access_log=None,
            edge=True,
            sock=sock,
        )
        try:
            yield broker, url
        finally:
            await _stop_serving(runner, linger)


async def _stop_serving(runner: web.AppRunner, linger: float) -> None:
    """Stop accepting, wait ``linger``, then close. aiohttp closes at once every connection that
    has no request in progress, so a client whose connection was accepted a moment before the
    stop, but whose request had not arrived yet, was cut off ("server disconnected") on every
    rolling restart of `serve --workers N` under load."""
    if linger > 0:
        for site in list(runner.sites):
            await site.stop()
        await asyncio.sleep(linger)
    await runner.cleanup()


_reloads: set[asyncio.Task[None]] = set()
# What serve gives connections accepted just before it stops (part of the drain's deadline).
LINGER = 0.5


def _spawn_reload(broker: Broker) -> None:
    """SIGHUP: reload the catalogue; a failure is logged and the old one stays in force."""

    async def run() -> None:
        log = get_logger(component="server")
        try:
            await broker.reload()
        except ConfigError as exc:
            log.error(
                "catalogue_reload_refused",
                problems=len(exc.problems),
                first=str(exc.problems[0]) if exc.problems else "",
            )
            return
        except Exception:  # not a refused configuration: a new adapter, publishing the version
            log.exception("catalogue_reload_failed")

    task = asyncio.create_task(run())
    _reloads.add(task)
    task.add_done_callback(_reloads.discard)


async def serve_forever(*, drain: float = DRAIN, **kwargs: object) -> None:
    """Run until SIGINT or SIGTERM, then drain and stop within ``drain`` seconds: intake closes,
    attempts in flight finish (or are cut at the worker's grace), leases are released, the journal
    closed (``federation/runtime/shutdown.py``). systemd hears READY, WATCHDOG and STOPPING."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)  # its frames and type, not its message
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log = get_logger(component="server")
    systemd = SystemdNotifier()
    deadline: Deadline | None = None
    try:
        async with running_broker(linger=LINGER, **kwargs) as (broker, url):  # type: ignore[arg-type]
            loop.add_signal_handler(signal.SIGHUP, lambda: _spawn_reload(broker))
            frozen = heap.settle()  # the startup heap, never walked by a collection again
            log.info(
                "broker_listening",
                url=url,
                journal=journal_shown(kwargs.get("journal_path")),
                frozen_objects=frozen,
            )
            print(f"tongban listening on {url}", flush=True)
            systemd.ready(f"listening on {url}")
            async with systemd.watchdog(broker.journal.ping):
                await stop.wait()
            systemd.stopping("draining")
            deadline = Deadline(drain)
            log.info("broker_stopping", drain=drain)
    finally:
        if deadline is not None:
            deadline.cancel()


def journal_shown(location: object) -> str:
    """Where the journal is, for a log line: a PostgreSQL URL without its password."""
    text = str(location)
    return masked(text) if "://" in text else text
