"""An inbound SOAP request is read whole or refused: a Body with a second operation, an operation
with a field sent twice, an element that is not one of its fields, a field holding elements or text
outside the fields is a SOAP Client fault (invalid-request, 400 in its detail) with a refusal row
(on every journal backend) and nothing filed; before, the first of each was filed and the rest
silently dropped (the JSON intake refuses duplicate or unknown fields the same way)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.test_charsets import soap_root  # noqa: F401 (fixture)
from tests.integration.test_inbound import APPLICATION, KEY, inbound_config  # noqa: F401
from tests.integration.test_soap_inbound import soap_config  # noqa: F401 (fixture)

PROBLEM = "urn:tongban:problem:"
NS = "urn:tongban:inbound:2026"
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": '""',
}
APP = orjson.dumps(APPLICATION).decode()
SERVICE = "<tb:service>GD-GA-RP-HK</tb:service>"
KEY_1 = "<tb:idempotencyKey>one-1</tb:idempotencyKey>"
KEY_2 = "<tb:idempotencyKey>one-2</tb:idempotencyKey>"
APP_1 = f"<tb:application>{APP}</tb:application>"
FILE_1 = f"<tb:FileApplication>{SERVICE}{KEY_1}{APP_1}</tb:FileApplication>"


def envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:tb="{NS}"><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


def filing(inner: str) -> bytes:
    return envelope(f"<tb:FileApplication>{inner}</tb:FileApplication>")


async def post(url: str, body: bytes, action: str = '""') -> tuple[int, str]:
    headers = {**HEADERS, "SOAPAction": action}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/partners/hk/soap", data=body, headers=headers) as r,
    ):
        return r.status, (await r.read()).decode()


REFUSED = [
    ("two-operations", envelope(FILE_1 + FILE_1.replace("one-1", "one-2")), "2 elements"),
    ("two-keys", filing(SERVICE + KEY_1 + KEY_2 + APP_1), "idempotencyKey: sent more than once"),
    (
        "two-applications",
        filing(SERVICE + KEY_1 + APP_1 + "<tb:application>{}</tb:application>"),
        "application: sent more than once",
    ),
    (
        "two-services",
        filing(SERVICE + SERVICE.replace("HK", "MO") + KEY_1 + APP_1),
        "service: sent more than once",
    ),
    ("unknown-field", filing(SERVICE + KEY_1 + APP_1 + "<tb:foo>1</tb:foo>"), "foo: not a field"),
    (
        "unqualified-field",
        filing(SERVICE + KEY_1 + APP_1 + "<callback>https://x.example</callback>"),
        "callback: not a field of FileApplication (without a namespace)",
    ),
    (
        "field-of-another-namespace",
        filing(SERVICE + KEY_1 + APP_1 + '<o:service xmlns:o="urn:other">X</o:service>'),
        "service: not a field of FileApplication (in {urn:other})",
    ),
    (
        "field-holding-elements",
        filing(SERVICE.replace("</", "<tb:more>MO</tb:more></") + KEY_1 + APP_1),
        "service: holds elements",
    ),
    ("stray-text", filing(SERVICE + "stray" + KEY_1 + APP_1), "holds text outside its fields"),
    (
        "report-status-extra",
        envelope(f"<tb:ReportStatus>{KEY_1}<tb:update>{{}}</tb:update><tb:x/></tb:ReportStatus>"),
        "x: not a field of ReportStatus",
    ),
    (
        "status-two-keys",
        envelope(f"<tb:GetApplicationStatus>{KEY_1}{KEY_2}</tb:GetApplicationStatus>"),
        "idempotencyKey: sent more than once",
    ),
]


@pytest.mark.parametrize(("body", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_what_would_not_be_read_is_a_client_fault_and_journalled(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    body: bytes,
    says: str,
) -> None:
    async with broker_at(soap_root) as (broker, url):
        status, reply = await post(url, body)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500
    assert "<faultcode>soap-env:Client</faultcode>" in reply
    assert f'type="{PROBLEM}invalid-request" status="400"' in reply
    assert says in reply, reply
    assert [(r.status, r.problem, r.body) for r in refusals] == [(400, "invalid-request", body)]
    assert counts == {}


async def test_a_second_operation_is_journalled_on_every_backend(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    journal_of: Any,
) -> None:
    """The reviewer's case (200 with one exchange id, nothing for the second), on SQLite,
    PostgreSQL and memory: the refusal row, and no exchange."""
    body = envelope(FILE_1 + FILE_1.replace("one-1", "one-2"))
    async with broker_at(soap_root, journal_obj=journal_of) as (broker, url):
        status, reply = await post(url, body)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500, reply
    assert [(r.status, r.problem, r.body) for r in refusals] == [(400, "invalid-request", body)]
    assert counts == {}


@pytest.mark.parametrize(
    "body",
    [
        envelope(FILE_1),
        envelope(f"<!-- one -->{FILE_1}<!-- filing -->"),
        filing(f"\n  {SERVICE}<!-- the key -->{KEY_1}\n  {APP_1}\n"),
    ],
    ids=["plain", "comments-around", "comments-and-whitespace-inside"],
)
async def test_one_operation_with_each_field_once_is_filed(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    body,
) -> None:
    """Comments and whitespace between the fields are no reason to refuse."""
    async with broker_at(soap_root) as (broker, url):
        status, reply = await post(url, body)
        refusals = await broker.journal.refusals()
    assert status == 200, reply
    assert "FileApplicationResponse" in reply
    assert refusals == []


async def test_a_filing_with_two_body_elements_is_a_client_fault_and_journalled(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    journal_of: Any,
) -> None:
    """The second application in a second Body was dropped, the first filed (200); now nothing
    is filed and the refusal is journalled, on SQLite, PostgreSQL and memory."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:tb="{NS}"><s:Body>{FILE_1}</s:Body>'
        f"<s:Body>{FILE_1.replace('one-1', 'one-2')}</s:Body></s:Envelope>"
    ).encode()
    async with broker_at(soap_root, journal_obj=journal_of) as (broker, url):
        status, reply = await post(url, body)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500, reply
    assert "<faultcode>soap-env:Client</faultcode>" in reply
    assert "more than one Body" in reply
    assert [(r.status, r.problem) for r in refusals] == [(400, "invalid-request")]
    assert counts == {}
