"""Partner simulators: real HTTP servers that answer like partner systems, for the demo and tests.

Each simulator records every request by idempotency key and answers a repeated key with the receipt
it gave the first time, as a well-behaved partner does. Its behaviour can be changed at run time
(``POST /_sim/behaviour``: fail a share of requests, delay, answer with a status) so tests can stage
outages without mocks. Replies come in the partner's own dialect, chosen by region. A body it cannot
read or decode is answered 400 (a behaviour of the wrong shape 422), never a 500.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from federation.api.net import start_site
from federation.config import LOCAL, Partner
from federation.sim.bodies import Unreadable, behaviour_from, body_of, closing, json_of
from federation.sim.soap import SoapPartnerSimulator

SIM_LIMIT = 4 * 1024 * 1024


# What a polled simulator reports on successive status queries: accepted, approved, completed.
STATUS_STAGES = ("SL", "PZ", "BJ")


@dataclass
class Behaviour:
    """What the simulator does with the next requests."""

    fail_ratio: float = 0.0  # share of requests answered with fail_status
    fail_status: int = 503
    delay: float = 0.0  # seconds before answering
    retry_after: int | None = None
    # a notice (a path under .../notices) refused with HTTP 200 and this business code ("E2001")
    notice_refusal: str | None = None


@dataclass
class Seen:
    """What the simulator received under one idempotency key."""

    key: str
    count: int
    first_body: Any
    receipt: dict[str, Any]
    paths: list[str] = field(default_factory=list)


Dialect = Callable[[str, datetime], dict[str, Any]]


def _mainland_gd(case: str, now: datetime) -> dict[str, Any]:
    return {
        "code": "200",
        "msg": "成功",
        "data": {"sblsh": case, "slzt": "01", "slsj": now.strftime("%Y-%m-%d %H:%M:%S")},
    }


def _mainland_generic(case: str, now: datetime) -> dict[str, Any]:
    return {
        "resultCode": "0",
        "resultMsg": "受理成功",
        "result": {"ywlsh": case, "zt": "SL", "slrq": now.strftime("%Y%m%d")},
    }


def _hong_kong(case: str, now: datetime) -> dict[str, Any]:
    return {"ref_no": case, "status": "RECEIVED", "received_at": now.strftime("%d/%m/%Y %H:%M")}


def _macau(case: str, now: datetime) -> dict[str, Any]:
    return {"numeroPedido": case, "estado": "RECEBIDO", "dataRecepcao": now.strftime("%d/%m/%Y")}


def _local(case: str, now: datetime) -> dict[str, Any]:
    return {
        "acceptance_no": case,
        "status": "RECEIVED",
        "received_at": now.isoformat(timespec="seconds"),
    }


DIALECTS: dict[str, tuple[Dialect, str]] = {
    "CN-GD": (_mainland_gd, "Asia/Shanghai"),
    "CN-HK": (_hong_kong, "Asia/Hong_Kong"),
    "CN-MO": (_macau, "Asia/Macau"),
}
DEFAULT_DIALECT: tuple[Dialect, str] = (_mainland_generic, "Asia/Shanghai")


class PartnerSimulator:
    """A loopback HTTP server standing in for one REST partner."""

    def __init__(
        self, partner: Partner, *, seed: int | None = None, header: str | None = None
    ) -> None:
        self.partner = partner
        rest = partner.options.get("rest")
        self.header: str = header or str(getattr(rest, "idempotency_header", "Idempotency-Key"))
        self.behaviour = Behaviour()
        self.seen: dict[str, Seen] = {}
        self.requests = 0
        self.status_queries: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._rng = random.Random(seed)
        self._dialect, zone = (
            (_local, "Asia/Shanghai")  # the local system, receiving what partners file with us
            if partner.id == LOCAL
            else DIALECTS.get(partner.region.iso, DEFAULT_DIALECT)
        )
        self._zone = ZoneInfo(zone)
        self._runner: web.AppRunner | None = None
        self._counter = 0
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=SIM_LIMIT)
        app.router.add_get("/_sim/requests", self._requests)
        app.router.add_post("/_sim/behaviour", self._set_behaviour)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = any free port); returns the base URL."""
        self._runner, self.url = await start_site(self.app(), host, port, access_log=None)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        b = self.behaviour
        if b.fail_ratio and self._rng.random() < b.fail_ratio:
            # A failure before processing: the partner keeps nothing.
            if b.delay:
                await asyncio.sleep(b.delay)
            headers = {"Retry-After": str(b.retry_after)} if b.retry_after is not None else None
            return web.json_response(
                {"detail": "simulated failure"}, status=b.fail_status, headers=headers
            )
        if request.content_type != "application/json":
            return web.json_response({"detail": "expected application/json"}, status=415)
        if request.path.endswith("/status"):
            return await self._status(request)
        try:
            body = await json_of(request)
        except Unreadable as exc:
            return closing(web.json_response({"detail": str(exc)}, status=400))
        if not isinstance(body, dict) or not body:
            return web.json_response({"detail": "expected a non-empty JSON object"}, status=422)
        key = request.headers.get(self.header)
        if not key:
            return web.json_response({"detail": f"{self.header} header required"}, status=400)
        seen = self.seen.get(key)
        if seen is not None:
            seen.count += 1
            seen.paths.append(request.path)
        else:
            self._counter += 1
            now = datetime.now(self._zone)
            case = f"{self.partner.id.upper()}{now:%Y%m%d}{self._counter:06d}"
            seen = Seen(
                key=key,
                count=1,
                first_body=body,
                receipt=self._dialect(case, now),
                paths=[request.path],
            )
            self.seen[key] = seen
        if b.delay:
            # Processed, but the answer is late: what a caller's timeout cannot tell apart.
            await asyncio.sleep(b.delay)
        if "/notices" in request.path:
            return web.json_response(_notice_ack(seen, b.notice_refusal), status=200)
        return web.json_response(seen.receipt, status=200)

    async def _status(self, request: web.Request) -> web.Response:
        """A status query (polling): each one finds the application one step further along."""
        try:
            raw = await body_of(request)
            body = orjson.loads(raw or b"{}")
        except Unreadable as exc:
            return closing(web.json_response({"detail": str(exc)}, status=400))
        except orjson.JSONDecodeError:
            return web.json_response({"detail": "malformed JSON"}, status=400)
        key = body.get("idempotency_key") if isinstance(body, dict) else None
        if not isinstance(key, str) or key not in self.seen:
            return web.json_response({"detail": "no such application"}, status=404)
        step = self.status_queries.get(key, 0)
        self.status_queries[key] = step + 1
        code = STATUS_STAGES[min(step, len(STATUS_STAGES) - 1)]
        return web.json_response({"idempotency_key": key, "status": code})

    async def _requests(self, request: web.Request) -> web.Response:
        body = {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "keys": {k: {"count": s.count, "paths": s.paths} for k, s in self.seen.items()},
        }
        return web.json_response(body)

    async def _set_behaviour(self, request: web.Request) -> web.Response:
        found = await behaviour_from(request, Behaviour)
        if isinstance(found, web.Response):
            return found
        self.behaviour = found
        return web.json_response(asdict(self.behaviour))


def _notice_ack(seen: Seen, refusal: str | None) -> dict[str, Any]:
    """A notice API's answer (Hong Kong DPO's): HTTP 200 always, the yes or no in result_code."""
    if refusal is not None:
        return {"result_code": refusal, "result_message": "notice refused: unknown reference"}
    ref = next(iter(seen.receipt.values()), seen.key)
    return {"result_code": "0000", "result_message": "notice received", "notice_ref": ref}


class Simulator(Protocol):
    """What the demo, ``tongban simulate`` and the tests need of any partner simulator."""

    partner: Partner
    url: str
    requests: int

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str: ...

    async def stop(self) -> None: ...


def simulator_for(partner: Partner, *, seed: int | None = None) -> Simulator:
    """A simulator speaking the partner's protocol (REST JSON, or SOAP per its WSDL)."""
    if partner.protocol == "soap":
        return SoapPartnerSimulator(partner, seed=seed)
    return PartnerSimulator(partner, seed=seed)
