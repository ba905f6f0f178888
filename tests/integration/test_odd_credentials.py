"""Credentials sent with bytes that are not UTF-8 (aiohttp reads such a header byte as a lone
surrogate) or with characters outside ASCII are credentials that do not match, never a 500: a
partner's signature, nonce or signed header so sent is 401 signature-invalid (a nonce or header
signed over the bytes sent passes), a Bearer key so sent is 403 forbidden for a
partner's route and for a principal's, each journalled as every such refusal (the header never
kept); the partner gateway simulator answers such a signature signature_mismatch. Raw bytes over
loopback sockets; the broker on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest

from federation.sim.gateway import AppKey, Gateway
from tests.integration.test_console_odd_tokens import sent
from tests.integration.test_inbound import APPLICATION, inbound_config  # noqa: F401
from tests.integration.test_inbound_signed import (  # noqa: F401
    BODY,
    SECRET,
    headers_for,
    signed_config,
)
from tests.integration.test_unparsed_refusals import kept

ODD = (b"\xff", "密鑰".encode())  # a byte not UTF-8; UTF-8 outside ASCII
FILING = b"POST /v1/partners/hk/applications HTTP/1.1\r\n"

__all__ = ["APPLICATION"]


def head(fields: dict[str, str], name: str, value: bytes) -> bytes:
    """A filing's request line and ``fields`` as headers, then ``name`` with ``value`` as sent."""
    lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in fields.items() if k != name)
    return FILING + lines + name.encode() + b": " + value + b"\r\n"


async def test_a_signature_not_ascii_is_refused_401(
    request: pytest.FixtureRequest, broker_at: Any, journal_of: Any
) -> None:
    """A signature holding \\xff, then 密鑰, the rest signed: 401 twice, two rows."""
    root = request.getfixturevalue("signed_config")
    fields = headers_for(BODY, "odd-1")
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        statuses = [await sent(url, head(fields, "X-Signature", v), BODY) for v in ODD]
        rows = await kept(broker.journal, 2)
    assert statuses == [b"HTTP/1.1 401 Unauthorized"] * 2
    assert [(r.method, r.status, r.problem) for r in rows] == [
        ("POST", 401, "signature-invalid")
    ] * 2
    assert {r.detail for r in rows} == {"the signature does not match the request"}


async def test_a_bearer_key_not_ascii_is_refused_403(
    request: pytest.FixtureRequest, broker_at: Any, journal_of: Any
) -> None:
    """A Bearer key holding \\xff, then 密鑰: 403 to a partner's filing and to a principal's
    route, four rows, none holding the key."""
    root = request.getfixturevalue("inbound_config")
    fields = {"Idempotency-Key": "odd-2", "Content-Type": "application/json"}
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        statuses = []
        for value in ODD:
            statuses.append(await sent(url, head(fields, "Authorization", b"Bearer " + value)))
            listing = b"GET /v1/exchanges HTTP/1.1\r\nAuthorization: Bearer " + value + b"\r\n"
            statuses.append(await sent(url, listing))
        rows = await kept(broker.journal, 4)
    assert statuses == [b"HTTP/1.1 403 Forbidden"] * 4
    assert sorted((r.method, r.path, r.status, r.problem) for r in rows) == sorted(
        [("POST", "/v1/partners/hk/applications", 403, "forbidden")] * 2
        + [("GET", "/v1/exchanges", 403, "forbidden")] * 2
    )
    for r in rows:
        assert "密鑰" not in f"{r.detail} {r.idempotency_key}" and "\udcff" not in r.detail


