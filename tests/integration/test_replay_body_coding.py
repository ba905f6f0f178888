"""``POST /v1/replays`` reads its body as the intake does, since the edge's server leaves bodies
compressed: a gzip or deflate body is answered as the plain one, a body that does not decompress
is 400 body-not-decompressible, a coding not read here 415 unsupported-content-encoding, one that
decompresses past the body limit 413, never read as its compressed bytes (which answered 400
malformed-json). The console's forms, read by aiohttp's own form reader, are refused 415 when
compressed (a gzip sign-in form was a 500 with a traceback)."""

from __future__ import annotations

import gzip
import re
import zlib
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from federation.logging import capture_logs
from tests.conftest import hk_submission
from tests.integration.test_support_api import submit_all

PROBLEM = "urn:tongban:problem:"
JSON = {"Content-Type": "application/json"}


async def replay(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/replays", data=body, headers={**JSON, **headers}) as r,
    ):
        return r.status, orjson.loads(await r.read())


async def test_a_compressed_replay_request_is_answered_as_the_plain_one(
    make_config: Any, simulators: Any, broker_at: Any
) -> None:
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("rz-1")])
        body = orjson.dumps({"mode": "resend", "exchange_id": xid, "dry_run": True})
        plain = await replay(url, body, {})
        squeezed = [
            await replay(url, gzip.compress(body), {"Content-Encoding": "gzip"}),
            await replay(url, zlib.compress(body), {"Content-Encoding": "deflate"}),
            await replay(url, body, {"Content-Encoding": "identity"}),
        ]
    assert plain[0] == 200 and plain[1]["mode"] == "resend", plain
    assert xid in repr(plain[1])
    assert squeezed == [plain] * 3


@pytest.mark.parametrize(
    ("body", "headers", "status", "slug"),
    [
        (b"not-compressed", {"Content-Encoding": "gzip"}, 400, "body-not-decompressible"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported-content-encoding"),
        (b"{}", {"Content-Encoding": "gzip, deflate"}, 415, "unsupported-content-encoding"),
        (gzip.compress(b" " * 2_000_000 + b"{}"), {"Content-Encoding": "gzip"}, 413, None),
    ],
    ids=["not-gzip", "br", "two", "past-the-limit"],
)
async def test_a_replay_body_that_cannot_be_read_is_refused_as_at_intake(
    make_config: Any,
    broker_at: Any,
    body: bytes,
    headers: dict[str, str],
    status: int,
    slug: str | None,
) -> None:
    with capture_logs() as logs:
        async with broker_at(make_config()) as (broker, url):
            answer = await replay(url, body, headers)
            limit = broker.catalogue.config.broker.max_body_bytes
    assert answer[0] == status, answer
    assert answer[1]["type"] == PROBLEM + (slug or "body-too-large")
    if status == 413:
        assert answer[1]["limit"] == limit < 2_000_000
    assert not [e for e in logs if e.get("event") == "request_failed"]


async def test_a_compressed_console_form_is_refused_415(make_config: Any, broker_at: Any) -> None:
    """Forms are read uncompressed (browsers send them so); sent as identity, the same form
    signs in."""
    with capture_logs() as logs:
        async with (
            broker_at(make_config()) as (_broker, url),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            async with http.get(f"{url}/console/sign-in") as r:
                pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
            assert pre is not None
            form = urlencode({"pre": pre.group(1), "loopback": "1", "next": "/console/"})
            answers = []
            for coding, body in [
                ("gzip", gzip.compress(form.encode())),
                ("deflate", zlib.compress(form.encode())),
                ("x-foo", form.encode()),
                ("identity", form.encode()),
            ]:
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Encoding": coding,
                }
                async with http.post(
                    f"{url}/console/sign-in", data=body, headers=headers, allow_redirects=False
                ) as r:
                    answers.append((coding, r.status, await r.read()))
    for coding, status, text in answers[:3]:
        assert status == 415, (coding, text)
        assert orjson.loads(text)["type"] == PROBLEM + "unsupported-content-encoding"
    assert answers[3][1] == 303  # signed in
    assert not [e for e in logs if e.get("event") == "request_failed"]
