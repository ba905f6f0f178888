"""A SOAP reply whose Body holds more than one element: the answer and a Fault, a Fault and the
answer, two answers. One answer or one Fault belongs there (WS-I Basic Profile R2201; SOAP 1.2
puts nothing beside a Fault), so such a reply says yes and no at once.

Before, only the Body's first element was read: the Transport Department's receipt followed by a
Fault was *delivered*, the same two the other way round *rejected*, and two receipts delivered
with the first. Now, with a success status, it is never a yes and never retried by itself (the
partner would answer the same): the attempt's outcome is unknown and the exchange ends
unconfirmed, as a REST reply naming a key twice does; with any other status, the status decides.
Through a real broker on every journal, the partner's own count of requests showing it was asked
once.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from adapters.registry import protocols
from adapters.soap import SoapAdapter
from federation.config import load_config
from federation.domain.errors import PermanentError, TransientError, UnrecognisedReply
from federation.domain.models import State
from federation.runtime.broker import Submission
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_soap_adapter import (
    _ANSWER,
    _SOAP11,
    HK_NS,
    REPO,
    hostile,
    request,
    soap_root,  # noqa: F401 (fixture)
)
from tests.integration.test_soap_lifecycle import SERVICE, application, catalogue_copy
from tests.integration.test_xml_wide_encodings import journal_of, rewriting  # noqa: F401

FAULT = "<e:Fault><faultcode>e:Client</faultcode><faultstring>refused</faultstring></e:Fault>"
OTHER = _ANSWER.replace("HK-1", "HK-2")
BODIES = {
    "answer-then-fault": (_ANSWER + FAULT, "VehicleLicenceRenewalResponse, Fault"),
    "fault-then-answer": (FAULT + _ANSWER, "Fault, VehicleLicenceRenewalResponse"),
    "two-answers": (
        _ANSWER + OTHER,
        "VehicleLicenceRenewalResponse, VehicleLicenceRenewalResponse",
    ),
}


def envelope(body: str) -> bytes:
    return f'<e:Envelope xmlns:e="{_SOAP11}"><e:Body>{body}</e:Body></e:Envelope>'.encode()


@pytest.mark.parametrize("kind", sorted(BODIES))
async def test_a_200_with_more_than_one_element_in_the_body_is_never_a_yes(
    soap_root: Any,  # noqa: F811 (the fixture imported above)
    kind: str,
) -> None:
    body, names = BODIES[kind]
    async with hostile({kind: envelope(body)}) as url:
        config = load_config(soap_root(), protocols()).with_endpoints({"hk": f"{url}/{kind}"})
        adapter = SoapAdapter(config.partners["hk"])
        await adapter.start()
        try:
            with pytest.raises(UnrecognisedReply) as info:
                await adapter.send(request("hk"))
        finally:
            await adapter.close()
    assert info.value.message.startswith(
        f"hk answered HTTP 200 with 2 elements in the SOAP Body ({names}), where one answer or "
        "one Fault belongs: whether it took the request is unknown"
    )
    assert info.value.transcript is not None and info.value.transcript.response is not None


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (400, PermanentError)])
async def test_with_an_error_status_the_status_decides(
    soap_root: Any,  # noqa: F811 (the fixture imported above)
    status: int,
    error: type[Exception],
) -> None:
    """A Client fault and a receipt under HTTP 500: the fault alone would be permanent, the
    receipt alone a yes; the status says the partner failed, so it is retried (400: refused)."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=status, body=envelope(FAULT + _ANSWER), content_type="text/xml")

    async with hostile({"both": answer}) as url:
        config = load_config(soap_root(), protocols()).with_endpoints({"hk": f"{url}/both"})
        adapter = SoapAdapter(config.partners["hk"])
        await adapter.start()
        try:
            with pytest.raises(error) as info:
                await adapter.send(request("hk"))
        finally:
            await adapter.close()
    assert not isinstance(info.value, UnrecognisedReply)
    assert f"HTTP {status} with 2 elements in the SOAP Body (Fault, Vehicle" in str(info.value)


def with_a_fault_after(body: bytes) -> bytes:
    """TD's own receipt with a Client fault after it, in the same Body."""
    text = body.decode("utf-8")
    found = re.search(r"<([\w.-]+):Envelope\b", text)
    assert found is not None, text
    soap = found.group(1)
    fault = (
        f"<{soap}:Fault><faultcode>{soap}:Client</faultcode>"
        f"<faultstring>refused</faultstring></{soap}:Fault>"
    )
    end = text.rindex(f"</{soap}:Body>")
    return (text[:end] + fault + text[end:]).encode("utf-8")


