"""A search filter holding NUL or a lone surrogate cannot be stored or compared by a journal
(PostgreSQL's text takes no NUL, no UTF-8 encoder takes a surrogate): it is refused at the edge
with 400 invalid-query naming the filter, on every journal. On PostgreSQL it reached the database
and came back as the journal unavailable (503), or damaged (500) for the search by error."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.integration.test_support_api import PROBLEM

ODD = ["a%00b", "%00"]  # (the bytes of a lone surrogate arrive as U+FFFD: see the unit test)


@pytest.mark.parametrize("value", ODD)
@pytest.mark.parametrize("name", ["error", "source", "key", "partner"])
async def test_a_search_filter_a_journal_cannot_hold_is_400(
    make_config, broker_at, journal_of: Any, name: str, value: str
) -> None:
    async with (
        broker_at(make_config(), journal_obj=journal_of) as (_, url),
        aiohttp.ClientSession() as http,
    ):
        target = URL(f"{url}/v1/exchanges?{name}={value}", encoded=True)
        async with http.get(target) as r:
            body = await r.json(content_type=None)
            status, ctype = r.status, r.content_type
        async with http.get(f"{url}/v1/exchanges?{name}=plain") as r:
            assert r.status == 200  # the journal is still there, and the same filter plain works
    assert (status, ctype) == (400, PROBLEM), body
    assert body["type"] == "urn:tongban:problem:invalid-query"
    assert body["detail"].startswith(f"{name}: holds a NUL character or a lone surrogate")


@pytest.mark.parametrize("name", ["who", "action", "target"])
async def test_an_audit_filter_a_journal_cannot_hold_is_400(
    make_config, broker_at, journal_of: Any, name: str
) -> None:
    async with (
        broker_at(make_config(), journal_obj=journal_of) as (_, url),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(URL(f"{url}/v1/audit?{name}=a%00b", encoded=True)) as r:
            body = await r.json(content_type=None)
            assert (r.status, r.content_type) == (400, PROBLEM), body
    assert f"{name}: holds a NUL character" in body["detail"]
