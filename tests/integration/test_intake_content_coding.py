"""Request bodies with a Content-Encoding, at every intake (the JSON intake, a partner's REST filing,
the SOAP filing): one that does not decompress as its header says is 400 body-not-decompressible,
a coding not read here (br, x-foo, two at once) is 415 unsupported-content-encoding, each with a
refusal row (on every journal backend), a SOAP Client fault on the SOAP route, never a 500 and
nothing of the body in the logs; gzip and deflate bodies that decompress are filed as before."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from federation.api.app import create_app
from federation.api.net import start_site
from federation.logging import capture_logs
from tests.conftest import HK_APPLICATION
from tests.integration.test_charsets import soap_root  # noqa: F401 (fixture)
from tests.integration.test_inbound import APPLICATION, KEY, inbound_config  # noqa: F401
from tests.integration.test_soap_inbound import ENVELOPE, soap_config  # noqa: F401 (fixture)

PROBLEM = "urn:tongban:problem:"
NAME = "陳大文"
PLAIN = orjson.dumps(
    {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": {
            **HK_APPLICATION,
            "applicant": {**HK_APPLICATION["applicant"], "name": NAME},
        },
    }
)
SOAP_BODY = ENVELOPE.format(prolog="", application=orjson.dumps(APPLICATION).decode()).encode()
SOAP_HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "SOAPAction": '""',
    "Content-Type": "text/xml; charset=utf-8",
}
PARTNER_BODY = orjson.dumps({"service": "GD-GA-RP-HK", "application": APPLICATION})
PARTNER_HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


@pytest.fixture
def partner_root(request: pytest.FixtureRequest) -> Path:
    """The inbound catalogue in which hk files by REST (test_inbound's)."""
    root: Path = request.getfixturevalue("inbound_config")
    return root


async def post(
    url: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, data=body, headers=headers) as r,
    ):
        return r.status, await r.read(), dict(r.headers)


def raw_deflate(data: bytes) -> bytes:
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeeze.compress(data) + squeeze.flush()


def json_headers(coding: str, key: str = "cc-1") -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Encoding": coding, "Idempotency-Key": key}


# -- the JSON intake ----------------------------------------------------------------------------

NOT_DECOMPRESSING = [
    ("gzip", b"not-compressed " + NAME.encode()),
    ("deflate", b"not-compressed " + NAME.encode()),
    ("gzip", gzip.compress(PLAIN)[:-12]),  # cut short
    ("deflate", zlib.compress(PLAIN) + b"tail"),  # bytes after its end
    ("gzip", gzip.compress(PLAIN) + b"junk"),
]


@pytest.mark.parametrize(
    ("coding", "body"), NOT_DECOMPRESSING, ids=["gzip", "deflate", "cut", "tail", "junk"]
)
async def test_a_json_body_that_does_not_decompress_is_400_and_journalled(
    make_config, broker_at, coding: str, body: bytes
) -> None:
    """The reviewer's case (was 500 internal-error, a traceback, no refusal row)."""
    with capture_logs() as logs:
        async with broker_at(make_config()) as (broker, url):
            status, answer, _ = await post(url, "/v1/exchanges", body, json_headers(coding))
            refusals = await broker.journal.refusals()
            counts = await broker.journal.counts()
    problem = orjson.loads(answer)
    assert status == 400, problem
    assert problem["type"] == PROBLEM + "body-not-decompressible"
    assert f"({coding})" in problem["detail"]
    assert [(r.status, r.problem, r.idempotency_key, r.body) for r in refusals] == [
        (400, "body-not-decompressible", "cc-1", body)
    ]
    assert counts == {}
    assert not [line for line in logs if line.get("event") == "request_failed"]
    assert NAME not in repr(logs) and "not-compressed" not in repr(logs)


async def test_a_body_that_does_not_decompress_is_journalled_on_every_backend(
    make_config, broker_at, journal_of: Any
) -> None:
    """SQLite, PostgreSQL and memory: the refusal row with the body as it was sent."""
    body = b"not-compressed"
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        status, _, _ = await post(url, "/v1/exchanges", body, json_headers("gzip"))
        refusals = await broker.journal.refusals()
    assert status == 400
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (400, "body-not-decompressible", body)
    ]


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(PLAIN)),
        ("x-gzip", gzip.compress(PLAIN)),
        ("GZIP", gzip.compress(PLAIN[:40]) + gzip.compress(PLAIN[40:])),  # two members
        ("deflate", zlib.compress(PLAIN)),
        ("deflate", raw_deflate(PLAIN)),  # as aiohttp took it
        ("identity", PLAIN),
        ("identity, gzip", gzip.compress(PLAIN)),
    ],
    ids=["gzip", "x-gzip", "members", "deflate", "raw-deflate", "identity", "identity-gzip"],
)
async def test_a_body_that_decompresses_is_filed(
    make_config, broker_at, coding: str, body: bytes
) -> None:
    """gzip and deflate are read as before; the application filed is the decompressed one."""
    async with broker_at(make_config()) as (broker, url):
        status, answer, _ = await post(url, "/v1/exchanges", body, json_headers(coding))
        exchange = await broker.journal.get(orjson.loads(answer)["id"]) if status == 202 else None
        refusals = await broker.journal.refusals()
    assert status == 202, answer
    assert refusals == []
    assert exchange is not None
    assert exchange.application["applicant"]["name"] == NAME


