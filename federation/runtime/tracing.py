"""OpenTelemetry traces: a span per intake, mapping, attempt and journal write; W3C trace context.

Off by default. :func:`configure_from_environment` turns it on when the standard variables ask for
an exporter (``OTEL_TRACES_EXPORTER=otlp|console``, or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless ``OTEL_SDK_DISABLED=true``; the exporter, its
endpoint, headers and the resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) are read
by the SDK itself from the same variables. Tests hand a provider to :func:`use`.

A source's ``traceparent`` header is accepted either way (a malformed one is ignored, as the W3C
specification says) and kept on the exchange, so a delivery made later, by any instance, continues
the source's trace, and the partner gets a ``traceparent`` of its own: with tracing on, naming the
attempt's span; with it off, the one the source sent, passed through unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from federation.logging import get_logger

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
# With tracing off: the valid traceparent the source sent with the request being handled.
_incoming: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
_log = get_logger(component="tracing")


def use(provider: TracerProvider | None) -> None:
    """Trace with ``provider`` from now on (None: tracing off)."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("tongban") if provider is not None else None


def enabled() -> bool:
    return _tracer is not None


def wanted(environ: Mapping[str, str]) -> bool:
    """Do the OTEL_* variables ask for traces?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if the OTEL_* variables ask for it; whether it is on."""
    env = os.environ if environ is None else environ
    if not wanted(env):
        use(None)
        return False
    exporter: SpanExporter
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "tongban")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    _log.info("tracing_enabled", exporter=type(exporter).__name__)
    return True


def shutdown() -> None:
    """Flush and stop the exporter (at process exit)."""
    if _provider is not None:
        _provider.shutdown()
    use(None)


def valid(traceparent: str | None) -> str | None:
    """``traceparent`` if it is a well-formed W3C trace context header, else None."""
    if not traceparent:
        return None
    parent = trace.get_current_span(_PROPAGATOR.extract({"traceparent": traceparent}))
    return traceparent.strip() if parent.get_span_context().is_valid else None


def _context_of(traceparent: str | None) -> Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def remember(traceparent: str | None) -> contextvars.Token[str | None]:
    """With tracing off: keep a source's valid ``traceparent`` for the request being handled
    (no header, the common case, costs no parsing); :func:`forget` it when the request ends."""
    return _incoming.set(valid(traceparent) if traceparent else None)


def forget(token: contextvars.Token[str | None]) -> None:
    _incoming.reset(token)


@contextlib.contextmanager
def server_span(method: str, route: str, traceparent: str | None) -> Iterator[Span]:
    """The span of one HTTP request (``intake`` for ``POST /v1/exchanges``), child of the
    caller's ``traceparent``; with tracing off, only remembers a valid one for the exchange."""
    if _tracer is None:
        token = remember(traceparent)
        try:
            yield trace.INVALID_SPAN
        finally:
            forget(token)
        return
    name = "intake" if (method, route) == ("POST", "/v1/exchanges") else f"{method} {route}"
    with _tracer.start_as_current_span(
        name,
        context=_context_of(valid(traceparent)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route},
    ) as current:
        yield current


@contextlib.contextmanager
def span(name: str, *, parent: str | None = None, **attributes: str | int) -> Iterator[Span]:
    """An internal span, child of the current one or else of ``parent`` (an exchange's kept
    traceparent); nothing at all with tracing off."""
    if _tracer is None:
        yield trace.INVALID_SPAN
        return
    context = None
    if not trace.get_current_span().get_span_context().is_valid:
        context = _context_of(parent)
    with _tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        yield current


def current_traceparent() -> str | None:
    """The traceparent to keep on an exchange created now, or to send to a partner now."""
    if _tracer is None:
        return _incoming.get()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def outgoing(kept: str | None) -> str | None:
    """The traceparent to send to a partner: the current span's with tracing on (the attempt),
    else the one the exchange keeps, unchanged."""
    return current_traceparent() if _tracer is not None else kept
