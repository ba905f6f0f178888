"""Pieces the notice and callback tests share: a partner's notice API served on loopback, an
endpoint that runs a step as it takes the next request, and an application hk filed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from federation.config import LOCAL as LOCAL_TARGET
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange

Handler = Callable[[web.Request], Awaitable[web.Response]]


@asynccontextmanager
async def notice_endpoint(handle: Handler) -> AsyncIterator[str]:
    """``handle`` as hk's notice API on loopback until the block ends; its base URL (hk's
    inbound.callback)."""
    app = web.Application()
    app.router.add_post("/tongban/notices/residence-permits", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/tongban/notices"
    finally:
        await runner.cleanup()


@dataclass
class Steps:
    """Put before an endpoint's class among the bases: runs ``step`` (once) as the endpoint
    takes the next request, then lets the endpoint handle it."""

    step: Callable[[], Awaitable[Any]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        step, self.step = self.step, None
        if step is not None:
            await step()
        handle: Handler = super().handle  # type: ignore[misc]  # the endpoint's, next in line
        return await handle(request)


def hk_filing(key: str, application: dict[str, Any], at: float) -> NewExchange:
    """An application hk files under ``key`` at ``at`` for the local system (GD-GA-RP-HK)."""
    return NewExchange(
        id=new_id(at),
        direction=Direction.INBOUND,
        source="hk",
        target=LOCAL_TARGET,
        service="GD-GA-RP-HK",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application=application,
        received_at=at,
    )


def notice_answer(status: int) -> web.Response:
    """hk's notice API answering with ``status``: busy unless 200, else its OK."""
    if status != 200:
        return web.json_response({"detail": "busy"}, status=status)
    return web.json_response({"result_code": "0000", "result_message": "OK"})