async def test_the_gateway_simulator_answers_an_odd_signature_as_a_mismatch() -> None:
    """The simulated gateway, sent a signature holding \\xff or 密鑰: 401 signature_mismatch."""
    gateway = Gateway(app_keys={"ak": AppKey(secret=b"gateway-secret-1")})
    await gateway.start()
    try:
        statuses = []
        for value in ODD:
            fields = b"X-Ca-Key: ak\r\nX-Ca-Timestamp: %d\r\nX-Ca-Nonce: n1\r\n" % (
                int(gateway.clock() * 1000)
            )
            request = (
                b"POST /signed/renewals HTTP/1.1\r\n"
                + fields
                + b"X-Ca-Signature: "
                + value
                + b"\r\n"
            )
            statuses.append(await sent(gateway.url, request, b"{}"))
    finally:
        await gateway.stop()
    assert statuses == [b"HTTP/1.1 401 Unauthorized"] * 2
    assert gateway.verdicts() == ["signature_mismatch"] * 2


@pytest.fixture
def header_signed_config(request: pytest.FixtureRequest) -> Any:
    """The signed catalogue with hk also signing its X-Region header."""
    root = request.getfixturevalue("signed_config")
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    parts = "[method, path, query, body_digest, timestamp, nonce, headers]"
    extra = f"        parts: {parts}\n        signed_headers: [x-region]\n"
    text = text.replace("        window: 120\n", "        window: 120\n" + extra, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    return root


def byte_signed(nonce: bytes, region: bytes | None = None) -> dict[str, str]:
    """hk's signature headers over ``nonce`` (and ``region``) as the bytes sent, not as text."""
    stamp = str(int(time.time() * 1000)).encode()
    digest = hashlib.sha256(BODY).hexdigest().encode()
    parts = [b"POST", b"/v1/partners/hk/applications", b"", digest, stamp, nonce]
    parts += [] if region is None else [b"x-region:" + region]
    mac = hmac.new(SECRET.encode(), b"\n".join(parts), hashlib.sha256)
    return {
        "X-App-Key": "hk-immd-gw",
        "X-Timestamp": stamp.decode(),
        "X-Signature": mac.hexdigest(),
    }


async def test_a_nonce_not_utf8_is_refused_401(
    request: pytest.FixtureRequest, broker_at: Any, journal_of: Any
) -> None:
    """A nonce holding \\xff, then 密鑰, where the signature was made over another: 401 twice,
    two rows, as any signature that does not match (the nonce's byte never a 500)."""
    root = request.getfixturevalue("signed_config")
    fields = headers_for(BODY, "odd-3")
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        statuses = [await sent(url, head(fields, "X-Nonce", b"n" + v), BODY) for v in ODD]
        rows = await kept(broker.journal, 2)
    assert statuses == [b"HTTP/1.1 401 Unauthorized"] * 2
    assert [(r.status, r.problem, r.detail) for r in rows] == [
        (401, "signature-invalid", "the signature does not match the request")
    ] * 2


async def test_a_signed_header_not_utf8_is_refused_401(
    request: pytest.FixtureRequest, broker_at: Any, journal_of: Any
) -> None:
    """A signed X-Region holding \\xff where the signature was made over another value: 401."""
    root = request.getfixturevalue("header_signed_config")
    fields = {**headers_for(BODY, "odd-4"), **byte_signed(b"n-4", b"hk")}
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        status = await sent(url, head({**fields, "X-Nonce": "n-4"}, "X-Region", b"h\xffk"), BODY)
        rows = await kept(broker.journal, 1)
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert [(r.status, r.problem, r.detail) for r in rows] == [
        (401, "signature-invalid", "the signature does not match the request")
    ]


async def test_a_nonce_and_header_not_utf8_signed_as_sent_are_accepted(
    request: pytest.FixtureRequest, broker_at: Any, journal_of: Any
) -> None:
    """Signed over the bytes sent (as the gateway simulator reads them), a nonce and a signed
    header holding \\xff pass: the byte is signed as itself, on both sides."""
    root = request.getfixturevalue("header_signed_config")
    fields = {**headers_for(BODY, "odd-5"), **byte_signed(b"n\xff5", b"h\xffk")}
    fields = {k: v for k, v in fields.items() if k != "X-Nonce"}
    async with broker_at(root, journal_obj=journal_of) as (_, url):
        status = await sent(url, head(fields, "X-Nonce", b"n\xff5") + b"X-Region: h\xffk\r\n", BODY)
    assert status == b"HTTP/1.1 202 Accepted"
