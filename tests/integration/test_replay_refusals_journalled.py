"""Every refused replay is journalled, as the intake's refusals are: a row in the journal's refusals
(path, status, problem type; no body, since a replay's reason and filters can name a person) and
an audit entry ``refused:replay`` saying who asked, for which exchange and why (the problem type),
with no applicant's ID and no reason typed in either. On SQLite, PostgreSQL and in memory, through
``POST /v1/replays``, the console's replay form, and ``tongban replay``."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson

from federation.cli.audit import os_user
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange
from federation.logging import MASK
from federation.runtime.broker import Broker
from replay.factory import open_journal
from replay.journal import AuditEntry, JournalAdmin, Refusal, TrailQuery
from tests.conftest import HK_APPLICATION, hk_submission
from tests.integration.test_partner_words import sign_in
from tests.integration.test_roles import IDS, KEYS, with_principals
from tests.integration.test_support_api import submit_all
from tests.subprocess_cli import tongban

HKID = "K802133(3)"  # typed where it does not belong: never kept
REASON = "陳大文 called about it"  # a refused replay's reason is not kept either
BAD = (400, "invalid-request")


def headers(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}", "Content-Type": "application/json"}


async def post(url: str, role: str, body: Any) -> tuple[int, str]:
    """POST /v1/replays as ``role``; the answer's status and problem type (or '')."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/replays", data=orjson.dumps(body), headers=headers(role)) as r,
    ):
        answer = orjson.loads(await r.read())
    return r.status, str(answer.get("type", "")).removeprefix("urn:tongban:problem:")


async def kept(broker: Broker, path: str) -> tuple[list[Refusal], list[AuditEntry]]:
    """The refusals of ``path`` and the ``refused:replay`` audit entries, newest first."""
    refusals = await cast(JournalAdmin, broker.journal).refusals(100)
    entries = await broker.journal.trail(TrailQuery(action="refused:replay", limit=100))
    return [r for r in refusals if r.path == path], entries


def no_personal_data(refusals: list[Refusal], entries: list[AuditEntry]) -> None:
    """Neither the ID typed nor the reason is in any refusal or audit entry."""
    for r in refusals:
        text = f"{r.remote} {r.method} {r.path} {r.problem} {r.detail} {r.idempotency_key}"
        assert r.body == b"", r
        assert "802133" not in text and "陳大文" not in text, r
    for e in entries:
        text = f"{e.who} {e.role} {e.target} {e.reason} {e.outcome}"
        assert "802133" not in text and "陳大文" not in text, e


async def test_refused_api_replays_are_journalled_with_who_what_and_why(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """Unknown exchange, a bad mode, no reason, an unconfirmed bulk replay, an unknown filter, an
    HKID given as the exchange id, a body that is no object, a role that may not replay: each is
    answered as before and kept, by whom, on what and why."""
    root = with_principals(make_config(), ("support", "viewer"))
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("r-1")])
        missing = new_id(time.time())  # an exchange id the journal does not hold
        asked = {"mode": "resend", "reason": REASON}
        bulk = {**asked, "filter": {"partner": "hk"}}
        cases: list[tuple[str, Any, tuple[int, str], str]] = [
            ("support", {**asked, "exchange_id": missing}, (404, "not-found"), missing),
            ("support", {**asked, "mode": "again", "exchange_id": xid}, BAD, xid),
            ("support", {"mode": "resend", "exchange_id": xid}, BAD, xid),
            ("support", bulk, (400, "confirmation-required"), '{"partner":"hk"}'),
            ("support", {**asked, "filter": {"hkid": HKID}}, (400, "invalid-query"), ""),
            ("support", {**asked, "exchange_id": HKID}, (404, "not-found"), MASK),
            ("support", ["resend", HKID], BAD, ""),
            ("viewer", {**asked, "exchange_id": xid}, (403, "forbidden"), "/v1/replays"),
        ]
        answers = [await post(url, role, body) for role, body, _, _ in cases]
        refusals, entries = await kept(broker, "/v1/replays")
        after = await broker.get(xid)
    assert answers == [answer for _, _, answer, _ in cases]
    assert [(r.method, r.status, r.problem) for r in refusals] == [
        ("POST", status, problem) for _, _, (status, problem), _ in reversed(cases)
    ]
    assert [(e.who, e.role, e.target, e.outcome) for e in entries] == [
        (IDS[role], role, target, problem) for role, _, (_, problem), target in reversed(cases)
    ]
    no_personal_data(refusals, entries)
    assert after is not None and not [e for e in after.events if e.kind == "replayed"]


