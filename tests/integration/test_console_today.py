"""What today's mapping makes of stored exchanges, as the console says it: the playground's impact,
the remap dry run, the exchange page's "Today's mapping", and a remap replay itself, on exchanges
delivered to Hong Kong's Transport Department (dates and a fee in the request) on every journal.

The search the console lists exchanges with carries no events (no application, no mapped request):
each of these must read the exchange whole, and compare the new request with the stored one as the
journal keeps it (a date as text, an amount as its exact text)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp

from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from tests.integration.test_console_sessions import csrf_of, signed_in
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_soap_lifecycle import _delivered, catalogue_copy

HK = "mappings/hk/td-vehicle-licence-renewal.yaml"
EXAMPLE = "01-kiosk-guangzhou-12-months.json"
EMAIL = "  owner.email: applicant.email\n"  # the line the changed mapping leaves out


def without_email(text: str) -> str:
    assert EMAIL in text
    return text.replace(EMAIL, "")


async def staff(http: aiohttp.ClientSession, url: str) -> str:
    """Signed in as this machine's staff; the playground's form token."""
    await signed_in(http, url)
    async with http.get(f"{url}/console/playground?partner=hk&service=TD-VL-RENEW") as r:
        assert r.status == 200
        return csrf_of(await r.text())


async def impact(http: aiohttp.ClientSession, url: str, csrf: str, text: str) -> str:
    """The playground's impact line for ``text`` run on the hk example."""
    form = {"csrf": csrf, "partner": "hk", "service": "TD-VL-RENEW", "text": text}
    form["example"] = EXAMPLE
    async with http.post(f"{url}/console/playground/run", data=form) as r:
        page = await r.text()
        assert r.status == 200, page[-2000:]
    found = re.search(r'<p id="impact">(.*?)</p>', page, re.DOTALL)
    assert found is not None, page[-2000:]
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


async def dry_run(http: aiohttp.ClientSession, url: str, csrf: str, xid: str) -> str:
    """What the remap dry run of ``xid`` says would change."""
    form = {"csrf": csrf, "exchange_id": xid, "mode": "remap", "dry_run": "1"}
    async with http.post(f"{url}/console/replays", data=form) as r:
        page = await r.text()
        assert r.status == 200, page[-2000:]
    row = re.search(rf'<tr data-id="{xid}">(.*?)</tr>', page, re.DOTALL)
    assert row is not None, page[-2000:]
    return " ".join(re.sub(r"<[^>]+>", " ", row.group(1)).split())


async def today(http: aiohttp.ClientSession, url: str, xid: str) -> str:
    """What the exchange page says of today's mapping."""
    async with http.get(f"{url}/console/exchanges/{xid}") as r:
        page = await r.text()
        assert r.status == 200, page[-2000:]
    said = re.findall(r"<p[^>]*>(Today's mapping[^<]*(?:<code>[^<]*</code>)?)", page)
    assert len(said) == 1, page[-3000:]
    return re.sub(r"</?code>", "", said[0])


def mapped_requests(ex: Exchange) -> list[dict[str, Any]]:
    return [dict(e.data["mapped"]) for e in ex.events if e.kind == "mapped"]


async def test_an_unchanged_mapping_maps_delivered_exchanges_the_same(
    tmp_path: Path, simulators, broker_at, journal_of: Any
) -> None:
    """Two applications delivered to TD; with the mapping as it is, the playground's impact says
    none of the two would map differently, the remap dry run says the request stays the same, and
    the exchange page says today's mapping makes the same request."""
    root = catalogue_copy(tmp_path / "config")
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        first = await _delivered(broker, "today-1")
        await _delivered(broker, "today-2")
        text = await asyncio.to_thread((root / HK).read_text, encoding="utf-8")
        headers = {"Accept-Language": "en"}
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            csrf = await staff(http, url)
            assert await impact(http, url, csrf, text) == (
                "Of the service's latest 2 exchange(s), 0 would map differently."
            )
            assert await dry_run(http, url, csrf, first.id) == (
                f"{first.id} delivered received the request stays the same"
            )
            assert await today(http, url, first.id) == "Today's mapping makes the same request."