async def test_a_body_that_decompresses_past_the_limit_is_413(make_config, broker_at) -> None:
    """A small gzip body that grows past max_body_bytes is refused, its compressed bytes kept."""
    bomb = gzip.compress(b" " * 50_000_000)
    async with broker_at(make_config()) as (broker, url):
        status, answer, _ = await post(url, "/v1/exchanges", bomb, json_headers("gzip"))
        refusals = await broker.journal.refusals()
    problem = orjson.loads(answer)
    assert status == 413, problem
    assert problem["type"] == PROBLEM + "body-too-large"
    assert "decompresses (gzip)" in problem["detail"]
    assert [(r.status, r.problem, r.body) for r in refusals] == [(413, "body-too-large", bomb)]


@pytest.mark.parametrize(
    ("coding", "says"),
    [
        ("br", "'br' is not read here"),
        ("x-foo", "'x-foo' is not read here"),
        ("gzip, gzip", "2 content codings"),
        ("compress", "'compress' is not read here"),
    ],
)
async def test_a_coding_not_read_here_is_415_and_journalled(
    make_config, broker_at, coding: str, says: str
) -> None:
    """br was aiohttp's bare HTTP/1.0 400 asking to install Brotli (no refusal row); x-foo was
    read as if uncompressed and filed 202. Both now 415, naming the codings read."""
    async with broker_at(make_config()) as (broker, url):
        status, answer, _ = await post(url, "/v1/exchanges", PLAIN, json_headers(coding))
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    problem = orjson.loads(answer)
    assert status == 415, problem
    assert problem["type"] == PROBLEM + "unsupported-content-encoding"
    assert says in problem["detail"] and "gzip or deflate" in problem["detail"]
    assert problem["accepted"] == ["gzip", "deflate"]
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (415, "unsupported-content-encoding", PLAIN)
    ]
    assert counts == {}


async def test_an_unread_coding_is_journalled_on_every_backend(
    make_config, broker_at, journal_of: Any
) -> None:
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        status, _, _ = await post(url, "/v1/exchanges", PLAIN, json_headers("br"))
        refusals = await broker.journal.refusals()
    assert status == 415
    assert [(r.status, r.problem) for r in refusals] == [(415, "unsupported-content-encoding")]


async def test_two_content_encoding_headers_are_both_read(make_config, broker_at) -> None:
    """gzip in one header, x-foo in another: 415, not the body taken as gzip alone."""
    headers = CIMultiDict(json_headers("gzip"))
    headers.add("Content-Encoding", "x-foo")
    async with broker_at(make_config()) as (broker, url):
        async with (
            aiohttp.ClientSession() as http,
            http.post(url + "/v1/exchanges", data=gzip.compress(PLAIN), headers=headers) as r,
        ):
            status, problem = r.status, await r.json(content_type=None)
        refusals = await broker.journal.refusals()
    assert status == 415, problem
    assert "2 content codings (gzip, x-foo)" in problem["detail"]
    assert [r.problem for r in refusals] == ["unsupported-content-encoding"]


async def test_a_server_that_decompresses_itself_refuses_the_same(make_config, broker_at) -> None:
    """The app served without the edge's server (aiohttp decompressing, as before): a body that
    does not decompress is still 400 body-not-decompressible with its refusal row, not a 500."""
    async with broker_at(make_config()) as (broker, _):
        runner, url = await start_site(create_app(broker), access_log=None)
        try:
            status, answer, _ = await post(url, "/v1/exchanges", b"plain", json_headers("gzip"))
        finally:
            await runner.cleanup()
        refusals = await broker.journal.refusals()
    assert status == 400, answer
    assert orjson.loads(answer)["type"] == PROBLEM + "body-not-decompressible"
    assert [(r.status, r.problem) for r in refusals] == [(400, "body-not-decompressible")]


