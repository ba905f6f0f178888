"""A search says which exchange each result supplements (补正): the journal's search when asked
(``Query.with_supplement_of``), ``GET /v1/exchanges`` and the console's exchange list, on SQLite,
PostgreSQL and in memory. Nothing else that only the events hold comes with it."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from replay.journal import Backend, Query
from tests.conftest import hk_submission
from tests.integration.test_console_sessions import signed_in
from tests.integration.test_journal_contract import NOW, TRACE, new

LABELS = {"en": "supplement of", "zh-Hans": "补正所属交换", "zh-Hant": "補正所屬交換"}


async def test_a_search_asked_to_says_what_each_result_supplements(journal: Backend) -> None:
    """With ``with_supplement_of`` each result carries the exchange it supplements (None for an
    original), filtered and paged as any search, still without its application, events or trace
    context; without it, as before, none."""
    original, _ = await journal.create(new("first"), owner="w1", lease_until=NOW + 30)
    material = replace(new("round-1", at=NOW + 1), supplement_of=original.id, traceparent=TRACE)
    made, _ = await journal.create(material, owner="w1", lease_until=NOW + 1)
    asked = Query(with_supplement_of=True, limit=10)
    found = await journal.search(asked)
    by_key = await journal.search(replace(asked, idempotency_key="round-1"))
    paged = await journal.search(replace(asked, limit=1))
    older = await journal.search(replace(asked, before=made.id))
    plain = await journal.search(Query(limit=10))
    assert [(x.id, x.supplement_of) for x in found] == [(made.id, original.id), (original.id, None)]
    assert [(x.id, x.supplement_of) for x in by_key] == [(made.id, original.id)]
    assert [(x.id, x.supplement_of) for x in paged] == [(made.id, original.id)]
    assert [(x.id, x.supplement_of) for x in older] == [(original.id, None)]
    for x in found:
        assert (x.application, x.events, x.traceparent, x.mapped) == ({}, (), None, None)
    assert [x.supplement_of for x in plain] == [None, None]


async def supplemented(broker: Any) -> tuple[str, str]:
    """An application and a correction round's material for it (the worker may do as it
    likes with them: only the search is looked at); their ids."""
    parent, _ = await broker.submit(hk_submission("orig-1"))
    child, _ = await broker.submit(hk_submission("round-1", supplement_of=parent.id))
    return parent.id, child.id


async def test_the_api_search_shows_supplement_of(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """``GET /v1/exchanges`` answers each exchange's ``supplement_of`` (null for an original)."""
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        parent, child = await supplemented(broker)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/v1/exchanges") as r:
            status, body = r.status, await r.json()
    assert status == 200, body
    assert [(e["id"], e["supplement_of"]) for e in body["exchanges"]] == [
        (child, parent),
        (parent, None),
    ]


@pytest.mark.parametrize("language", list(LABELS))
async def test_the_console_list_shows_supplement_of(
    make_config: Any, broker_at: Any, journal_of: Any, language: str
) -> None:
    """The console's exchange list has a column, labelled in the viewer's language, linking a
    correction round's material to the exchange it supplements; an original's cell is empty."""
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        parent, child = await supplemented(broker)
        jar = aiohttp.CookieJar(unsafe=True)
        headers = {"Accept-Language": language}
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            await signed_in(http, url)
            async with http.get(f"{url}/console/exchanges") as r:
                status, page = r.status, await r.text()
    assert status == 200
    assert f"<th>{LABELS[language]}</th>" in page
    rows = dict(re.findall(r'<tr data-id="(\w+)">(.*?)</tr>', page, re.S))
    link = f'<td class="supplement-of"><a href="/console/exchanges/{parent}">{parent}</a></td>'
    assert link in rows[child]
    assert '<td class="supplement-of"></td>' in rows[parent]
