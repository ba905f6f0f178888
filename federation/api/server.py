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

from aiohttp import hdrs, web

from federation.api.app import create_app
from federation.api.budget import RefusalBudget
from federation.api.net import start_site
from federation.api.unparsed import EdgeRefusals
from federation.domain.errors import ConfigError
from federation.logging import get_logger, loop_exception_handler
from federation.runtime import heap, siblings
from federation.runtime.broker import Broker
from federation.runtime.catalogue import load_catalogue
from federation.runtime.metrics import config_version
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
    yields the broker and its base URL. At the end it stops accepting and answers every request
    with ``Connection: close``; connections still open get up to ``linger`` seconds to send
    their request and be answered before the rest is closed (:func:`_stop_serving`)."""
    await _check_version_on_disk(root, endpoints, inbound_keys)
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

    # what the server refuses before the app sees it is journalled by a writer drained before
    # the journal closes (federation/api/unparsed.py)
    configure = functools.partial(_budget_in_force, broker)
    async with broker.open(), EdgeRefusals(broker.journal, configure=configure) as refusals:
        _refuse_another_version(broker.config_version)
        app = create_app(broker)
        closing = Closing()
        app.on_response_prepare.append(closing.mark)
        runner: web.AppRunner
        runner, url = await start_site(
            app,
            host,
            port,
            ssl_context=ssl_context,
            access_log=None,
            edge=True,
            sock=sock,
            refusals=refusals,
        )
        try:
            yield broker, url
        finally:
            await _stop_serving(runner, closing, linger)


def _budget_in_force(broker: Broker, budget: RefusalBudget) -> None:
    """Give ``budget`` partners.yaml's refusal budget in force (a reload's too) and the metric,
    before each refusal the server makes before the app: not the settings the app's refusals
    last gave it."""
    budget.configure(
        broker.catalogue.config.broker.refusal_budget, broker.metrics.refusals_not_kept
    )


class WrongVersion(SystemExit):
    """A replacement worker found another configuration than the one in force: it exits (2)."""


async def _check_version_on_disk(
    root: Path, endpoints: Mapping[str, str] | None, inbound_keys: Mapping[str, str] | None
) -> None:
    """A replacement worker checks the files' version before its broker starts anything (its
    delivery worker would claim work on the first poll); checked again once it has loaded them."""
    if siblings.version_in_force() is None:
        return

    def version() -> str:
        catalogue = load_catalogue(root, endpoints=endpoints, inbound_keys=inbound_keys)
        return config_version(root, catalogue)

    _refuse_another_version(await asyncio.to_thread(version))


def _refuse_another_version(version: str) -> None:
    """A worker replacing one that exited must run the configuration in force, not the files as
    they are now (``federation/runtime/siblings.py``): refused before it listens."""
    required = siblings.version_in_force()
    if required is not None and version != required:
        get_logger(component="server").error(
            "worker_config_not_in_force", version=version, in_force=required
        )
        raise WrongVersion(2)


class Closing:
    """Once the stop has begun, every answer says ``Connection: close``: the client sends its next
    request on a new connection, which a running worker (or the successor) accepts."""

    def __init__(self) -> None:
        self.begun = False

    async def mark(self, _request: web.BaseRequest, response: web.StreamResponse) -> None:
        if self.begun:  # aiohttp has written the Connection header already by this hook
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"


async def _stop_serving(
    runner: web.AppRunner, closing: Closing, grace: float, *, poll: float = 0.05
) -> None:
    """Stop accepting, answer with ``Connection: close`` from now on, wait until every open
    connection has closed or ``grace`` seconds have passed, then close what is left.

    aiohttp alone closes at once every connection with no request in progress, among them
    keep-alive connections a client is writing its next request into ("server disconnected",
    "connection reset") and connections accepted a moment before the stop whose request had
    not arrived: both were cut on every rolling restart of `serve --workers N` under load. Now a
    request arriving on an open connection during the grace is answered, and its connection
    then closed; a connection that stays idle is closed at the end of the grace."""
    closing.begun = True
    if grace > 0:
        for site in list(runner.sites):
            await site.stop()
        loop = asyncio.get_running_loop()
        end = loop.time() + grace
        while runner.server is not None and runner.server.connections:
            left = end - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(poll, left))
    await runner.cleanup()


_reloads: set[asyncio.Task[None]] = set()
# How long serve's stop waits for open connections to send a request and close (less, once they
# have all closed): part of the drain's deadline (DRAIN, --drain-timeout), at most a quarter of
# it (:func:`linger_for`). The attempts in flight then get what the drain has left, less a margin
# for the leases and the journal (federation.runtime.shutdown.grace), so a short drain cuts them
# sooner rather than overrunning.
LINGER = 5.0


def linger_for(drain: float) -> float:
    """The linger of a stop whose whole drain has ``drain`` seconds."""
    return min(LINGER, drain / 4)


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
        async with running_broker(linger=linger_for(drain), **kwargs) as (broker, url):  # type: ignore[arg-type]
            loop.add_signal_handler(signal.SIGHUP, lambda: _spawn_reload(broker))
            frozen = heap.settle()  # the startup heap, never walked by a collection again
            log.info(
                "broker_listening",
                url=url,
                journal=journal_shown(kwargs.get("journal_path")),
                frozen_objects=frozen,
            )
            if siblings.parent() is not None:  # the parent keeps the version each worker runs
                print(f"{siblings.VERSION_LINE}{broker.config_version}", flush=True)
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
