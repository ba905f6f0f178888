"""The aiohttp application: every route of the broker's API in one place."""

from __future__ import annotations

from aiohttp import web

from federation.api import admin, docs, inbound, intake, soapinbound, support
from federation.api.console import create_console
from federation.api.edge import BROKER, problems_middleware, strip_server
from federation.api.metrics import metrics, observe_middleware
from federation.runtime.broker import Broker


def create_app(broker: Broker) -> web.Application:
    """The aiohttp application serving the broker's API."""
    limit = broker.catalogue.config.broker.max_body_bytes
    # Our own limit check answers 413 with problem details; aiohttp's is only a backstop.
    # observe first: it times, traces and logs the answer the client gets, problems included
    app = web.Application(
        middlewares=[observe_middleware, problems_middleware], client_max_size=limit + 1024
    )
    app[BROKER] = broker
    app.on_response_prepare.append(strip_server)
    app.router.add_post("/v1/exchanges", intake.submit)
    app.router.add_get("/v1/exchanges/{id}", intake.get_exchange)
    app.router.add_post("/v1/exchanges/{id}/supplements", intake.supplement)
    app.router.add_get("/v1/partners", admin.list_partners)
    app.router.add_get("/v1/stats", admin.stats)
    app.router.add_post("/v1/admin/reload", admin.reload)
    app.router.add_get("/v1/audit", admin.audit)
    support.setup(app)
    inbound.setup(app)
    soapinbound.setup(app)
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    app.router.add_get("/metrics", metrics)
    app.add_subapp("/console/", create_console())  # the operator and support console
    docs.setup(app)
    return app