async def test_a_changed_mapping_is_reported_at_its_paths_and_remapped_whole(
    tmp_path: Path, simulators, broker_at, journal_of: Any
) -> None:
    """The mapping without owner.email: the playground's impact says both delivered exchanges
    would map differently, at owner.email; saved and reloaded, the dry run and the exchange page
    name owner.email alone; the remap replay maps the stored application whole (delivered again,
    the new request as the old but for owner.email)."""
    root = catalogue_copy(tmp_path / "config")
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        first = await _delivered(broker, "today-1")
        await _delivered(broker, "today-2")
        changed = without_email(await asyncio.to_thread((root / HK).read_text, encoding="utf-8"))
        headers = {"Accept-Language": "en"}
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            csrf = await staff(http, url)
            assert await impact(http, url, csrf, changed) == (
                "Of the service's latest 2 exchange(s), 2 would map differently. owner.email"
            )
            await asyncio.to_thread((root / HK).write_text, changed, encoding="utf-8")
            await broker.reload()
            assert await dry_run(http, url, csrf, first.id) == (
                f"{first.id} delivered received the request changes at 1 field(s): owner.email"
            )
            assert await today(http, url, first.id) == (
                "Today's mapping would change these fields: owner.email"
            )
            await remap(http, url, csrf, first.id)
        again = await settle_replayed(broker, first.id)
    before, after = mapped_requests(again)
    assert before["owner"].pop("email") == "wingsun.lee@example.com"
    assert after == before


async def remap(http: aiohttp.ClientSession, url: str, csrf: str, xid: str) -> None:
    """Replay ``xid`` remapped, with a reason (the console's confirmed replay)."""
    form = {"csrf": csrf, "exchange_id": xid, "mode": "remap", "confirm": "1"}
    form["reason"] = "TD no longer takes the owner's e-mail"
    async with http.post(f"{url}/console/replays", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def settle_replayed(broker: Broker, xid: str) -> Exchange:
    """The exchange once its replay has ended, delivered, with its history."""
    ex = await settle(broker, xid, DONE)
    assert any(e.kind == "replayed" for e in ex.events)
    assert ex.state is State.DELIVERED, ex.last_error
    return ex


async def test_why_todays_mapping_fails_is_shown_only_in_clear(
    tmp_path: Path, simulators, broker_at, journal_of: Any
) -> None:
    """A mapping that now fails on a delivered application, with a reason that quotes it (the
    applicant's name is not a whole number): a viewer's masked page names the field alone; the
    page revealed with a reason says why, quoting the name. Before, the masked page quoted it."""
    from tests.integration.test_console_playground_limits import viewer_session
    from tests.integration.test_console_playground_reveal import support_session
    from tests.integration.test_roles import with_principals

    root = with_principals(catalogue_copy(tmp_path / "config"), ("viewer", "support"))
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        first = await _delivered(broker, "today-1")
        stored = await broker.get(first.id)
        assert stored is not None
        name = stored.application["applicant"]["name_en"]
        text = await asyncio.to_thread((root / HK).read_text, encoding="utf-8")
        failing = text.replace(EMAIL, "  owner.email: {from: applicant.name_en, transform: int}\n")
        await asyncio.to_thread((root / HK).write_text, failing, encoding="utf-8")
        await broker.reload()
        page = f"{url}/console/exchanges/{first.id}"
        english = {"Accept-Language": "en"}
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=english
        ) as http:
            await viewer_session(http, url)
            async with http.get(page) as r:
                masked = await r.text()
                assert r.status == 200, masked[-2000:]
        said = re.search(r'<p class="problem" id="today-problems">(.*?)</p>', masked, re.DOTALL)
        assert said is not None, masked[-3000:]
        assert "applicant.name_en" in said.group(1) and "reveal to read why" in said.group(1)
        assert name not in masked and name.replace(",", "&#44;") not in masked
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=english
        ) as http:
            csrf = await support_session(http, url)
            form = {"csrf": csrf, "reason": "HK TD ticket 4471"}
            async with http.post(f"{page}/reveal", data=form) as r:
                clear = await r.text()
                assert r.status == 200, clear[-2000:]
        said = re.search(r'<p class="problem" id="today-problems">(.*?)</p>', clear, re.DOTALL)
        assert said is not None and "is not a whole number" in said.group(1)
        assert name.split(",")[0] in said.group(1)


