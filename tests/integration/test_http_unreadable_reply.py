"""Replies that are not HTTP as the broker can read it, from a partner on a raw loopback socket,
through a real broker on every journal.

* A reply whose head aiohttp cannot parse (a header line without a colon, a bad status line)
  quoting the applicant: aiohttp's words for it quote those bytes. They were the attempt's
  message, shown in clear to every viewer and found by ``error=`` searches; now the message says
  what went wrong in our words and aiohttp's text is kept as the partner's words, masked for
  viewers and outside searches (``federation.domain.words``). The attempt's outcome is unknown,
  retried with the same key.
* HTTP status 600: HTTP defines 1xx to 5xx only. It ended ``rejected`` as an "other" refusal; it is
  neither a yes nor a no, so an unknown outcome now, retried with the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from federation.domain.models import State
from federation.runtime.broker import Submission
from replay.journal import Query
from tests.conftest import HK_APPLICATION
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_xml_wide_encodings import journal_of  # noqa: F401 (fixture)

PERSONAL = ("K802133", "LEE Wing Sun")
REPLIES = {
    "header-line": (
        b"HTTP/1.1 200 OK\r\nX-Applicant LEE Wing Sun K802133(3)\r\nContent-Length: 2\r\n\r\n{}",
        "ClientResponseError (the reply was not valid HTTP)",
    ),
    "status-line": (
        b"XTTP/1.1 200 LEE Wing Sun K802133(3)\r\nContent-Length: 2\r\n\r\n{}",
        "ClientResponseError (the reply was not valid HTTP)",
    ),
}


@contextlib.asynccontextmanager
async def raw_partner(reply: bytes) -> AsyncIterator[SimpleNamespace]:
    """A 'partner' on a raw socket: reads the request's head and answers ``reply`` as it is;
    counts the requests it took."""
    partner = SimpleNamespace(url="", took=0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                partner.took += 1
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    partner.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield partner
    finally:
        server.close()
        await server.wait_closed()


async def submit_to(
    make_config: Any, broker_at: Any, journal: Any, partner: SimpleNamespace, key: str
) -> tuple[Any, list[Any]]:
    """File the Hong Kong renewal with ``partner`` as hk; the exchange once its first attempt has
    ended, and what an ``error=`` search finds for each piece of personal data."""
    root = make_config(max_attempts=3)
    async with broker_at(root, {"hk": partner}, journal_obj=journal) as (broker, _):
        ex, _ = await broker.submit(
            Submission(
                source="gd-portal",
                partner="hk",
                service="TD-VL-RENEW",
                idempotency_key=key,
                application=HK_APPLICATION,
            )
        )
        after = await settle(broker, ex.id, DONE | {State.RETRY_WAIT, State.UNCONFIRMED})
        found = [await journal.search(Query(error=p)) for p in PERSONAL]
    return after, found


@pytest.mark.parametrize("kind", sorted(REPLIES))
async def test_a_reply_head_aiohttp_cannot_read_keeps_its_bytes_as_the_partners_words(
    make_config: Any,
    broker_at: Any,
    journal_of: Any,  # noqa: F811 (the fixture imported above)
    kind: str,
) -> None:
    reply, said = REPLIES[kind]
    async with raw_partner(reply) as partner:
        after, found = await submit_to(make_config, broker_at, journal_of, partner, f"raw-{kind}")
    assert after.state in {State.RETRY_WAIT, State.FAILED}, after.state  # retried, never refused
    assert partner.took >= 2
    error = after.last_error or {}
    message = str(error.get("message"))
    assert message == (
        f"connection to hk failed after sending: {said}; it may have processed the request"
    )
    assert all(p in str(error.get("partner_message")) for p in PERSONAL), error
    assert found == [[], []]  # error= searches read what every reader may: not the partner's words
    first = after.attempt_history()[0]
    assert first.outcome is not None and first.outcome.value == "unknown_outcome"


async def test_http_status_600_is_no_refusal_but_an_unknown_outcome(
    make_config: Any,
    broker_at: Any,
    journal_of: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    reply = b"HTTP/1.1 600 Done\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_partner(reply) as partner:
        after, _ = await submit_to(make_config, broker_at, journal_of, partner, "raw-600")
    assert after.state in {State.RETRY_WAIT, State.FAILED}, after.state  # retried, never rejected
    assert partner.took >= 2
    message = str((after.last_error or {}).get("message"))
    assert message == (
        "hk answered with HTTP status 600, which HTTP does not define (100 to 599); "
        "it may have processed the request"
    )
    first = after.attempt_history()[0]
    assert first.outcome is not None and first.outcome.value == "unknown_outcome"
