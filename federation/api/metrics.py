"""``GET /metrics`` (Prometheus text format) and the middleware that times and logs every request.

The middleware is the outermost: it sees the answer the client gets, problem details included.
It counts answers by route template (``/v1/exchanges/{id}``, never the path itself: paths hold
exchange ids and partners' application keys), times ``POST /v1/exchanges`` for the intake
histogram, opens the request's trace span (``runtime/tracing.py``; a source's W3C ``traceparent``
is its parent) and writes the access log line: method, route, status and duration, nothing of the
body, the query or the headers, so no personal data.

``/metrics`` answers whoever may read ``/v1/stats`` (a ``viewer`` principal and up, or anyone on
loopback while no principal may): give Prometheus a viewer's key as its bearer credentials.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from federation.api.auth import authorize
from federation.api.edge import BROKER
from federation.logging import get_logger
from federation.runtime import tracing
from federation.runtime.metrics import CONTENT_TYPE

_access = get_logger(component="access")
INTAKE = "/v1/exchanges"


async def metrics(request: web.Request) -> web.Response:
    """Every metric of this instance; the journal's counts are read now."""
    broker = request.app[BROKER]
    await authorize(request, broker, "stats")
    body = await broker.metrics.exposition(broker)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def route_of(request: web.Request) -> str:
    """The route template a request matched (``unmatched`` for none): bounded and impersonal."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time, count, trace and log one request."""
    route = route_of(request)
    t0 = time.perf_counter()
    status = 500
    try:
        if tracing.enabled():
            response = await _traced(request, handler, route)
        else:  # no span work: only the source's traceparent kept for the exchange
            token = tracing.remember(request.headers.get("traceparent"))
            try:
                response = await handler(request)
            finally:
                tracing.forget(token)
        status = response.status
        return response
    except web.HTTPException as exc:  # aiohttp's own answers (404, 405, …)
        status = exc.status
        raise
    finally:
        _observed(request, route, status, time.perf_counter() - t0)


async def _traced(request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
    """The handler inside the request's server span."""
    with tracing.server_span(request.method, route, request.headers.get("traceparent")) as span:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            span.set_attribute("http.response.status_code", exc.status)
            raise
        span.set_attribute("http.response.status_code", response.status)
        return response


def _observed(request: web.Request, route: str, status: int, seconds: float) -> None:
    method = request.method
    request.app[BROKER].metrics.answered(
        route, method, status, seconds, route == INTAKE and method == "POST"
    )
    if route == "/metrics":
        return  # scraped every few seconds: counted, not logged
    _access.info(
        "http_request",
        method=method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 3),
    )
