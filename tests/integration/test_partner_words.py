"""A partner's refusal that quotes the application (an ID number, a name) is personal data: a viewer
reads tongban's own account of the refusal and ``‹redacted›`` where the partner's words were, in
the API (one exchange, search), the console and ``tongban journal show``; support staff who reveal
(with a reason, audited) read them; a search by error cannot find them; errors journalled before
the words were kept apart are split or masked whole."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from federation.api.net import start_site
from federation.domain.ids import new_id
from federation.domain.models import Direction, Exchange, NewExchange, State, StateChange
from federation.domain.words import shown_error
from federation.logging import MASK
from replay.journal import Backend, Query, TrailQuery
from tests.conftest import hk_submission
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_roles import KEYS, with_principals
from tests.subprocess_cli import tongban

WORDS = "证件号码 A123456(3) 陳大文 不合法"
OURS = "hk refused the request with HTTP 400"


@contextlib.asynccontextmanager
async def refusing_partner() -> AsyncIterator[Any]:
    """A REST partner on loopback that refuses every request with a 400 quoting the applicant."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"msg": WORDS}, status=400)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner, url = await start_site(app)
    try:
        yield type("Partner", (), {"url": url})()
    finally:
        await runner.cleanup()


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


async def answer(http: aiohttp.ClientSession, path: str, role: str) -> tuple[int, Any]:
    async with http.get(path, headers=auth(role)) as r:
        return r.status, await r.json(content_type=None)


