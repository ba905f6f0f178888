"""A flood of refused requests from one client address is bounded in the journal: its refusals are
journalled one by one up to the address's budget (bodies within their bytes), the rest counted into
one summary row once the window ends, which the console's refusals page shows; another address's
refusals are still kept; every client gets its answer as before; the journal still verifies. The
refusals the server answers before the app (garbage it cannot parse) go through the same budget.
Over loopback sockets (a second client address is 127.0.0.2), on SQLite, PostgreSQL and in
memory, the budget on a clock the test moves (no timing)."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any, cast

import aiohttp
from aiohttp import web
from click.testing import CliRunner

from federation.api.budget import SUMMARY_PROBLEM, RefusalBudget, install
from federation.api.net import start_site
from federation.api.unparsed import EdgeRefusals
from federation.cli.main import main
from federation.config.refusals import RefusalBudgetSettings
from federation.logging import capture_logs
from replay.journal import Backend, JournalAdmin, Refusal
from tests.integration.test_console_form_refusals import hidden
from tests.integration.test_http_edge import raw
from tests.integration.test_roles import KEYS, with_principals
from tests.integration.test_unparsed_refusals import GARBAGE

BODY = b"{" + b"x" * 999  # not JSON: refused 400 with its body kept (1000 bytes)
BUDGET = (
    "\nbroker:\n  refusal_budget: {per_second: 1, burst: 5, body_bytes_per_minute: 2500,"
    " total_burst: 20, summary_every: 10s}\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


async def post(url: str, local: str, count: int) -> list[int]:
    """``count`` refused applications from the client address ``local``; their statuses."""
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    statuses = []
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(count):
            headers = {"Content-Type": "application/json", "Idempotency-Key": f"k-{i}"}
            async with http.post(
                f"{url}/v1/exchanges", data=io.BytesIO(BODY), headers=headers
            ) as r:
                assert r.content_type == "application/problem+json"
                statuses.append(r.status)
    return statuses


async def rows(journal: Any) -> list[Refusal]:
    return (await cast(JournalAdmin, journal).refusals(1000))[::-1]


async def test_a_flood_from_one_address_is_bounded_and_summarised(
    make_config: Any, broker_at: Any, journal_of: Backend
) -> None:
    root = make_config()
    with (root / "partners.yaml").open("a", encoding="utf-8") as f:
        f.write(BUDGET)
    clock = Clock()
    install(journal_of, RefusalBudget(clock=clock))
    with capture_logs() as logs:
        async with broker_at(root, journal_obj=journal_of) as (broker, url):
            flood = await post(url, "127.0.0.1", 30)
            other = await post(url, "127.0.0.2", 2)
            before = await rows(broker.journal)
            clock.now += 10.0  # the window ends: the next refusal writes its summaries
            await post(url, "127.0.0.2", 1)
            after = await rows(broker.journal)
            async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
                metrics = await r.text()
            _, broken = await cast(JournalAdmin, broker.journal).verify()
    assert flood == [400] * 30 and other == [400] * 2  # every client answered as before
    first = [r for r in before if r.remote == "127.0.0.1"]
    assert [(len(r.body), r.body_bytes) for r in first] == [(1000, 1000)] * 2 + [(0, 1000)] * 3
    assert [(r.remote, len(r.body)) for r in before[5:]] == [("127.0.0.2", 1000)] * 2
    [summary] = [r for r in after if r.problem == SUMMARY_PROBLEM]
    assert len(after) == 5 + 2 + 1 + 1
    problem = first[0].problem
    assert (summary.remote, summary.status, summary.body, summary.body_bytes) == (
        "127.0.0.1",
        400,
        b"",
        28 * 1000,
    )
    assert summary.detail.startswith(
        "25 refusal(s) not kept one by one and 3 kept without the body (28000 bytes of bodies not "
        "kept), from this address between "
    )
    assert summary.detail.endswith(f"past the refusal budget: 400 {problem} ×28")
    assert 'tongban_refusals_not_kept_total{reason="row_address"} 25.0' in metrics
    # three bodies of 127.0.0.1's, and 127.0.0.2's third (past its 2500 bytes)
    assert 'tongban_refusals_not_kept_total{reason="body_address"} 4.0' in metrics
    assert broken is None
    path = getattr(journal_of, "path", None)
    if path is not None:  # SQLite: `tongban journal verify` too, the stop's summary row written
        verified = await asyncio.to_thread(
            CliRunner().invoke, main, ["--lang", "en", "journal", "verify", "--journal", str(path)]
        )
        assert verified.exit_code == 0 and verified.output.startswith("ok: "), verified.output
    # the window's, then the stop's (127.0.0.2's last body, in the window the stop ended)
    logged, at_stop = [e for e in logs if e["event"] == "refusals_not_kept"]
    assert (at_stop["summaries"], at_stop["refusals"], at_stop["bodies"]) == (1, 0, 1)
    assert {k: logged[k] for k in ("summaries", "refusals", "bodies", "bytes_not_kept")} == {
        "summaries": 1,
        "refusals": 25,
        "bodies": 3,
        "bytes_not_kept": 28000,
    }
    assert "127.0.0" not in repr([e for e in logs if "refus" in e["event"]])
    assert sum(e["event"] == "intake_refused" for e in logs) == 5 + 2 + 1  # the rest not logged


async def test_with_the_budget_off_every_refusal_is_kept_in_full(
    make_config: Any, broker_at: Any, journal_of: Backend
) -> None:
    root = make_config()
    with (root / "partners.yaml").open("a", encoding="utf-8") as f:
        f.write("\nbroker:\n  refusal_budget: false\n")
    install(journal_of, RefusalBudget(RefusalBudgetSettings(burst=1), clock=Clock()))
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        assert await post(url, "127.0.0.1", 12) == [400] * 12
        kept = await rows(broker.journal)
    assert [len(r.body) for r in kept] == [1000] * 12


async def test_the_summary_row_reads_in_the_consoles_refusals_page(
    make_config: Any, broker_at: Any, journal_of: Backend
) -> None:
    root = with_principals(make_config(), ("operator",))
    with (root / "partners.yaml").open("a", encoding="utf-8") as f:
        f.write("broker:\n  refusal_budget: {burst: 2}\n")
    clock = Clock()
    install(journal_of, RefusalBudget(clock=clock))
    jar = aiohttp.CookieJar(unsafe=True)  # the session's cookie on an IP address
    async with (
        broker_at(root, journal_obj=journal_of) as (_, url),
        aiohttp.ClientSession(cookie_jar=jar) as http,
    ):
        for _ in range(6):
            async with http.get(f"{url}/v1/nowhere?who=someone") as r:
                assert r.status == 404
        clock.now += 60.0
        # another client address: its refusal writes the summary of the window that ended
        second = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=second) as other,
            other.get(f"{url}/v1/nowhere") as r,
        ):
            assert r.status == 404
        async with http.get(f"{url}/console/sign-in") as r:
            pre = hidden(await r.text(), "pre")
        form = {"pre": pre, "key": KEYS["operator"]}
        async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{url}/console/refusals", headers={"Accept-Language": "en"}) as r:
            page = await r.text()
    [summary] = re.findall(r"<tr><td>[^<]*</td><td>127\.0\.0\.1</td>.*refusals-not-kept.*", page)
    assert "4 refusal(s) not kept one by one and 0 kept without the body" in summary
    assert "past the refusal budget: 404 not-found ×4" in summary
    assert "<code> </code>" in summary and "<td>404</td>" in summary


async def garbage(journal: Backend, budget: RefusalBudget, count: int) -> EdgeRefusals:
    """``count`` garbage connections, one after another, against a bare edge server."""
    async with EdgeRefusals(journal, budget=budget) as refusals:
        runner, url = await start_site(
            web.Application(), edge=True, refusals=refusals, access_log=None
        )
        try:
            for _ in range(count):
                status, _, _ = await raw(url, GARBAGE)
                assert status.split()[1] == "400"
        finally:
            await runner.cleanup()
    return refusals


async def test_a_flood_of_garbage_is_bounded_and_summarised_at_the_stop(
    journal: Backend,
) -> None:
    """What the parser refuses: the first five rows, then one summary row written at the stop."""
    budget = RefusalBudget(RefusalBudgetSettings(per_second=1, burst=5), clock=Clock())
    refusals = await garbage(journal, budget, 40)
    kept = await rows(journal)
    assert refusals.dropped == 0
    assert [r.problem for r in kept] == ["bad-request"] * 5 + [SUMMARY_PROBLEM]  # in order
    summary = kept[-1]
    assert summary.detail.startswith("35 refusal(s) not kept one by one and 0 kept")
    assert summary.detail.endswith("past the refusal budget: 400 bad-request ×35")
    _, broken = await cast(JournalAdmin, journal).verify()
    assert broken is None


async def test_garbage_before_any_app_refusal_is_held_to_the_configured_budget(
    make_config: Any, broker_at: Any, journal_of: Backend
) -> None:
    """What the parser refuses is held to partners.yaml's budget from the start, not to the
    defaults until the app has refused a request of its own (burst 5 here; the default is 300):
    of eight, three are not kept one by one, as the metric counts them when they are refused."""
    root = make_config()
    with (root / "partners.yaml").open("a", encoding="utf-8") as f:
        f.write(BUDGET)
    install(journal_of, RefusalBudget(clock=Clock()))
    async with broker_at(root, journal_obj=journal_of) as (_, url):
        for _ in range(8):
            status, _, _ = await raw(url, GARBAGE)
            assert status.split()[1] == "400"
        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
            metrics = await r.text()
    assert 'tongban_refusals_not_kept_total{reason="row_address"} 3.0' in metrics


async def test_what_the_parser_refuses_follows_a_reload_of_the_budget(
    make_config: Any, broker_at: Any, journal_of: Backend
) -> None:
    """After a reload that turns the budget off, garbage is kept one by one again, with no app
    refusal in between to carry the new settings (before the reload the budget was burst 5)."""
    root = make_config()
    yaml_path = root / "partners.yaml"
    original = yaml_path.read_text(encoding="utf-8")
    yaml_path.write_text(original + BUDGET, encoding="utf-8")
    install(journal_of, RefusalBudget(clock=Clock()))
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        status, _, _ = await raw(url, GARBAGE)
        yaml_path.write_text(original + "\nbroker:\n  refusal_budget: false\n", encoding="utf-8")
        await broker.reload()
        for _ in range(10):
            status, _, _ = await raw(url, GARBAGE)
            assert status.split()[1] == "400"
        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
            metrics = await r.text()
    assert 'tongban_refusals_not_kept_total{reason="row_address"}' not in metrics
