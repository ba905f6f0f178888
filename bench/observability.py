"""What metrics, the access log and (disabled) tracing cost: intake to delivered, with and without.

One process: a REST partner simulator, a broker on a fresh SQLite journal (WAL, synchronous=FULL)
and its HTTP API, and a client posting N demo applications to one REST partner, ``--concurrency``
at once; a round ends when the journal says every exchange is delivered. Observed rounds run the
broker as shipped (the observe middleware: request counter, intake histogram, access log line as
JSON to /dev/null; attempt, latency and delivery metrics; the journal's commit hook; tracing off,
as by default). Baseline rounds take the middleware off the app and the metrics out of the worker.
Rounds run in pairs on fresh journals, which of the two goes first alternating (ABBA); the ratio
is the median of the pairs' ratios, the rates the medians of each kind.

A second part times the observe middleware alone, in process, on a mocked ``POST /v1/exchanges``
whose handler answers 202 at once (no socket, no journal, so the noise of a shared machine does
not swamp microseconds): as shipped, as it was before (a reference copy below: ``.labels()`` on
every call and a span context manager even with tracing off), and no middleware; rounds of each
interleaved, the medians per request less the bare handler's.

    .venv/bin/python bench/observability.py [--n 300] [--rounds 7] [--concurrency 32]

Last line: ``RESULT name=observability ratio=<median of observed / baseline per pair>
observed_per_s=… baseline_per_s=… overhead_us=<per exchange> middleware_us=<per request, as
shipped> middleware_before_us=<per request, the previous middleware>``; ratio 1.00 means it costs
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.typedefs import Handler

from federation.api.app import create_app
from federation.api.edge import BROKER
from federation.api.metrics import INTAKE, observe_middleware, route_of
from federation.api.net import start_site
from federation.logging import configure, get_logger
from federation.mapping.examples import load_examples
from federation.runtime.broker import Broker
from federation.runtime.catalogue import load_catalogue
from federation.runtime.tracing import server_span
from federation.sim.rest import simulator_for
from replay.factory import open_journal


def pick(root: Path) -> tuple[str, str, dict[str, Any], str]:
    """A REST partner, one of its services, a demo application and its source."""
    catalogue = load_catalogue(root)
    for p in catalogue.config.partners.values():
        if p.protocol != "rest" or p.inbound is not None:
            continue
        for s in p.services.values():
            for ex in load_examples(s.mapping):
                if ex.demo and ex.expected is not None:
                    source = ex.source or next(iter(catalogue.config.sources))
                    return p.id, s.code, dict(ex.application), source
    raise SystemExit("no REST partner with a demo example in the catalogue")


async def one_round(
    observed: bool, n: int, concurrency: int, partner: str, body: dict[str, Any], sim_url: str
) -> float:
    """Exchanges delivered per second, submission to the last delivery."""
    with tempfile.TemporaryDirectory(prefix="tongban-bench-obs-") as tmp:
        broker = Broker(
            root=REPO,
            journal=open_journal(Path(tmp) / "journal.sqlite"),
            endpoints={partner: sim_url},
            poll_interval=0.2,
        )
        async with broker.open():
            app = create_app(broker)
            if not observed:
                app.middlewares.remove(observe_middleware)
                broker.worker.metrics = None
            runner, url = await start_site(app, "127.0.0.1", 0)
            try:
                t0 = time.perf_counter()
                await blast(url, body, n, concurrency)
                while (await broker.journal.counts()).get("delivered", 0) < n:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # the journal says when, not an event of ours
                return n / (time.perf_counter() - t0)
            finally:
                await runner.cleanup()


async def blast(url: str, body: dict[str, Any], n: int, concurrency: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    run = os.urandom(4).hex()

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            key = f"bench-{run}-{i}"
            async with http.post("/v1/exchanges", json=body, headers={"Idempotency-Key": key}) as r:
                if r.status != 202:
                    raise SystemExit(f"intake answered {r.status}: {await r.text()}")

    async with aiohttp.ClientSession(url) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))


# -- the middleware alone ---------------------------------------------------------------------------

_access = get_logger(component="access")


@web.middleware
async def before_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The observe middleware as it was before its cost was cut (the reference)."""
    route = route_of(request)
    t0 = time.perf_counter()
    status = 500
    try:
        with server_span(request.method, route, request.headers.get("traceparent")) as span:
            response = await handler(request)
            status = response.status
            span.set_attribute("http.response.status_code", status)
            return response
    finally:
        seconds = time.perf_counter() - t0
        metrics = request.app[BROKER].metrics
        metrics.requests.labels(route, request.method, str(status)).inc()
        if route == INTAKE and request.method == "POST":
            metrics.intake.labels(str(status)).observe(seconds)
        _access.info(
            "http_request",
            method=request.method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 3),
        )