async def test_the_receipt_followed_by_a_fault_ends_unconfirmed_asked_once(
    tmp_path: Path,
    simulators: Any,
    broker_at: Any,
    journal_of: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    """TD's simulator files the renewal and answers with its receipt; a proxy adds a Fault after
    it. The exchange ends unconfirmed without a receipt, its one attempt's outcome unknown, the
    partner asked once (its own count); before, it was delivered."""
    root = catalogue_copy(tmp_path / "config")
    sims = await simulators(root)
    td = sims["hk"]
    async with rewriting(td.url, with_a_fault_after) as url:
        routed = {**sims, "hk": SimpleNamespace(url=url)}
        async with broker_at(root, routed, journal_obj=journal_of) as (broker, _):
            ex, _ = await broker.submit(
                Submission(
                    source="gd-portal",
                    partner="hk",
                    service=SERVICE,
                    idempotency_key="crowded-1",
                    application=application(),
                )
            )
            after = await settle(broker, ex.id, DONE | {State.RETRY_WAIT, State.UNCONFIRMED})
    assert after.state is State.UNCONFIRMED, after.state
    assert after.receipt is None
    [attempt] = after.attempt_history()
    assert attempt.outcome is not None and attempt.outcome.value == "unknown_outcome"
    said = (after.last_error or {}).get("message", "")
    assert "2 elements in the SOAP Body (" in said and ", Fault)" in said
    assert td.requests == 1 and [s.count for s in td.seen.values()] == [1]


# -- a second Body element; an output of several parts -------------------------------------------

SECOND_BODY = (
    f'<e:Envelope xmlns:e="{_SOAP11}"><e:Body>{_ANSWER}</e:Body><e:Body>{FAULT}</e:Body>'
    "</e:Envelope>"
).encode()
WSDL = (REPO / "partners" / "wsdl" / "hk-td-vehicle-licensing.wsdl").read_text(encoding="utf-8")
TWO_PARTS = WSDL.replace(
    '<wsdl:part name="body" element="td:VehicleLicenceRenewalResponse"/>',
    '<wsdl:part name="body" element="td:VehicleLicenceRenewalResponse"/>\n'
    '    <wsdl:part name="report" element="td:RenewalStatusReport"/>',
)
REPORT = (
    f'<t:RenewalStatusReport xmlns:t="{HK_NS}"><t:ref_no>HK-1</t:ref_no>'
    "<t:status>RECEIVED</t:status><t:updated_at>2025-04-28T10:15:00+08:00</t:updated_at>"
    "</t:RenewalStatusReport>"
)


async def send_to(root: Path, url: str) -> Any:
    config = load_config(root, protocols()).with_endpoints({"hk": url})
    adapter = SoapAdapter(config.partners["hk"])
    await adapter.start()
    try:
        return await adapter.send(request("hk"))
    finally:
        await adapter.close()


async def test_a_receipt_and_a_fault_in_two_body_elements_is_never_a_yes(
    soap_root: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    """An Envelope has one Body: the receipt in the first and a Fault in a second was read as
    the first alone, delivered."""
    async with hostile({"two": SECOND_BODY}) as url:
        with pytest.raises(UnrecognisedReply) as info:
            await send_to(soap_root(), f"{url}/two")
    assert info.value.message.startswith(
        "hk answered HTTP 200 with more than one Body in the SOAP Envelope, where one answer"
    )


async def test_the_parts_of_an_output_of_several_parts_are_delivered(
    soap_root: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    """An output message of two body parts (WSDL 1.1 allows it; zeep reads it): the reply holds
    both elements side by side, as the WSDL says, and is the partner's yes."""
    assert TWO_PARTS != WSDL
    reply_body = envelope(_ANSWER + REPORT)
    async with hostile({"parts": reply_body}) as url:
        root = soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": TWO_PARTS})
        reply = await send_to(root, f"{url}/parts")
    assert reply.problem is None, reply.problem
    assert reply.body["body"]["ref_no"] == "HK-1" and reply.body["report"]["ref_no"] == "HK-1"


async def test_a_fault_beside_the_parts_of_such_an_output_is_never_a_yes(
    soap_root: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    async with hostile({"parts": envelope(_ANSWER + REPORT + FAULT)}) as url:
        root = soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": TWO_PARTS})
        with pytest.raises(UnrecognisedReply):
            await send_to(root, f"{url}/parts")
