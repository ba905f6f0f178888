"""A SOAP partner that declares a header for it gets the W3C traceparent in the SOAP envelope.

A mapping's headers: section reads it as ``from: exchange.traceparent``, like the other
per-message exchange values; the header parts are those of the published X-Road WSDL
(tests/foreign/xroad/), loaded through its schema catalogue; no socket is opened.
"""

from __future__ import annotations

import pytest
from lxml import etree

from adapters.base import OutboundRequest
from adapters.body import Prefixes
from adapters.headerplan import HeaderSettings, plan_for
from adapters.soapheaders import HeaderParts, compile_headers
from adapters.wsdl import find_port, load_document
from adapters.xroad import XRoadProfile
from federation.config.headers import EXCHANGE_VALUES
from tests.foreign.xroad_stub import CATALOGUE, WSDL_PATH

XRD = "http://x-road.eu/xsd/xroad.xsd"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PROFILE = XRoadProfile(
    client={"instance": "CN-GD", "member_class": "GOV", "member_code": "1144", "subsystem": "tb"},
    service={"instance": "CN-GD", "member_class": "GOV", "member_code": "1100"},
    user_id="CN-USER",
)


@pytest.fixture(scope="module")
def parts() -> HeaderParts:
    """verifyCertificate's header parts, compiled."""
    port = find_port(
        load_document(WSDL_PATH, WSDL_PATH.parent, tuple(CATALOGUE.items())), None, None
    )
    return compile_headers(port.binding.get("verifyCertificate").input, Prefixes())


@pytest.mark.parametrize(("sent", "header"), [(TRACEPARENT, TRACEPARENT), (None, None)])
def test_exchange_traceparent_fills_a_declared_header(
    parts: HeaderParts, sent: str | None, header: str | None
) -> None:
    """A header path mapped from exchange.traceparent carries the attempt's traceparent; with
    none (the source sent none, tracing off) the element is empty."""
    assert "traceparent" in EXCHANGE_VALUES
    plan = plan_for(
        HeaderSettings(profile=PROFILE), parts, operation="verifyCertificate", body_paths=set()
    )
    request = OutboundRequest(
        exchange_id="ex-1",
        idempotency_key="k-1",
        service="S",
        payload={},
        attempt=1,
        traceparent=sent,
    )
    _, blocks = plan.fill(request, {"uscc": "X", "@exchange": {"issue": "traceparent"}})
    decls = (
        'xmlns:ns0="http://x-road.eu/xsd/xroad.xsd" xmlns:ns1="http://x-road.eu/xsd/identifiers"'
    )
    found = etree.fromstring(f"<h {decls}>{''.join(blocks)}</h>").findtext(f"{{{XRD}}}issue")
    assert (found or None) == header
