"""W3C trace context and OpenTelemetry spans, over real sockets, with an in-memory span exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from federation.domain.models import State
from federation.runtime import tracing
from tests.conftest import HK_APPLICATION
from tests.waiting import wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
BODY = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, every finished span kept in memory; off again after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(None)
        provider.shutdown()


@pytest.fixture
async def listening() -> AsyncIterator[Callable[[str], Any]]:
    """A partner in front of the hk simulator that keeps the headers of every request it gets."""
    runners: list[web.AppRunner] = []

    async def start(target: str) -> tuple[str, list[dict[str, str]]]:
        seen: list[dict[str, str]] = []

        async def forward(request: web.Request) -> web.Response:
            seen.append(dict(request.headers))
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    target + request.path_qs, data=await request.read(), headers=headers
                ) as r,
            ):
                return web.Response(
                    body=await r.read(), status=r.status, content_type=r.content_type
                )

        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}", seen

    yield start
    for runner in runners:
        await runner.cleanup()


async def _deliver(
    make_config: Callable[..., Path],
    simulators: Callable[..., Any],
    broker_at: Callable[..., Any],
    listening: Callable[[str], Any],
    headers: dict[str, str],
) -> tuple[str, list[dict[str, str]], Any]:
    """Submit one hk application over HTTP with ``headers``; wait until it is delivered; the
    exchange id, the headers the partner got and the exchange as the journal reads it back."""
    root = make_config()
    sims = await simulators(root)
    url, seen = await listening(sims["hk"].url)
    sims["hk"].url = url  # broker_at sends to the partner's url: ours, in front of the simulator
    async with broker_at(root, sims) as (broker, base), aiohttp.ClientSession(base) as http:
        async with http.post(
            "/v1/exchanges", json=BODY, headers={"Idempotency-Key": "t1", **headers}
        ) as r:
            assert r.status == 202
            xid = (await r.json())["id"]
        exchange = await wait_for(
            lambda: broker.get(xid), lambda ex: ex.state is State.DELIVERED, what="delivered"
        )
    return xid, seen, exchange


def _by_name(exported: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in exported:
        out.setdefault(span.name, []).append(span)
    return out


async def test_spans_continue_the_sources_trace_to_the_partner(
    spans: InMemorySpanExporter, make_config, simulators, broker_at, listening
) -> None:
    """With tracing on: intake, journal write, mapping and attempt spans all belong to the
    source's trace, the intake span is the source's span's child, and the partner gets a
    traceparent naming the attempt's span."""
    xid, seen, exchange = await _deliver(
        make_config, simulators, broker_at, listening, {"traceparent": TRACEPARENT}
    )
    found = _by_name(spans.get_finished_spans())
    assert {"intake", "journal.write", "mapping", "attempt"} <= found.keys()
    for span in (s for group in found.values() for s in group):
        assert span.context is not None
        assert format(span.context.trace_id, "032x") == TRACE, span.name
    [intake] = found["intake"]
    assert intake.parent is not None and format(intake.parent.span_id, "016x") == PARENT
    assert intake.attributes is not None and intake.attributes["http.response.status_code"] == 202
    [attempt] = found["attempt"]
    assert attempt.attributes is not None and attempt.attributes["exchange"] == xid
    [sent] = seen
    assert attempt.context is not None
    assert sent["traceparent"] == f"00-{TRACE}-{attempt.context.span_id:016x}-01"
    # the exchange keeps the intake's context (read back from the journal's history)
    assert exchange.traceparent is not None and exchange.traceparent.split("-")[1] == TRACE


async def test_tracing_off_passes_the_sources_traceparent_through(
    make_config, simulators, broker_at, listening
) -> None:
    """With tracing off (the default) the exchange keeps the source's traceparent and the
    partner gets it unchanged."""
    assert not tracing.enabled()
    _, seen, exchange = await _deliver(
        make_config, simulators, broker_at, listening, {"traceparent": TRACEPARENT}
    )
    assert exchange.traceparent == TRACEPARENT
    assert [h["traceparent"] for h in seen] == [TRACEPARENT]


async def test_a_malformed_traceparent_is_ignored(
    make_config, simulators, broker_at, listening
) -> None:
    """A traceparent that is not W3C trace context is dropped: the application is accepted and
    delivered, and no traceparent travels on."""
    _, seen, exchange = await _deliver(
        make_config, simulators, broker_at, listening, {"traceparent": "00-nonsense-01"}
    )
    assert exchange.traceparent is None
    assert ["traceparent" in h for h in seen] == [False]


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask(
    environ: dict[str, str], wanted: bool
) -> None:
    """Off by default; on when an exporter or an OTLP endpoint is set; OTEL_SDK_DISABLED wins."""
    assert tracing.wanted(environ) is wanted


def test_configure_from_the_environment_turns_tracing_on_and_off() -> None:
    """A console exporter asked for by OTEL_TRACES_EXPORTER turns tracing on; shutdown turns it
    off again."""
    try:
        assert tracing.configure_from_environment({"OTEL_TRACES_EXPORTER": "console"})
        assert tracing.enabled()
    finally:
        tracing.shutdown()
    assert not tracing.enabled()
    assert not tracing.configure_from_environment({})
