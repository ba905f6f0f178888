"""A console replay of one exchange that cannot be replayed (never sent, for a resend) says why,
in the reader's language, instead of leading to a progress page of nothing: the plan's page with
the exchange left as it is and no form to confirm. It is still audited as ``replay`` with outcome
``skipped`` (as ``POST /v1/replays`` is) and nothing is replayed; a replay that replays something
still leads to its progress page. Signed in over HTTP, on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import html
import re
from typing import Any

import aiohttp
import pytest

from replay.journal import Backend, TrailQuery
from tests.conftest import HK_APPLICATION, hk_submission
from tests.integration.test_replay_refusals_journalled import signed_in
from tests.integration.test_roles import IDS, KEYS, with_principals
from tests.integration.test_support_api import submit_all

NEVER_SENT = {
    "en": "was never sent (rejected before delivery, e.g. by its mapping): use remap",
    "zh-Hans": "从未发出（发送前已被拒绝，例如映射不通过）：请用重新映射",
    "zh-Hant": "從未發出（發送前已被拒絕，例如映射不通過）：請用重新映射",
}
SUMMARY = {
    "en": "0 exchange(s) would be replayed, 1 left as they are.",
    "zh-Hans": "将重放 0 笔交换，1 笔保持不变。",
    "zh-Hant": "將重放 0 筆交換，1 筆保持不變。",
}


def text_of(page: str) -> str:
    """A page's words, tags dropped, entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize("language", list(NEVER_SENT))
async def test_a_replay_that_replays_nothing_says_why(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend, language: str
) -> None:
    """Resending an exchange that was never sent answers the plan's page saying why it was left
    (reader's language), with no confirm form; the trail says ``skipped``; nothing is replayed.
    Resending one that was sent still leads to the progress page (303)."""
    root = with_principals(make_config(), ("support",))
    sims = await simulators(root)
    no_mark = {"applicant": HK_APPLICATION["applicant"]}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        sent, never = await submit_all(
            broker, [hk_submission("l-1"), hk_submission("l-2", application=no_mark)]
        )
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(
            cookie_jar=jar, headers={"Accept-Language": language}
        ) as http:
            csrf = await signed_in(http, url, KEYS["support"])
            answers = []
            for xid in (never, sent):
                form = {"csrf": csrf, "exchange_id": xid, "mode": "resend", "reason": "r"}
                async with http.post(
                    f"{url}/console/replays", data=form, allow_redirects=False
                ) as r:
                    answers.append((r.status, r.headers.get("Location", ""), await r.text()))
        entries = await broker.journal.trail(TrailQuery(action="replay", limit=10))
        left = await broker.get(never)
    (status, location, page), (replayed, progress, _) = answers
    assert (status, location) == (200, "")
    said = text_of(page)
    assert SUMMARY[language] in said and NEVER_SENT[language] in said and never in said
    assert 'id="confirm"' not in page
    assert replayed == 303 and progress.startswith("/console/replays/")
    assert [(e.who, e.outcome) for e in entries] == [
        (IDS["support"], "ok"),
        (IDS["support"], "skipped"),
    ]
    assert left is not None and not [e for e in left.events if e.kind == "replayed"]
