"""``POST /v1/replays`` answers the statuses its OpenAPI description lists, and only those.
Schemathesis (tests/contract) fails on an answer the description does not list, but not on a
status the description lists that nothing answers (it listed 409 and 422, which no replay can
be). Here a running broker, on SQLite, PostgreSQL and in memory, is asked over HTTP in every way
that gets a different status; the set answered is the set described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from federation import contracts
from replay.memory import InMemoryJournal
from tests.conftest import hk_submission
from tests.integration.test_http_edge import raw
from tests.integration.test_roles import KEYS, with_principals
from tests.integration.test_support_api import submit_all

LIMIT = 2048  # broker.max_body_bytes here


def described() -> set[int]:
    """The statuses the OpenAPI document gives ``POST /v1/replays``."""
    responses = contracts.openapi()["paths"]["/v1/replays"]["post"]["responses"]
    return {int(status) for status in responses}


def quick(root: Path) -> Path:
    """The catalogue with a small body limit and a body timeout of 300 ms."""
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    broker = f"broker:\n  body_timeout: 300ms\n  max_body_bytes: {LIMIT}\nsources:\n"
    path.write_text(text.replace("sources:\n", broker, 1), encoding="utf-8")
    return root


async def answer(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST ``body`` to /v1/replays; the status and the problem type (or '')."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/replays", data=body, headers=headers) as r,
    ):
        said = await r.read()
    kind = orjson.loads(said).get("type", "") if r.status >= 400 else ""
    return r.status, str(kind).removeprefix("urn:tongban:problem:")


async def stalled(url: str, key: str) -> tuple[int, str]:
    """A replay whose body stops half-way (the connection left open)."""
    body = b'{"mode": "resend", "exchange_id": "x", "reason": "r"}'
    head = (
        f"POST /v1/replays HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    status, _, said = await raw(url, head + body[: len(body) // 2], pause_after=True)
    kind = str(orjson.loads(said).get("type", "")).removeprefix("urn:tongban:problem:")
    return int(status.split()[1]), kind


async def test_the_statuses_answered_are_the_statuses_described(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """200, and each refusal a replay can meet (400, 401, 403, 404, 408, 413, 415, and 503 while
    the journal is closed by a stop): the set answered is the set the document lists (but 503 in
    memory, whose journal is never unavailable to the plan's read)."""
    root = quick(with_principals(make_config(), ("support", "viewer")))
    sims = await simulators(root)
    support = {"Authorization": f"Bearer {KEYS['support']}", "Content-Type": "application/json"}
    viewer = {**support, "Authorization": f"Bearer {KEYS['viewer']}"}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("st-1")])
        one = orjson.dumps({"mode": "resend", "exchange_id": xid, "dry_run": True})
        missing = orjson.dumps({"mode": "resend", "exchange_id": "0" * 26, "dry_run": True})
        got = [
            await answer(url, one, support),
            await answer(url, b'{"mode": "again", "exchange_id": "x"}', support),
            await answer(url, one, {"Content-Type": "application/json"}),
            await answer(url, one, viewer),
            await answer(url, missing, support),
            await stalled(url, KEYS["support"]),
            await answer(url, b" " * (LIMIT + 1), support),
            await answer(url, one, {**support, "Content-Type": "text/plain"}),
        ]
        await broker.journal.close()  # a stop under way: the journal closed before the app
        try:
            got.append(await answer(url, one, support))
        finally:
            await broker.journal.open()
    if isinstance(journal_of, InMemoryJournal):  # its reads never fail: the plan is read, 200
        assert got.pop() == (200, "")
        assert {status for status, _ in got} == described() - {503}
        return
    assert got == [
        (200, ""),
        (400, "invalid-request"),
        (401, "unauthenticated"),
        (403, "forbidden"),
        (404, "not-found"),
        (408, "body-timeout"),
        (413, "body-too-large"),
        (415, "unsupported-media-type"),
        (503, "journal-unavailable"),
    ]
    assert {status for status, _ in got} == described()
