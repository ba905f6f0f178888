"""The floor under ``bench/e2e.py``'s overhead: the two HTTP hops a broker adds, and nothing else.

A bare aiohttp relay: it answers each ``POST /v1/exchanges`` with 202 once the JSON is read,
then posts a prebuilt partner request (the one the direct run sends) to the partner and reads
the reply. No journal, no format check, no mapping, no retries, no logs, no metrics. Whatever CPU
it uses per application is what any broker in Python with aiohttp spends on the hops alone, so
``floor_overhead`` (its CPU over the client's and partner's) says how far under the broker's
``overhead`` the target can be reached by cutting the broker's own work.

    python bench/relay.py TARGET_URL BODY_FILE      # prints "relay listening on URL"

``GET /done`` answers how many partner calls have come back. It runs as ``tongban serve`` does:
on uvloop, with its heap settled once it listens (``federation/runtime/heap.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from federation.runtime import heap

DONE = web.AppKey("done", list)
SEND = web.AppKey("send", dict)


async def intake(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    key = request.headers.get("Idempotency-Key", "")
    task = asyncio.create_task(forward(request.app, key))
    request.app[SEND]["tasks"].add(task)
    task.add_done_callback(request.app[SEND]["tasks"].discard)
    return web.Response(status=202, body=b'{"id":"' + key.encode() + b'"}')


async def forward(app: web.Application, key: str) -> None:
    send = app[SEND]
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
        "Idempotency-Key": key,
        "X-Tongban-Exchange-Id": f"{next(send['ids']):026d}",
        "X-Tongban-Attempt": "1",
    }
    async with send["http"].post(send["url"], data=send["body"], headers=headers) as resp:
        await resp.read()
    app[DONE][0] += 1


async def done(request: web.Request) -> web.Response:
    return web.json_response({"done": request.app[DONE][0]})


async def main() -> None:
    url, body_file = sys.argv[1], Path(sys.argv[2])
    app = web.Application()
    app[DONE] = [0]
    http = ClientSession(connector=TCPConnector(limit=64), timeout=ClientTimeout(total=30))
    app[SEND] = {
        "url": url,
        "body": body_file.read_bytes(),
        "http": http,
        "ids": itertools.count(),
        "tasks": set(),
    }
    app.router.add_post("/v1/exchanges", intake)
    app.router.add_get("/done", done)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    heap.settle()
    print(f"relay listening on http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await http.close()
        await runner.cleanup()


if __name__ == "__main__":
    # stopped by SIGTERM, as bench/e2e.py stops its children; on uvloop where the broker is
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of tongban on Linux and macOS
        asyncio.run(main())
    else:
        uvloop.run(main())