async def accepted(_: web.Request) -> web.StreamResponse:
    return web.Response(status=202)


async def middleware_costs(rounds: int, per_round: int = 4000) -> tuple[float, float]:
    """Microseconds per request the shipped and the previous middleware add to a bare handler."""
    broker = Broker(root=REPO, journal=open_journal("memory:"))
    app = web.Application()
    app[BROKER] = broker
    app.router.add_post(INTAKE, accepted)
    request = make_mocked_request("POST", INTAKE, app=app)
    match = await app.router.resolve(request)
    match.add_app(app)
    request._match_info = match  # as aiohttp's handler sets it: the real route template

    async def bare(r: web.Request) -> web.StreamResponse:
        return await accepted(r)

    async def shipped(r: web.Request) -> web.StreamResponse:
        return await observe_middleware(r, accepted)

    async def before(r: web.Request) -> web.StreamResponse:
        return await before_middleware(r, accepted)

    kinds = {"bare": bare, "shipped": shipped, "before": before}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(rounds):
        order = list(kinds) if i % 2 == 0 else list(reversed(kinds))
        for kind in order:
            call = kinds[kind]
            t0 = time.perf_counter()
            for _ in range(per_round):
                await call(request)
            times[kind].append((time.perf_counter() - t0) / per_round * 1e6)
    base = statistics.median(times["bare"])
    return statistics.median(times["shipped"]) - base, statistics.median(times["before"]) - base


async def main() -> None:
    with open(os.devnull, "w", encoding="utf-8") as devnull:  # noqa: ASYNC230 - once, at start
        configure(level="info", stream=devnull, json=True)  # as serve logs off a terminal
        await measure()


async def measure() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    partner, service, application, source = pick(REPO)
    catalogue = load_catalogue(REPO)
    sim = simulator_for(catalogue.config.partners[partner], seed=7)
    sim_url = await sim.start()
    body = {"source": source, "partner": partner, "service": service, "application": application}
    observed: list[float] = []
    baseline: list[float] = []
    try:
        await one_round(True, min(args.n, 50), args.concurrency, partner, body, sim_url)  # warm
        for i in range(args.rounds):
            # ABBA: who goes first alternates, so a load that drifts favours neither
            for observe in (True, False) if i % 2 == 0 else (False, True):
                rate = await one_round(observe, args.n, args.concurrency, partner, body, sim_url)
                (observed if observe else baseline).append(rate)
    finally:
        await sim.stop()
    middleware_us, before_us = await middleware_costs(args.rounds)
    obs, base = statistics.median(observed), statistics.median(baseline)
    ratio = statistics.median(o / b for o, b in zip(observed, baseline, strict=True))
    print(f"partner {partner} / {service}, {args.n} exchanges × {args.rounds} rounds each")
    print(f"observed: {', '.join(f'{x:.0f}' for x in observed)} /s")
    print(f"baseline: {', '.join(f'{x:.0f}' for x in baseline)} /s")
    overhead_us = (1 / obs - 1 / base) * 1e6
    print(f"observe middleware per request: {middleware_us:.1f} us, before: {before_us:.1f} us")
    print(
        f"RESULT name=observability ratio={ratio:.3f} observed_per_s={obs:.1f} "
        f"baseline_per_s={base:.1f} overhead_us={overhead_us:.0f} "
        f"middleware_us={middleware_us:.1f} middleware_before_us={before_us:.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
