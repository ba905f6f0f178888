"""Credentials sent with bytes that are not UTF-8 (aiohttp reads such a header byte as a lone
surrogate) or with characters outside ASCII are credentials that do not match, never a 500: a
partner's signature so sent is 401 signature-invalid, a Bearer key so sent is 403 forbidden for a
partner's route and for a principal's, each journalled as every such refusal (the header never
kept); the partner gateway simulator answers such a signature signature_mismatch. Raw bytes over
loopback sockets; the broker on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

from typing import Any

import pytest

from federation.sim.gateway import AppKey, Gateway
from tests.integration.test_console_odd_tokens import sent
from tests.integration.test_inbound import APPLICATION, inbound_config  # noqa: F401
from tests.integration.test_inbound_signed import BODY, headers_for, signed_config  # noqa: F401
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
