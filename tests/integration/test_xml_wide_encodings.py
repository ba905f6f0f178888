"""XML in UTF-16 without a byte-order mark (and UCS-4) through a real broker, on every journal.

The review's bypass: UTF-16LE without a BOM starts ``3C 00``, so the screen once searched its raw
bytes for ``<!`` as if they were UTF-8, found nothing, and libxml2 (which recognises the encoding
from ``<\\0?\\0``) parsed the DOCTYPE. A Transport Department reply in that form was marked
delivered, and a SOAP filing in it was answered 200. Both must end as the same document in UTF-8
does: the reply an unknown outcome, never delivered; the filing the ``xml-refused`` fault; each
with its journal record.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from federation.api.net import start_site
from federation.domain.models import State
from federation.runtime.broker import Submission
from tests.integration.pg import JOURNALS, open_journal_of
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import APPLICATION, KEY, inbound_config  # noqa: F401 (fixture)
from tests.integration.test_soap_inbound import ENVELOPE, soap_config  # noqa: F401 (fixture)
from tests.integration.test_soap_lifecycle import SERVICE, application, catalogue_copy

DOCTYPE = '<!DOCTYPE Envelope [<!ENTITY f SYSTEM "file:///etc/passwd">]>'
# How a document is written: its codec, and whether it carries the XML declaration.
FORMS = {
    "utf-8": ("utf-8", "UTF-8"),  # today's refusal, the behaviour to match
    "utf-16le-no-bom": ("utf-16-le", "UTF-16"),
    "utf-16be-no-bom": ("utf-16-be", "UTF-16"),
    "ucs4le-no-bom": ("utf-32-le", "UCS-4"),
}


def written(text: str, form: str) -> bytes:
    """``text`` (no XML declaration) with a declaration naming its encoding, encoded as ``form``."""
    codec, name = FORMS[form]
    return f'<?xml version="1.0" encoding="{name}"?>\n{text}'.encode(codec)


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An open journal of each backend, handed to the broker."""
    async with open_journal_of(request.param, tmp_path) as journal:
        yield journal


@contextlib.asynccontextmanager
async def rewriting(target: str, rewrite: Callable[[bytes], bytes]) -> AsyncIterator[str]:
    """A 'partner' on loopback that passes each request to ``target`` and the reply, rewritten,
    back: the simulator's own valid receipt, in another form."""

    async def handler(req: web.Request) -> web.Response:
        headers = {
            k: v for k, v in req.headers.items() if k.lower() in ("content-type", "soapaction")
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(target, data=await req.read(), headers=headers) as r,
        ):
            status, body = r.status, await r.read()
        return web.Response(status=status, body=rewrite(body), content_type="text/xml")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner, url = await start_site(app)
    try:
        yield url
    finally:
        await runner.cleanup()


def with_doctype(form: str) -> Callable[[bytes], bytes]:
    """The reply with a DOCTYPE declaring an external entity, written as ``form``."""

    def rewrite(body: bytes) -> bytes:
        text = body.decode("utf-8")
        if text.startswith("<?xml"):
            text = text[text.index("?>") + 2 :].lstrip()
        return written(DOCTYPE + text, form)

    return rewrite


@pytest.mark.parametrize("form", ["utf-8", "utf-16le-no-bom", "utf-16be-no-bom", "ucs4le-no-bom"])
async def test_a_reply_with_a_doctype_in_any_encoding_is_never_delivered(
    tmp_path: Path, simulators, broker_at, journal_of: Any, form: str
) -> None:
    """TD's valid receipt with a DOCTYPE, in UTF-8 or UTF-16 / UCS-4 without a BOM: the attempt is
    an unknown outcome saying why, in the journal; the exchange is not delivered, no receipt."""
    root = catalogue_copy(tmp_path / "config")
    sims = await simulators(root)
    async with rewriting(sims["hk"].url, with_doctype(form)) as url:
        sims = {**sims, "hk": SimpleNamespace(url=url)}
        async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
            ex, _ = await broker.submit(
                Submission(
                    source="gd-portal",
                    partner="hk",
                    service=SERVICE,
                    idempotency_key=f"wide-{form}",
                    application=application(),
                )
            )
            after = await settle(broker, ex.id, DONE | {State.RETRY_WAIT, State.UNCONFIRMED})
    assert after.state is not State.DELIVERED
    assert after.receipt is None
    first = after.attempt_history()[0]
    assert first.outcome is not None and first.outcome.value == "unknown_outcome"
    said = (after.last_error or {}).get("message", "")
    if form.startswith("ucs4"):
        assert "UCS-4 (UTF-32) is not accepted" in said
    else:
        assert "document type declarations are not accepted" in said


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ("utf-8", "document type declarations are not accepted"),
        ("utf-16le-no-bom", "document type declarations are not accepted"),
        ("utf-16be-no-bom", "document type declarations are not accepted"),
        ("ucs4le-no-bom", "UCS-4 (UTF-32) is not accepted"),
    ],
)
async def test_a_soap_filing_with_a_doctype_in_any_encoding_gets_the_xml_refused_fault(
    request: pytest.FixtureRequest, broker_at, journal_of: Any, form: str, says: str
) -> None:
    """FileApplication with a DOCTYPE whose entity hides part of the idempotency key: the
    xml-refused Client fault and a refusal row, nothing filed, in UTF-8 and without a BOM alike."""
    envelope = ENVELOPE.format(prolog="", application=orjson.dumps(APPLICATION).decode())
    # the declaration comes from written(); the entity would drop part of the key
    envelope = envelope.split("\n", 1)[1].replace("raw-1", "k-&f;-1")
    body = written(DOCTYPE.replace("Envelope", "s:Envelope") + envelope, form)
    config = request.getfixturevalue("soap_config")
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "text/xml", "SOAPAction": '""'}
    async with broker_at(config, journal_obj=journal_of) as (broker, url):
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url}/v1/partners/hk/soap", data=body, headers=headers) as r,
        ):
            status, reply = r.status, await r.read()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500, reply
    assert b"<faultcode>soap-env:Client</faultcode>" in reply
    assert says in reply.decode()
    assert [r.problem for r in refusals] == ["xml-refused"]
    assert counts == {}
