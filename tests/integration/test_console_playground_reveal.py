"""The mapping playground run on a stored exchange's application reveals it, so it asks for a
reason as the exchange page's Reveal does: without one (or with blanks) it is refused with 400,
nothing mapped, the refusal journalled and audited; with one the request is mapped and the reveal
is audited with that reason. The exchange page's own Reveal likewise. On every journal."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from replay.journal import TrailQuery
from tests.conftest import hk_submission
from tests.integration.test_console_sessions import csrf_of
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_roles import IDS, KEYS, with_principals

REASON = "HK TD ticket 4471: the renewal was refused, checking the mapping"


async def support_session(http: aiohttp.ClientSession, url: str) -> str:
    """Signed in with the support principal's key; the playground page, and its form token."""
    async with http.get(f"{url}/console/sign-in") as r:
        pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert pre is not None
    form = {"pre": pre.group(1), "key": KEYS["support"], "next": "/console/"}
    async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
        assert r.status == 303
    async with http.get(f"{url}/console/playground?partner=hk&service=TD-VL-RENEW") as r:
        assert r.status == 200
        page = await r.text()
    assert re.search(r'<input name="reason"[^>]*id="reveal-reason"', page), "the form asks why"
    return csrf_of(page)


async def test_the_playground_reads_a_stored_application_only_for_a_reason(
    make_config, simulators, broker_at, journal_of: Any
) -> None:
    """Support runs the hk mapping on a delivered exchange: with no reason, then a blank one, 400
    saying a reason is needed, no request shown, no reveal audited (a refused:reveal instead, and
    the refusal journalled); with a reason, 200 with the mapped request, and the reveal audited
    with it."""
    root = with_principals(make_config(), ("support",))
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        ex, _ = await broker.submit(hk_submission("reveal-1"))
        assert (await settle(broker, ex.id, DONE)).last_error is None
        text = await asyncio.to_thread((root / "mappings" / "hk-vl.yaml").read_text, "utf-8")
        headers = {"Accept-Language": "en"}
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            csrf = await support_session(http, url)
            form = {"csrf": csrf, "partner": "hk", "service": "TD-VL-RENEW", "text": text}
            form["exchange_id"] = ex.id
            for reason in (None, " \t "):
                asked = form if reason is None else {**form, "reason": reason}
                async with http.post(f"{url}/console/playground/run", data=asked) as r:
                    page = await r.text()
                    assert r.status == 400, page[-2000:]
                assert "reading a stored exchange&#39;s application needs a reason" in page
                assert 'id="mapped-request"' not in page and "K802133(3)" not in page
            revealed = await broker.journal.trail(TrailQuery(action="reveal", target=ex.id))
            assert revealed == []
            refused = await broker.journal.trail(TrailQuery(action="refused:reveal"))
            assert [(a.who, a.outcome) for a in refused] == [
                (IDS["support"], "invalid-request")
            ] * 2
            journalled = await broker.journal.refusals()
            assert [r.path for r in journalled][:2] == ["/console/playground/run"] * 2

            async with http.post(
                f"{url}/console/playground/run", data={**form, "reason": f"  {REASON} "}
            ) as r:
                page = await r.text()
                assert r.status == 200, page[-2000:]
            assert 'id="mapped-request"' in page and "K802133(3)" in page
        (entry,) = await broker.journal.trail(TrailQuery(action="reveal", target=ex.id))
        assert (entry.who, entry.role) == (IDS["support"], "support")
        assert entry.reason == f"mapping playground: {REASON}"


async def test_the_exchange_pages_reveal_without_a_reason_is_journalled_and_audited(
    make_config, simulators, broker_at, journal_of: Any
) -> None:
    """The exchange page's Reveal with no reason, then a blank one: 400 with nothing in clear, as
    the playground's, and each refusal kept in the journal's refusals and the audit trail (before,
    the 400 left no trace); with a reason, the page in clear and the reveal audited."""
    root = with_principals(make_config(), ("support",))
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        ex, _ = await broker.submit(hk_submission("reveal-2"))
        assert (await settle(broker, ex.id, DONE)).last_error is None
        jar = aiohttp.CookieJar(unsafe=True)
        headers = {"Accept-Language": "en"}
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            csrf = await support_session(http, url)
            reveal = f"{url}/console/exchanges/{ex.id}/reveal"
            for asked in ({"csrf": csrf}, {"csrf": csrf, "reason": " \t "}):
                async with http.post(reveal, data=asked) as r:
                    page = await r.text()
                    assert r.status == 400, page[-2000:]
                assert "K802133" not in page
            refused = await broker.journal.trail(TrailQuery(action="refused:reveal"))
            assert [(a.who, a.outcome) for a in refused] == [
                (IDS["support"], "invalid-request")
            ] * 2
            journalled = await broker.journal.refusals()
            assert [r.path for r in journalled][:2] == [f"/console/exchanges/{ex.id}/reveal"] * 2
            assert await broker.journal.trail(TrailQuery(action="reveal", target=ex.id)) == []
            async with http.post(reveal, data={"csrf": csrf, "reason": REASON}) as r:
                page = await r.text()
                assert r.status == 200, page[-2000:]
            assert "K802133" in page
        (entry,) = await broker.journal.trail(TrailQuery(action="reveal", target=ex.id))
        assert (entry.who, entry.reason) == (IDS["support"], REASON)