async def test_a_replay_that_replays_nothing_is_audited_as_skipped(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """Resending an exchange that was never sent is answered 200 with why it was skipped, and the
    audit trail says ``skipped`` of it, not ``ok``; one that replays says ``ok``."""
    root = with_principals(make_config(), ("support",))
    sims = await simulators(root)
    no_mark = {"applicant": HK_APPLICATION["applicant"]}
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        sent, never = await submit_all(
            broker, [hk_submission("s-1"), hk_submission("s-2", application=no_mark)]
        )
        skipped = await post(
            url, "support", {"mode": "resend", "exchange_id": never, "reason": "r"}
        )
        replayed = await post(
            url, "support", {"mode": "resend", "exchange_id": sent, "reason": "r"}
        )
        entries = await broker.journal.trail(TrailQuery(action="replay", limit=10))
    assert (skipped, replayed) == ((200, ""), (200, ""))
    assert [(e.who, e.outcome) for e in entries] == [
        (IDS["support"], "ok"),
        (IDS["support"], "skipped"),
    ]
    assert entries[0].target == sent


async def signed_in(http: aiohttp.ClientSession, url: str, key: str) -> str:
    """Sign in to the console with a principal's key; the session's form token."""
    await sign_in(http, url, key)
    async with http.get(f"{url}/console/") as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert csrf is not None
    return csrf.group(1)


async def test_refused_console_replays_are_journalled_with_who_what_and_why(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """The console's replay form: an unknown exchange, no reason, a bad mode, a filter of an
    unknown state, and a form sent without a session are each kept, as the API's are."""
    root = with_principals(make_config(), ("support",))
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("c-1")])
        missing = new_id(time.time())
        statuses = []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            csrf = await signed_in(http, url, KEYS["support"])
            forms = [
                {"exchange_id": missing, "mode": "resend", "reason": REASON},
                {"exchange_id": xid, "mode": "resend", "reason": " "},
                {"exchange_id": HKID, "mode": "resend", "reason": REASON, "dry_run": "1"},
                {"f_state": "lost", "mode": "resend", "reason": REASON, "dry_run": "1"},
                {"exchange_id": xid, "mode": "again", "reason": REASON},
            ]
            for form in forms:
                async with http.post(f"{url}/console/replays", data={"csrf": csrf, **form}) as r:
                    statuses.append(r.status)
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.post(f"{url}/console/replays", data={"exchange_id": xid}) as r,
        ):
            statuses.append(r.status)
        refusals, entries = await kept(broker, "/console/replays")
    support = (IDS["support"], "support")
    expected = [
        (401, "unauthenticated", ("anonymous", ""), "/console/replays"),
        (400, "invalid-request", support, xid),
        (400, "invalid-query", support, '{"state":"lost"}'),
        (404, "not-found", support, MASK),
        (400, "invalid-request", support, xid),
        (404, "not-found", support, missing),
    ]
    assert statuses == [status for status, _, _, _ in reversed(expected)]
    assert [(r.status, r.problem) for r in refusals] == [(s, p) for s, p, _, _ in expected]
    assert [((e.who, e.role), e.target, e.outcome) for e in entries] == [
        (who, target, problem) for _, problem, who, target in expected
    ]
    no_personal_data(refusals, entries)


async def test_refused_cli_replays_are_in_the_audit_trail(tmp_path: Path) -> None:
    """``tongban replay`` of an exchange the journal does not hold, or of one it will not replay,
    exits 1 and leaves ``refused:replay`` by the OS user (the CLI keeps no request to refuse)."""
    path = tmp_path / "cli.sqlite"
    journal = open_journal(path)
    await journal.open()
    try:
        made, _ = await journal.create(
            NewExchange(
                id=new_id(time.time()),
                direction=Direction.OUTBOUND,
                source="gd-portal",
                target="hk",
                service="TD-VL-RENEW",
                idempotency_key="cli-1",
                request_hash="sha256:a",
                application=HK_APPLICATION,
                received_at=time.time(),
            ),
            owner="w1",
            lease_until=time.time(),
        )
    finally:
        await journal.close()
    missing = new_id(time.time())
    where = ("--mode", "resend", "--reason", REASON, "--journal", str(path))
    unknown = tongban("replay", missing, *where)
    waiting = tongban("replay", made.id, *where)  # received: not replayable
    journal = open_journal(path)
    await journal.open()
    try:
        entries = await journal.trail(TrailQuery(action="refused:replay", limit=10))
    finally:
        await journal.close()
    assert (unknown.returncode, waiting.returncode) == (1, 1), (unknown.stderr, waiting.stderr)
    assert [(e.who, e.role, e.target, e.outcome) for e in entries] == [
        (os_user(), "cli", made.id, "skipped"),
        (os_user(), "cli", missing, "not-found"),
    ]
    assert all(e.reason == "" for e in entries)
