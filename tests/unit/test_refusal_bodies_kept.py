"""A refusal keeps the body that was sent, also when the route refused before reading it.

The local system's decision on an exchange that is not one it decides on, a supplement to an
exchange or application that does not exist, a filing or report with a wrong key: each is refused
before its route needs the body, and each refusal row keeps that body (sealed, as every refused
body is), not an empty one beside the size it had. Through the real HTTP app, on every journal.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.api.app import create_app
from federation.logging import capture_logs
from replay.journal import Backend, Refusal
from tests.conftest import HK_APPLICATION
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_inbound import (  # noqa: F401 (fixture)
    APPLICATION,
    LOCAL_KEY,
    auth,
    inbound_config,
)
from tests.integration.test_soap_inbound import ENVELOPE, soap_config  # noqa: F401 (fixture)

UNKNOWN = "01AAAAAAAAAAAAAAAAAAAAAAAA"  # an exchange id no journal holds
DECISION = {"lifecycle": "approved", "note": "案件编号GD-2026-1 准予许可", "case_number": "GD-1"}
MATERIAL = {"material": {"remarks": "补交住址证明", "supporting_documents": []}}
WORDS = ("案件编号GD-2026-1", "补交住址证明", "CHAN, Tai Man")  # none may be logged or stored plain


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An unopened journal of each backend, for the broker to open."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


def raw(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


JSON = {"Content-Type": "application/json"}


async def post(
    http: aiohttp.ClientSession, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with http.post(path, data=io.BytesIO(body), headers={**JSON, **headers}) as r:
        text = await r.text()
        json = r.content_type == "application/problem+json"  # SOAP answers with a fault
        problem = orjson.loads(text)["type"].rsplit(":", 1)[-1] if json else ""
        return r.status, problem


async def filed(
    http: aiohttp.ClientSession, path: str, body: bytes, headers: dict[str, str]
) -> str:
    async with http.post(path, data=body, headers={**JSON, **headers}) as r:
        assert r.status == 202, await r.text()
        xid: str = (await r.json())["id"]
        return xid


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(body), 65536):
        yield body[at : at + 65536]


def stored_sqlite(where: Path) -> bytes:
    """Every byte of a SQLite journal's files in ``where`` (none for the other journals)."""
    return b"".join(p.read_bytes() for p in where.glob("journal.sqlite*"))


def kept(refusals: list[Refusal], path: str, status: int) -> Refusal:
    [row] = [r for r in refusals if r.path == path and r.status == status]
    return row


