"""Bodies declared in a charset other than UTF-8 (or in one the XML document contradicts) could be
read in more than one way: at intake they are refused, with problem details or the SOAP media-type
fault and a refusal row (on every journal backend); from a partner they are never its yes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from federation.domain.models import State
from tests.conftest import HK_APPLICATION
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_delivery import DONE, sc_submission, settle, with_sc_reply
from tests.integration.test_inbound import KEY, inbound_config  # noqa: F401 (fixture)
from tests.integration.test_soap_inbound import ENVELOPE, soap_config  # noqa: F401 (fixture)

PROBLEM = "urn:tongban:problem:"
UTF7_NAME = "+lnNZJ2WH-"  # 陳大文 in UTF-7; as UTF-8 it reads as these ten ASCII characters


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An unopened journal of each backend."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


def submission_text(**application: Any) -> str:
    """A submission to hk as JSON text (with the application's fields replaced)."""
    body = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": {**HK_APPLICATION, **application},
    }
    return orjson.dumps(body).decode()


async def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, data=body, headers=headers) as r,
    ):
        return r.status, await r.read()


# -- the JSON intake ----------------------------------------------------------------------------


async def test_an_application_in_utf7_is_refused_and_journalled(
    make_config, broker_at, journal: Any
) -> None:
    """The reviewer's case: a name in UTF-7 declared as such is 415, not filed as '+lnNZJ2WH-'."""
    body = submission_text(applicant={**HK_APPLICATION["applicant"], "name": UTF7_NAME}).encode()
    headers = {"Content-Type": "application/json; charset=utf-7", "Idempotency-Key": "k7"}
    async with broker_at(make_config(), journal_obj=journal) as (broker, url):
        status, answer = await post(url, "/v1/exchanges", body, headers)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    problem = orjson.loads(answer)
    assert status == 415
    assert problem["type"] == PROBLEM + "unsupported-media-type"
    assert "'utf-7'" in problem["detail"] and "utf-8" in problem["detail"]
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (415, "unsupported-media-type", body)
    ]
    assert counts == {}


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=UTF-8", 202),
        ('application/json;charset="utf-8"', 202),
        ("application/json", 202),
        ('application/json; charset="UTF-7"', 415),
        ("application/json; charset=iso-8859-1", 415),
        ("application/json; charset=utf-16", 415),
        ("application/json; charset=utf-8; charset=utf-7", 415),
        ("application/json; charset=", 415),
    ],
)
async def test_only_utf8_or_no_charset_is_taken(
    make_config, broker_at, content_type: str, status: int
) -> None:
    """Any case, quoted or not; another charset, an empty one or two different ones: 415."""
    headers = {"Content-Type": content_type, "Idempotency-Key": "k8"}
    async with broker_at(make_config()) as (broker, url):
        got, answer = await post(url, "/v1/exchanges", submission_text().encode(), headers)
        refusals = await broker.journal.refusals()
    assert got == status, answer
    assert [r.problem for r in refusals] == ([] if status == 202 else ["unsupported-media-type"])


# -- the SOAP intake ----------------------------------------------------------------------------


@pytest.fixture
def soap_root(request: pytest.FixtureRequest) -> Path:
    """The inbound catalogue in which hk files by SOAP (test_soap_inbound's)."""
    root: Path = request.getfixturevalue("soap_config")
    return root


SOAP_HEADERS = {"Authorization": f"Bearer {KEY}", "SOAPAction": '""'}
APPLICATION = {
    "reference": "HKGOV-2026-000123",
    "applicant": {"name_en": "CHAN, Tai Man", "hkid": "a123456 3", "dob": "16/04/1978"},
}


def envelope(application: str = "", declaration: str = "utf-8") -> str:
    text = ENVELOPE.format(prolog="", application=application or orjson.dumps(APPLICATION).decode())
    return text.replace('encoding="utf-8"', f'encoding="{declaration}"')


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (envelope().encode(), "text/xml; charset=utf-7", "not 'utf-7'"),
        (envelope().encode(), 'text/xml; charset="ISO-8859-1"', "not 'iso-8859-1'"),
        (envelope().encode(), "text/xml; charset=utf-16", "utf-8 by its XML declaration"),
        (envelope(declaration="utf-16").encode("utf-16"), "text/xml; charset=utf-8", "byte order"),
        (envelope().encode("utf-16-be"), "text/xml; charset=utf-16le", "utf-16be"),
        (
            envelope().replace('<?xml version="1.0" encoding="utf-8"?>\n', "").encode(),
            "text/xml; charset=utf-16",
            "lack of an encoding declaration",
        ),
    ],
    ids=["utf-7", "latin-1", "utf-16-but-utf-8", "utf-8-but-utf-16", "le-but-be", "undeclared"],
)
async def test_a_soap_charset_not_read_or_contradicted_is_a_media_type_fault(
    soap_root, broker_at, body: bytes, content_type: str, says: str
) -> None:
    """The media-type fault (415 in its detail), a refusal row, nothing filed."""
    headers = {**SOAP_HEADERS, "Content-Type": content_type}
    async with broker_at(soap_root) as (broker, url):
        status, reply = await post(url, "/v1/partners/hk/soap", body, headers)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500
    assert b"<faultcode>soap-env:Client</faultcode>" in reply
    assert f'type="{PROBLEM}unsupported-media-type" status="415"'.encode() in reply
    assert says in reply.decode()
    assert [(r.problem, r.body) for r in refusals] == [("unsupported-media-type", body)]
    assert counts == {}


