"""A refused request whose texts hold what no journal stores as sent: a header byte that is not
UTF-8 (aiohttp reads it as a lone surrogate) or a NUL percent-decoded into the path. The edge
journals each in PostgreSQL's form (the surrogate as ``\\udcff``, NUL as ``\\x00``), so SQLite,
PostgreSQL and memory keep the same row and the answer is the refusal's. Before, SQLite answered
500 with a traceback and kept no row (it could not encode the surrogate), memory kept the raw
surrogate or NUL, and a Content-Encoding quoting such a byte was a 500 on every journal."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from federation.api.edge import storable
from federation.logging import capture_logs
from replay import pgsql
from tests.integration.test_intake_content_coding import PLAIN

PROBLEM = "urn:tongban:problem:"

# request line, its header lines, the answer's status and problem, the row's path, key and detail
CASES: dict[str, tuple[bytes, list[bytes], int, str, tuple[str, str | None, str]]] = {
    "two-keys-one-not-utf8": (
        b"POST /v1/exchanges",
        [b"Idempotency-Key: a1", b"Idempotency-Key: a\xff2"],
        400,
        "missing-idempotency-key",
        ("/v1/exchanges", "a1, a\\udcff2", "2 Idempotency-Key headers"),
    ),
    "key-not-utf8": (
        b"POST /v1/exchanges",
        [b"Idempotency-Key: a\xff2"],
        400,
        "missing-idempotency-key",
        ("/v1/exchanges", "a\\udcff2", "1–255 visible ASCII characters"),
    ),
    "nul-in-path": (
        b"POST /v1/exchanges/%00x/supplements",
        [b"Idempotency-Key: s-1"],
        404,
        "not-found",
        ("/v1/exchanges/\\x00x/supplements", "s-1", "no exchange \\x00x"),
    ),
    "coding-not-utf8": (
        b"POST /v1/exchanges",
        [b"Idempotency-Key: c-1", b"Content-Encoding: gzip, x\xff"],
        415,
        "unsupported-content-encoding",
        ("/v1/exchanges", "c-1", "2 content codings (gzip, x\\udcff)"),
    ),
}


async def raw_post(url: str, line: bytes, head_lines: list[bytes], body: bytes) -> bytes:
    """The answer to a request written byte for byte (no client re-encodes its headers)."""
    host, port = url.split("//")[1].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        line
        + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"".join(h + b"\r\n" for h in head_lines)
        + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize("case", CASES)
async def test_the_refusal_is_answered_and_journalled_alike_on_every_journal(
    make_config: Any, broker_at: Any, journal_of: Any, case: str
) -> None:
    line, heads, status, slug, (path, key, detail) = CASES[case]
    with capture_logs() as logs:
        async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
            answer = await raw_post(url, line, heads, PLAIN)
            refusals = await broker.journal.refusals()
            counts = await broker.journal.counts()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    problem = orjson.loads(body)
    assert (problem["status"], problem["type"]) == (status, PROBLEM + slug), problem
    assert [(r.status, r.problem, r.path, r.idempotency_key) for r in refusals] == [
        (status, slug, path, key)
    ]
    assert detail in refusals[0].detail
    assert refusals[0].body == PLAIN  # a 404 too: the refusal reads the body to keep it
    assert refusals[0].detail == storable(problem["detail"])  # the answer's NUL is JSON's \u0000
    assert counts == {}
    assert not [e for e in logs if e.get("event") in ("request_failed", "refusal_not_journalled")]
    assert "Traceback" not in repr(logs)


@pytest.mark.parametrize(
    "text",
    ["a1, a2", "a1, a\udcff2", "/v1/\x00x", "a\\udcff2", "陳大文\ud800\x00", "", "\\x00"],
)
def test_storable_is_postgresqls_form(text: str) -> None:
    """The one form: what the PostgreSQL journal stores, which it stores unchanged."""
    kept = storable(text)
    assert kept == pgsql.text(text) == pgsql.text(kept)
    kept.encode("utf-8")  # SQLite (and anything else) can encode it
    assert "\x00" not in kept