async def test_refusals_before_the_body_is_read_keep_the_body(
    inbound_config: Path,  # noqa: F811 (the fixture imported above)
    simulators: Any,
    broker_at: Any,
    journal_of: Backend,
    tmp_path: Path,
) -> None:
    """Each route refusing before it reads the body (decision and supplement routes, a wrong or
    missing key, an unknown partner) answers as before and journals the body it was sent."""
    sims = await simulators(inbound_config)
    submission = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
    inbound = raw({"service": "GD-GA-RP-HK", "application": APPLICATION})
    local = auth(LOCAL_KEY)
    async with (
        broker_at(inbound_config, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        out = await filed(
            http,
            "/v1/exchanges",
            raw({**submission, "application": HK_APPLICATION}),
            {"Idempotency-Key": "out-1"},
        )
        into = await filed(
            http, "/v1/partners/hk/applications", inbound, {**auth(), "Idempotency-Key": "in-1"}
        )
        cases = [  # path, body, headers, the answer expected
            (f"/v1/exchanges/{out}/lifecycle", raw(DECISION), local, (409, "not-inbound")),
            (f"/v1/exchanges/{UNKNOWN}/lifecycle", raw(DECISION), local, (404, "not-found")),
            (f"/v1/exchanges/{into}/lifecycle", raw(DECISION), {}, (401, "unauthenticated")),
            (f"/v1/exchanges/{UNKNOWN}/supplements", raw(MATERIAL), {}, (404, "not-found")),
            (f"/v1/exchanges/{into}/supplements", raw(MATERIAL), {}, (409, "not-outbound")),
            (
                "/v1/partners/hk/applications/no-such-key/supplements",
                raw(MATERIAL),
                {**auth(), "Idempotency-Key": "s-1"},
                (404, "not-found"),
            ),
            ("/v1/partners/hk/applications", inbound, auth("guess"), (403, "forbidden")),
            ("/v1/partners/sc/applications", inbound, auth(), (404, "unknown-partner")),
            ("/v1/partners/hk/status", raw(DECISION), {}, (401, "unauthenticated")),
        ]
        with capture_logs() as logs:
            for path, body, headers, expected in cases:
                assert await post(http, path, body, headers) == expected, path
        refusals = await broker.journal.refusals(limit=100)
    for path, body, _, (status, _) in cases:
        row = kept(refusals, path, status)
        assert (row.body, row.body_bytes) == (body, len(body)), path
    assert not [e for e in logs if any(w in repr(e) for w in WORDS)]
    assert not [
        w for w in WORDS if w.encode() in stored_sqlite(tmp_path)
    ]  # sealed at rest (SQLite's files)


async def test_a_soap_filing_refused_before_its_body_is_read_keeps_it(
    soap_config: Path,  # noqa: F811 (the fixture imported above)
    broker_at: Any,
    journal_of: Backend,
) -> None:
    """SOAP inbound: a wrong key is a fault, and the envelope it carried is journalled."""
    envelope = ENVELOPE.format(prolog="", application=orjson.dumps(APPLICATION).decode()).encode()
    async with (
        broker_at(soap_config, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        headers = {**auth("guess"), "Content-Type": "text/xml; charset=utf-8"}
        async with http.post("/v1/partners/hk/soap", data=envelope, headers=headers) as r:
            assert r.status == 500  # a SOAP 1.1 fault
            assert "<faultcode>soap-env:Client</faultcode>" in await r.text()
        refusals = await broker.journal.refusals()
    row = kept(refusals, "/v1/partners/hk/soap", 403)
    assert (row.problem, row.body, row.body_bytes) == ("forbidden", envelope, len(envelope))


async def test_a_body_read_only_for_the_record_is_read_as_the_route_would(
    inbound_config: Path,  # noqa: F811 (the fixture imported above)
    broker_at: Any,
    journal_of: Backend,
) -> None:
    """A body refused before it was read is read within the same limits: decompressed when it
    is gzip, kept as sent when it does not decompress, not kept past the body limit; the answer
    is the refusal, never one about the body it would not have read."""
    decision = raw(DECISION)
    path = f"/v1/exchanges/{UNKNOWN}/lifecycle"
    gz, local = {"Content-Encoding": "gzip"}, auth(LOCAL_KEY)
    async with (
        broker_at(inbound_config, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        limit = broker.catalogue.config.broker.max_body_bytes
        huge = b"x" * (limit + 1)
        sent = [
            (gzip.compress(decision), {**local, **gz}),
            (b"not gzip at all", {**local, **gz}),
            (huge, local),
        ]
        for body, headers in sent:
            assert await post(http, path, body, headers) == (404, "not-found")
        async with http.post(path, data=chunked(huge), headers={**JSON, **local}) as r:
            assert r.status == 404  # sent chunked: no length said beforehand
        refusals = await broker.journal.refusals()
    rows = [(r.body, r.body_bytes) for r in refusals if r.path == path][::-1]
    assert rows[:3] == [
        (decision, len(decision)),
        (b"not gzip at all", len(b"not gzip at all")),
        (b"", limit + 1),
    ]
    body, size = rows[3]
    assert body == b"" and size > limit  # as much as was read before the limit was passed


# POST routes whose refusals keep no body, and why; every other one must keep what it was sent.
# The console's forms (its sub-application) are not covered here.
BODILESS = {
    "/v1/admin/reload": "takes no body: a reload is asked for by the call alone",
    "/v1/replays": "a replay's reason and filters can name a person: kept in the audit trail only",
}


async def test_every_route_taking_a_body_keeps_it_when_it_refuses_early(
    inbound_config: Path,  # noqa: F811 (the fixture imported above)
    broker_at: Any,
    journal_of: Backend,
) -> None:
    """Every POST route of the API (but those in BODILESS), sent a body with a key that is no
    one's, to a partner, exchange or application that does not exist: refused, with the body kept.
    A route added later that journals its refusals before reading the body fails here."""
    body = raw({"note": "补交住址证明"})
    async with (
        broker_at(inbound_config, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        patterns = sorted(
            {
                r.resource.canonical
                for r in create_app(broker).router.routes()
                if r.method == "POST" and r.resource is not None
            }
            - set(BODILESS)
        )
        patterns = [p for p in patterns if not p.startswith("/console")]
        paths = [p.format(partner="nobody", id=UNKNOWN, key="no-such-key") for p in patterns]
        for path in paths:
            status, _ = await post(http, path, body, {**auth("guess"), "Idempotency-Key": "g-1"})
            assert 400 <= status < 500 or path.endswith("/soap"), path  # a fault: 500 by SOAP 1.1
        refusals = await broker.journal.refusals(limit=100)
    assert len(paths) >= 7  # the API's, as found: intake, supplements, decisions, inbound, SOAP
    for path in paths:
        [row] = [r for r in refusals if r.path == path]
        assert (row.body, row.body_bytes) == (body, len(body)), path