async def test_a_soap_charset_fault_is_journalled_on_every_backend(
    soap_root, broker_at, journal: Any
) -> None:
    """The UTF-7 request's refusal row, with its body, on SQLite, PostgreSQL and memory."""
    body = envelope().encode()
    headers = {**SOAP_HEADERS, "Content-Type": "text/xml; charset=utf-7"}
    async with broker_at(soap_root, journal_obj=journal) as (broker, url):
        status, _ = await post(url, "/v1/partners/hk/soap", body, headers)
        refusals = await broker.journal.refusals()
    assert status == 500
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (415, "unsupported-media-type", body)
    ]


@pytest.mark.parametrize("content_type", ['text/xml; charset="UTF-8"', "text/xml"])
async def test_a_soap_charset_that_agrees_is_filed(soap_root, broker_at, content_type: str) -> None:
    """UTF-8 said and written (or nothing said): filed as before."""
    headers = {**SOAP_HEADERS, "Content-Type": content_type}
    async with broker_at(soap_root) as (broker, url):
        status, reply = await post(url, "/v1/partners/hk/soap", envelope().encode(), headers)
        refusals = await broker.journal.refusals()
    assert status == 200, reply
    assert refusals == []


async def test_a_utf16_request_said_to_be_utf16_is_not_refused_for_its_charset(
    soap_root, broker_at
) -> None:
    """UTF-16, said and written: the charset is no reason to refuse it (the XML screen decides
    whether UTF-16 documents are read at all)."""
    body = envelope(declaration="utf-16").encode("utf-16")
    headers = {**SOAP_HEADERS, "Content-Type": "text/xml; charset=utf-16"}
    async with broker_at(soap_root) as (broker, url):
        await post(url, "/v1/partners/hk/soap", body, headers)
        refusals = await broker.journal.refusals()
    assert "unsupported-media-type" not in [r.problem for r in refusals]


# -- partner replies ----------------------------------------------------------------------------

FJ_RULES = """\
    reply:
      code: resultCode
      message: resultMsg
      success: {code: ["0"]}
"""
RECEIPT = '"result":{"ywlsh":"SC2026000001","zt":"SL"}'


@contextlib.asynccontextmanager
async def partner_answering(body: str, content_type: str) -> AsyncIterator[SimpleNamespace]:
    """A partner on loopback that answers every request 200 with ``body`` as ``content_type``."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body.encode(), headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/tongban")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ('{"resultCode":"0",' + RECEIPT + "}", "application/json; charset=utf-7", "'utf-7'"),
        ('{"resultCode":"0",' + RECEIPT + "}", "application/json; charset=gbk", "'gbk'"),
    ],
    ids=["utf-7", "gbk"],
)
async def test_a_reply_in_another_charset_is_never_delivered(
    make_config, broker_at, body: str, content_type: str, says: str
) -> None:
    """A yes in another charset: unconfirmed, the attempt's outcome unknown, the reason in
    last_error, the reply in the transcript."""
    root = with_sc_reply(make_config(), FJ_RULES)
    async with (
        partner_answering(body, content_type) as partner,
        broker_at(root, {"sc": partner}) as (broker, _),
    ):
        ex, _ = await broker.submit(sc_submission("sc-charset"))
        done = await settle(broker, ex.id, DONE | {State.UNCONFIRMED})
    assert done.state is State.UNCONFIRMED and done.receipt is None
    error = done.last_error or {}
    assert error["kind"] == "unconfirmed"
    assert says in error["message"] and "whether it took the request is unknown" in error["message"]
    [attempt] = done.attempt_history()
    assert attempt.outcome is not None and attempt.outcome.value == "unknown_outcome"
    assert attempt.response is not None and '"resultCode"' in attempt.response["body"]


async def test_a_reply_in_another_charset_is_unconfirmed_on_every_backend(
    make_config, broker_at, journal: Any
) -> None:
    """A yes declared in UTF-7: unconfirmed as SQLite, PostgreSQL and memory keep it."""
    root = with_sc_reply(make_config(), FJ_RULES)
    body = '{"resultCode":"0",' + RECEIPT + "}"
    async with (
        partner_answering(body, "application/json; charset=utf-7") as partner,
        broker_at(root, {"sc": partner}, journal_obj=journal) as (broker, _),
    ):
        ex, _ = await broker.submit(sc_submission("sc-every"))
        await settle(broker, ex.id, DONE | {State.UNCONFIRMED})
        kept = await broker.get(ex.id)
    assert kept is not None and kept.state is State.UNCONFIRMED
    assert "'utf-7'" in (kept.last_error or {})["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'application/json; charset="UTF-8"'],
)
async def test_a_plain_utf8_yes_is_still_delivered(
    make_config, broker_at, content_type: str
) -> None:
    """The same partner answering once, in UTF-8 (said or not): delivered with its receipt."""
    root = with_sc_reply(make_config(), FJ_RULES)
    async with (
        partner_answering('{"resultCode":"0",' + RECEIPT + "}", content_type) as partner,
        broker_at(root, {"sc": partner}) as (broker, _),
    ):
        ex, _ = await broker.submit(sc_submission("sc-plain"))
        done = await settle(broker, ex.id, DONE | {State.UNCONFIRMED})
    assert done.state is State.DELIVERED
    assert done.receipt is not None and done.receipt["receipt_number"] == "SC2026000001"