async def test_a_viewer_reads_our_words_and_support_who_reveals_reads_theirs(
    make_config, broker_at
) -> None:
    """Viewer: ``hk refused the request with HTTP 400: ‹redacted›`` in the exchange (its last
    error and its attempt, with or without payloads) and in search, and a search for the ID number
    finds nothing; support with reveal and a reason reads the partner's words, audited."""
    root = with_principals(make_config())
    async with (
        refusing_partner() as partner,
        broker_at(root, {"hk": partner}) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex, _ = await broker.submit(hk_submission("words-1"))
        done = await settle(broker, ex.id, DONE)
        one = f"/v1/exchanges/{ex.id}"
        _, plain = await answer(http, one, "viewer")
        _, payloads = await answer(http, f"{one}?include=payloads", "viewer")
        _, found = await answer(http, "/v1/exchanges?state=rejected", "viewer")
        _, probed = await answer(http, "/v1/exchanges?error=A123456", "viewer")
        _, by_ours = await answer(http, "/v1/exchanges?error=HTTP%20400", "viewer")
        refused, _ = await answer(http, f"{one}?reveal=true&reason=curious", "viewer")
        _, revealed = await answer(http, f"{one}?reveal=true&reason=caller+asked", "support")
        [last] = await broker.journal.trail(TrailQuery(limit=1))
    assert done.state is State.REJECTED
    for view in (plain, payloads):
        assert "A123456" not in str(view) and "陳大文" not in str(view)
        assert view["last_error"]["message"] == f"{OURS}: {MASK}"
        assert view["last_error"]["partner_message"] == MASK
        assert view["attempts"][0]["error"]["message"] == f"{OURS}: {MASK}"
    assert [s["last_error"] for s in found["exchanges"]] == [f"{OURS}: {MASK}"]
    assert probed["exchanges"] == [] and [s["id"] for s in by_ours["exchanges"]] == [ex.id]
    assert refused == 403
    assert revealed["last_error"]["message"] == f"{OURS}: {WORDS}"
    assert revealed["last_error"]["partner_message"] == WORDS
    assert (last.action, last.reason) == ("reveal", "caller asked")


async def test_the_console_shows_the_words_masked_until_revealed(make_config, broker_at) -> None:
    """The console's exchange list and page show a viewer ``‹redacted›`` for the partner's words;
    support staff who reveal the page with a reason read them."""
    root = with_principals(make_config())
    pages: dict[str, str] = {}
    async with refusing_partner() as partner, broker_at(root, {"hk": partner}) as (broker, url):
        ex, _ = await broker.submit(hk_submission("words-2"))
        await settle(broker, ex.id, DONE)
        for role in ("viewer", "support"):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await sign_in(http, url, KEYS[role])
                async with http.get(f"{url}/console/exchanges?state=rejected") as r:
                    pages[f"{role} list"] = await r.text()
                async with http.get(f"{url}/console/exchanges/{ex.id}") as r:
                    pages[f"{role} page"] = page = await r.text()
                if role == "support":
                    form = {"csrf": csrf_of(page), "reason": "caller asked"}
                    async with http.post(f"{url}/console/exchanges/{ex.id}/reveal", data=form) as r:
                        pages["support revealed"] = await r.text()
    for name, page in pages.items():
        if name != "support revealed":
            assert "A123456" not in page and "不合法" not in page, name
            assert f"{OURS}: {MASK}" in page, name
    assert f"{OURS}: {WORDS}" in pages["support revealed"]


async def sign_in(http: aiohttp.ClientSession, url: str, key: str) -> None:
    async with http.get(f"{url}/console/sign-in") as r:
        pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert pre is not None
    form = {"pre": pre.group(1), "key": key, "next": "/console/"}
    async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
        assert r.status == 303


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_journal_show_masks_the_words_unless_revealed(
    make_config, broker_at, tmp_path: Path
) -> None:
    """``tongban journal show`` (text and JSON) and ``journal search`` print ``‹redacted›`` for
    the partner's words; ``--reveal --reason`` prints them."""
    root = make_config()
    journal = tmp_path / "words.sqlite"
    async with (
        refusing_partner() as partner,
        broker_at(root, {"hk": partner}, journal=journal) as (
            broker,
            _,
        ),
    ):
        ex, _ = await broker.submit(hk_submission("words-3"))
        await settle(broker, ex.id, DONE)
    show = ["journal", "show", ex.id, "--journal", str(journal), "--config", str(root)]
    text, as_json = tongban(*show), tongban(*show, "--format", "json")
    search = tongban("journal", "search", "--journal", str(journal), "--format", "csv")
    revealed = tongban(*show, "--reveal", "--reason", "caller asked")
    for run in (text, as_json, search, revealed):
        assert run.returncode == 0, run.stderr
    for run in (text, as_json, search):
        assert "A123456" not in run.stdout and "不合法" not in run.stdout
        assert f"{OURS}: {MASK}" in run.stdout
    assert re.search(rf"last error +{re.escape(OURS)}: {re.escape(WORDS)}", revealed.stdout)
    assert f"error: {OURS}: {WORDS}" in revealed.stdout  # the attempt on the timeline


# --- the journal: every backend -------------------------------------------------------------------

NOW = 1_790_000_000.0
OLD = {  # as journalled before the partner's words were kept apart
    "kind": "permanent_error",
    "message": f"{OURS}: {WORDS}",
    "status": 400,
}
OLD_FAULT = {
    "kind": "permanent_error",
    "message": f"hk refused the request with SOAP fault soap:Client: {WORDS}",
    "status": 500,
    "partner_code": "soap:Client",
    "partner_message": WORDS,
}
NEW = {
    "kind": "permanent_error",
    "message": OURS,
    "status": 400,
    "partner_message": WORDS,
    "form": 2,
}
UNANSWERED = {"kind": "transient_error", "message": "cannot connect to hk: Connection refused"}


async def failed_with(journal: Backend, key: str, error: dict[str, Any]) -> Exchange:
    """A stored exchange whose last error is ``error``."""
    ex, _ = await journal.create(
        NewExchange(
            id=new_id(NOW),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=key,
            request_hash=f"sha256:{key}",
            application={"applicant": {"name": "陳大文"}},
            received_at=NOW,
        ),
        owner="w1",
        lease_until=time.time() + 30,
    )
    change = StateChange(state=State.REJECTED, last_error=error, release_lease=True)
    await journal.record(ex.id, [], change, owner="w1")
    stored = await journal.get(ex.id)
    assert stored is not None
    return stored


async def test_a_search_by_error_never_looks_in_the_partners_words(journal: Backend) -> None:
    """Old and new errors alike: an ID number the partner quoted finds nothing; our words do (an
    error of a partner that never answered is searched whole, as before)."""
    stored = {
        name: (await failed_with(journal, name, error)).id
        for name, error in {
            "old": OLD,
            "fault": OLD_FAULT,
            "new": NEW,
            "unanswered": UNANSWERED,
        }.items()
    }

    async def ids(needle: str) -> set[str]:
        return {ex.id for ex in await journal.search(Query(error=needle))}

    assert await ids("A123456") == set() and await ids("陳大文") == set()
    assert await ids("HTTP 400") == {stored["old"], stored["new"]}
    assert await ids("SOAP fault soap:Client") == {stored["fault"]}
    assert await ids("Connection refused") == {stored["unanswered"]}
    assert await ids("permanent_error") == {stored["old"], stored["fault"], stored["new"]}


async def test_errors_journalled_before_read_split_or_masked(journal: Backend) -> None:
    """An old error is split after its first ': ' (ours readable, the rest masked); revealed, it
    reads as it was written."""
    for key, error in (("old", OLD), ("fault", OLD_FAULT), ("new", NEW)):
        ex = await failed_with(journal, key, error)
        masked = shown_error(ex.last_error, clear=False, mask=MASK)
        clear = shown_error(ex.last_error, clear=True, mask=MASK)
        assert masked is not None and clear is not None
        assert WORDS not in str(masked) and masked["message"].endswith(f": {MASK}")
        assert clear["message"] == (error["message"] if key != "new" else f"{OURS}: {WORDS}")
        assert "form" not in clear