@pytest.mark.parametrize(
    ("accept", "slug", "title"),
    [
        ("zh-CN", "body-not-decompressible", "请求正文无法按其 Content-Encoding 解压"),
        ("zh-HK", "body-not-decompressible", "請求正文無法按其 Content-Encoding 解壓"),
        (
            "en",
            "body-not-decompressible",
            "Request body does not decompress as its Content-Encoding says",
        ),
        ("zh-CN", "unsupported-content-encoding", "不支持该请求正文的内容编码"),
        ("zh-TW", "unsupported-content-encoding", "不支援該請求正文的內容編碼"),
        (None, "unsupported-content-encoding", "Request body's Content-Encoding is not supported"),
    ],
)
async def test_the_titles_follow_accept_language(
    make_config, broker_at, accept: str | None, slug: str, title: str
) -> None:
    coding = "gzip" if slug == "body-not-decompressible" else "br"
    headers = json_headers(coding)
    if accept is not None:
        headers["Accept-Language"] = accept
    async with broker_at(make_config()) as (_, url):
        _, answer, _ = await post(url, "/v1/exchanges", PLAIN, headers)
    problem = orjson.loads(answer)
    assert (problem["type"], problem["title"]) == (PROBLEM + slug, title)


# -- a partner's REST filing and the SOAP filing ------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "body", "status", "slug"),
    [
        ("gzip", PARTNER_BODY, 400, "body-not-decompressible"),
        ("deflate", PARTNER_BODY, 400, "body-not-decompressible"),
        ("br", PARTNER_BODY, 415, "unsupported-content-encoding"),
        ("x-foo", PARTNER_BODY, 415, "unsupported-content-encoding"),
    ],
)
async def test_a_partner_filing_with_a_bad_coding_is_refused_and_journalled(
    partner_root, broker_at, coding: str, body: bytes, status: int, slug: str
) -> None:
    headers = {**PARTNER_HEADERS, "Content-Encoding": coding, "Idempotency-Key": "hk-cc"}
    async with broker_at(partner_root) as (broker, url):
        got, answer, _ = await post(url, "/v1/partners/hk/applications", body, headers)
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    problem = orjson.loads(answer)
    assert got == status, problem
    assert problem["type"] == PROBLEM + slug
    assert [(r.status, r.problem, r.body) for r in refusals] == [(status, slug, body)]
    assert counts == {}


async def test_a_partner_filing_in_gzip_is_filed(partner_root, broker_at) -> None:
    headers = {**PARTNER_HEADERS, "Content-Encoding": "gzip", "Idempotency-Key": "hk-gz"}
    async with broker_at(partner_root) as (broker, url):
        status, answer, _ = await post(
            url, "/v1/partners/hk/applications", gzip.compress(PARTNER_BODY), headers
        )
        refusals = await broker.journal.refusals()
    assert status == 202, answer
    assert refusals == []


@pytest.mark.parametrize(
    ("coding", "status", "slug"),
    [
        ("gzip", 400, "body-not-decompressible"),
        ("deflate", 400, "body-not-decompressible"),
        ("br", 415, "unsupported-content-encoding"),
        ("x-foo", 415, "unsupported-content-encoding"),
    ],
)
async def test_a_soap_filing_with_a_bad_coding_is_a_client_fault_and_journalled(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    coding: str,
    status: int,
    slug: str,
) -> None:
    """A SOAP fault (was a JSON problem 500 for gzip, a bare 400 for br, filed for x-foo)."""
    headers = {**SOAP_HEADERS, "Content-Encoding": coding}
    with capture_logs() as logs:
        async with broker_at(soap_root) as (broker, url):
            got, reply, answered = await post(url, "/v1/partners/hk/soap", SOAP_BODY, headers)
            refusals = await broker.journal.refusals()
            counts = await broker.journal.counts()
    assert got == 500
    assert answered["Content-Type"].startswith("text/xml")
    assert b"<faultcode>soap-env:Client</faultcode>" in reply
    assert f'type="{PROBLEM}{slug}" status="{status}"'.encode() in reply
    assert [(r.status, r.problem, r.body) for r in refusals] == [(status, slug, SOAP_BODY)]
    assert counts == {}
    assert not [line for line in logs if line.get("event") == "request_failed"]


async def test_a_soap_coding_fault_is_journalled_on_every_backend(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
    journal_of: Any,
) -> None:
    headers = {**SOAP_HEADERS, "Content-Encoding": "gzip"}
    async with broker_at(soap_root, journal_obj=journal_of) as (broker, url):
        status, _, _ = await post(url, "/v1/partners/hk/soap", SOAP_BODY, headers)
        refusals = await broker.journal.refusals()
    assert status == 500
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (400, "body-not-decompressible", SOAP_BODY)
    ]


async def test_a_soap_filing_in_gzip_is_filed(
    soap_root,  # noqa: F811 (the fixture imported above)
    broker_at,
) -> None:
    headers = {**SOAP_HEADERS, "Content-Encoding": "gzip"}
    async with broker_at(soap_root) as (broker, url):
        status, reply, _ = await post(
            url, "/v1/partners/hk/soap", gzip.compress(SOAP_BODY), headers
        )
        refusals = await broker.journal.refusals()
    assert status == 200, reply
    assert b"FileApplicationResponse" in reply
    assert refusals == []
