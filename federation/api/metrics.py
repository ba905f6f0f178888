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
from federation.runtime.metrics import CONTENT_TYPE
from federation.runtime.tracing import server_span

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
        with server_span(request.method, route, request.headers.get("traceparent")) as span:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's own answers (404, 405, …)
                status = exc.status
                raise
            status = response.status
            span.set_attribute("http.response.status_code", status)
            return response
    finally:
        seconds = time.perf_counter() - t0
        _observed(request, route, status, seconds)


def _observed(request: web.Request, route: str, status: int, seconds: float) -> None:
    broker = request.app[BROKER]
    metrics = broker.metrics
    metrics.requests.labels(route, request.method, str(status)).inc()
    if route == INTAKE and request.method == "POST":
        metrics.intake.labels(str(status)).observe(seconds)
    if route == "/metrics":
        return  # scraped every few seconds: counted, not logged
    _access.info(
        "http_request",
        method=request.method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 3),
    )