async def test_journal_show_says_why_todays_mapping_fails_only_when_revealed(
    tmp_path: Path, simulators, broker_at
) -> None:
    """`tongban journal show` without --reveal lists where today's mapping fails on the
    application (file:line: path) with the mask for why, since why can quote it; with --reveal
    --reason it says why. Before, the masked show quoted the applicant's name."""
    from click.testing import CliRunner

    from federation.cli.main import main

    root = catalogue_copy(tmp_path / "config")
    journal = tmp_path / "show.sqlite"
    sims = await simulators(root)
    async with broker_at(root, sims, journal=journal) as (broker, _url):
        first = await _delivered(broker, "today-1")
        stored = await broker.get(first.id)
    assert stored is not None
    surname = stored.application["applicant"]["name_en"].split(",")[0]
    text = (root / HK).read_text(encoding="utf-8")
    failing = text.replace(EMAIL, "  owner.email: {from: applicant.name_en, transform: int}\n")
    (root / HK).write_text(failing, encoding="utf-8")
    show = ["--lang", "en", "journal", "show", first.id, "--journal", str(journal)]
    show += ["--config", str(root), "--reason", "HK TD ticket 4471"]
    masked = await asyncio.to_thread(CliRunner().invoke, main, show)
    clear = await asyncio.to_thread(CliRunner().invoke, main, [*show, "--reveal"])
    assert masked.exit_code == 0 and clear.exit_code == 0, masked.output + clear.output
    assert f"{HK}:32: applicant.name_en: ‹redacted›" in masked.output
    assert surname not in masked.output and "is not a whole number" not in masked.output
    assert "is not a whole number" in clear.output and surname in clear.output


async def test_the_remap_dry_run_says_where_todays_mapping_fails_not_why(
    tmp_path: Path, simulators, broker_at
) -> None:
    """The console's and the CLI's remap dry run need no reason and reveal nothing: they name
    the field today's mapping fails at, never the reason quoting the application (found by
    review: both quoted the applicant's name)."""
    from click.testing import CliRunner

    from federation.cli.main import main

    root = catalogue_copy(tmp_path / "config")
    journal = tmp_path / "dry.sqlite"
    sims = await simulators(root)
    async with broker_at(root, sims, journal=journal) as (broker, url):
        first = await _delivered(broker, "today-1")
        stored = await broker.get(first.id)
        assert stored is not None
        surname = stored.application["applicant"]["name_en"].split(",")[0]
        text = await asyncio.to_thread((root / HK).read_text, encoding="utf-8")
        failing = text.replace(EMAIL, "  owner.email: {from: applicant.name_en, transform: int}\n")
        await asyncio.to_thread((root / HK).write_text, failing, encoding="utf-8")
        await broker.reload()
        jar = aiohttp.CookieJar(unsafe=True)
        english = {"Accept-Language": "en"}
        async with aiohttp.ClientSession(cookie_jar=jar, headers=english) as http:
            csrf = await staff(http, url)
            row = await dry_run(http, url, csrf, first.id)
    assert row == f"{first.id} delivered received today&#39;s mapping fails at: applicant.name_en"
    args = ["--lang", "en", "replay", first.id, "--mode", "remap", "--dry-run"]
    args += ["--journal", str(journal), "--config", str(root)]
    cli = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert cli.exit_code == 0, cli.output
    assert f"{HK}:32: applicant.name_en: ‹redacted›" in cli.output
    assert surname not in cli.output and "whole number" not in cli.output
