"""``POST /v1/replays`` says why it leaves an exchange as it is twice: ``why`` in English for people
(as it always did) and ``code``, a stable slug a program can branch on, in ``would_skip`` (a dry
run) and ``skipped`` (a run). Each code is met as it happens, over HTTP, on SQLite, PostgreSQL and
in memory: an exchange not ended, a resend of one never sent, and between the plan and the run an
exchange replayed by someone else, archived, or a journal that is locked or whose chain was
altered. A journal that cannot take the replay or refuses it is told to support staff in a fixed
sentence, without where the journal lives (its DSN, host, user, schema or file), which goes to the
operators' log, a DSN's password masked."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import orjson
import pytest

from federation import contracts
from federation.domain.models import State
from federation.logging import capture_logs
from replay import service
from replay.factory import open_journal
from replay.journal import Backend, Query, TrailQuery
from replay.postgres import PostgresJournal
from replay.sqlite import SQLiteJournal
from tests.conftest import HK_APPLICATION, hk_submission
from tests.integration.pg import JOURNALS, PgSchema, SQLiteFile, fresh_schema
from tests.integration.test_delivery import settle
from tests.integration.test_support_api import submit_all

NEVER_SENT = "was never sent (rejected before delivery, e.g. by its mapping): use remap"
MOVED = "changed since it was planned: "
NOT_ENDED = " exchanges are replayed"  # "is retry_wait: only delivered, … exchanges are replayed"
NO_MARK = {"applicant": HK_APPLICATION["applicant"]}  # the hk mapping rejects it: never sent
PASSWORD = "pw-never-shown"  # trust authentication ignores it; the journal's DSN carries it


@pytest.fixture(params=JOURNALS)
async def kept(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Backend, PgSchema | SQLiteFile | None]]:
    """An unopened journal of each backend that gives up on a lock within two seconds, and its
    store to reach from outside (None in memory)."""
    if request.param == "postgresql":
        async with fresh_schema() as pg:
            yield with_password(pg.journal(command_timeout=2.0)), pg
    elif request.param == "sqlite":
        path = tmp_path / "journal.sqlite"
        yield SQLiteJournal(path, busy_timeout=1.0), SQLiteFile(path)
    else:
        yield open_journal("memory:"), None


def with_password(journal: PostgresJournal) -> PostgresJournal:
    """``journal`` with a password in its DSN (one it names already is kept)."""
    parts = urlsplit(journal.dsn)
    if parts.password is None and parts.username is not None:
        netloc = parts.netloc.replace(f"{parts.username}@", f"{parts.username}:{PASSWORD}@", 1)
        journal.dsn = parts._replace(netloc=netloc).geturl()
    return journal


def where(journal: Backend, store: PgSchema | SQLiteFile | None) -> list[str]:
    """What names where ``journal`` lives: its DSN (and the user, host and database in it) and
    schema, or its file's path; nothing in memory."""
    if isinstance(store, PgSchema):
        assert isinstance(journal, PostgresJournal)
        parts = urlsplit(journal.dsn)
        named = [parts.username, parts.hostname, parts.path.strip("/"), parts.password]
        return ["postgresql://", store.schema, *(n for n in named if n)]
    if isinstance(store, SQLiteFile):
        return [str(store.path), store.path.name, str(store.path.parent)]
    return []


def told_by_journal(
    logged: list[Any], code: str, journal: Backend, store: PgSchema | SQLiteFile | None
) -> None:
    """The operators' log has the journal's refusal once, under ``code``, with the journal's own
    words (naming its DSN or file) and never a DSN's password."""
    [entry] = [e for e in logged if e["event"] == "replay_refused_by_journal"]
    assert entry["code"] == code and entry["error"]
    if isinstance(store, PgSchema | SQLiteFile) and code == "journal-unavailable":
        assert where(journal, store)[1] in entry["error"]  # the schema, or the file's path
    assert PASSWORD not in repr(logged)


async def replay(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST /v1/replays as the broker's own machine; the status and the answer."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/replays", data=orjson.dumps(body), headers=JSON) as r,
    ):
        return r.status, orjson.loads(await r.read())


JSON = {"Content-Type": "application/json"}


def between_plan_and_run(journal: Backend, xid: str, then: Callable[[], Awaitable[None]]) -> None:
    """Run ``then`` once, as the next plan that looks for ``xid`` has found it and before its run:
    what another person or process does in that moment."""
    real = journal.search
    fired: list[bool] = []

    async def search(query: Query) -> list[Any]:
        found = await real(query)
        if query.exchange_id == xid and not fired:
            fired.append(True)
            await then()
        return found

    journal.search = search  # type: ignore[method-assign]


def codes(items: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(item["id"], item["code"]) for item in items]


async def test_not_ended_and_never_sent_have_codes_in_a_dry_run_and_a_run(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """A dry run over a filter says ``not-ended`` of an exchange still being retried and
    ``never-sent`` of a resend of one its mapping rejected; a run of each says the same, with the
    same ``why`` as before; the trail's entry is ``skipped`` and nothing is replayed."""
    root = make_config(max_attempts=1000)
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        sent, never = await submit_all(
            broker, [hk_submission("k-1"), hk_submission("k-2", application=NO_MARK)]
        )
        sims["hk"].behaviour.fail_ratio = 1.0  # the partner is down: retried, never ended
        waiting = (await broker.submit(hk_submission("k-3")))[0].id
        await settle(broker, waiting, {State.RETRY_WAIT})
        dry = await replay(url, {"mode": "resend", "filter": {"partner": "hk"}, "dry_run": True})
        runs = [
            await replay(url, {"mode": "resend", "exchange_id": xid, "reason": "r"})
            for xid in (never, waiting)
        ]
        entries = await broker.journal.trail(TrailQuery(action="replay", limit=10))
        never_after = await broker.get(never)
    assert dry[0] == 200 and dry[1]["would_replay"] == [sent]
    assert codes(dry[1]["would_skip"]) == [(waiting, "not-ended"), (never, "never-sent")]
    assert [status for status, _ in runs] == [200, 200]
    assert [codes(answer["skipped"]) for _, answer in runs] == [
        [(never, "never-sent")],
        [(waiting, "not-ended")],
    ]
    assert [answer["replayed"] for _, answer in runs] == [[], []]
    [never_said], [waiting_said] = (answer["skipped"] for _, answer in runs)
    assert never_said["why"] == NEVER_SENT and waiting_said["why"].endswith(NOT_ENDED)
    assert dry[1]["would_skip"][1]["why"] == NEVER_SENT
    assert [e.outcome for e in entries] == ["skipped", "skipped"]
    assert never_after is not None and not [e for e in never_after.events if e.kind == "replayed"]


async def test_one_replayed_by_someone_else_since_the_plan_is_moved_since_plan(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """Two people replay the same delivered exchange at once: the one whose plan saw it delivered
    and whose run comes second is told ``moved-since-plan``; it is replayed once."""
    root = make_config(max_attempts=1000)
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("m-1")])
        sims["hk"].behaviour.fail_ratio = 1.0  # so the first replay does not end delivered again
        first: list[tuple[int, Any]] = []

        async def someone_else() -> None:
            first.append(await replay(url, {"mode": "resend", "exchange_id": xid, "reason": "a"}))

        between_plan_and_run(broker.journal, xid, someone_else)
        second = await replay(url, {"mode": "resend", "exchange_id": xid, "reason": "b"})
        after = await broker.get(xid)
    assert first[0][0] == 200 and first[0][1]["replayed"] == [xid]
    assert second[0] == 200 and second[1]["replayed"] == []
    assert codes(second[1]["skipped"]) == [(xid, "moved-since-plan")]
    assert second[1]["skipped"][0]["why"].startswith(MOVED)
    assert after is not None and len([e for e in after.events if e.kind == "replayed"]) == 1


async def test_one_archived_since_the_plan_is_not_found(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any, tmp_path: Path
) -> None:
    """Retention archives the delivered exchange between the plan and the run: ``not-found``."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("a-1")])

        async def archived() -> None:
            out = tmp_path / "archive.jsonl.gz"
            moved, _ = await broker.journal.archive(older_than=time.time() + 60, out=out)
            assert moved == 1

        between_plan_and_run(broker.journal, xid, archived)
        status, answer = await replay(url, {"mode": "resend", "exchange_id": xid, "reason": "r"})
        after = await broker.get(xid)
    assert status == 200 and answer["replayed"] == []
    assert codes(answer["skipped"]) == [(xid, "not-found")]
    assert answer["skipped"][0]["why"].startswith(MOVED)
    assert after is None


@contextlib.asynccontextmanager
async def locked(journal: Backend, store: PgSchema | SQLiteFile | None) -> AsyncIterator[Any]:
    """Hold the journal against writes from outside (another process's write lock on SQLite, an
    exclusive table lock on PostgreSQL, the store failing in memory) until the block ends; the
    hold starts when the yielded function is awaited."""
    held: list[Any] = []

    async def hold() -> None:
        if isinstance(store, SQLiteFile):
            conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            held.append(conn)
        elif isinstance(store, PgSchema):
            conn = await asyncpg.connect(store.dsn)
            tx = conn.transaction()
            await tx.start()
            await conn.execute(f'LOCK TABLE "{store.schema}".exchanges IN ACCESS EXCLUSIVE MODE')
            held.append((conn, tx))
        else:
            journal.fail_writes = True  # type: ignore[attr-defined]

    try:
        yield hold
    finally:
        for h in held:
            if isinstance(h, sqlite3.Connection):
                h.execute("ROLLBACK")
                h.close()
            else:
                await h[1].rollback()
                await h[0].close()
        if store is None:
            journal.fail_writes = False  # type: ignore[attr-defined]


async def test_a_journal_locked_since_the_plan_is_journal_unavailable(
    make_config: Any, simulators: Any, broker_at: Any, kept: Any
) -> None:
    """Another process holds the journal's write lock between the plan and the run (the store
    fails, in memory): ``journal-unavailable``, and the exchange is as it was once it lets go."""
    journal, store = kept
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("u-1")])
        async with locked(journal, store) as hold:
            between_plan_and_run(broker.journal, xid, hold)
            with capture_logs("warning") as logged:
                status, answer = await replay(
                    url, {"mode": "resend", "exchange_id": xid, "reason": "r"}
                )
        after = await broker.get(xid)
    assert status == 200 and answer["replayed"] == []
    assert codes(answer["skipped"]) == [(xid, "journal-unavailable")]
    shown = orjson.dumps(answer).decode()
    assert [w for w in where(journal, store) if w in shown] == []
    said = answer["skipped"][0]["why"]
    assert said == service.JOURNAL_SAID[service.Skip.JOURNAL_UNAVAILABLE]
    told_by_journal(logged, "journal-unavailable", journal, store)
    assert after is not None and after.state is State.DELIVERED
    assert not [e for e in after.events if e.kind == "replayed"]


async def test_a_chain_altered_since_the_plan_is_journal_damaged(
    make_config: Any, simulators: Any, broker_at: Any, kept: Any
) -> None:
    """Someone alters the journal's chain head outside tongban between the plan and the run: the
    journal refuses the replay's write, ``journal-damaged``."""
    journal, store = kept
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("d-1")])

        async def altered() -> None:
            if store is None:
                seq, digest, mac = journal.head
                journal.head = (seq - 1, digest, mac)
            else:
                await store.execute("DELETE FROM chain_head")

        between_plan_and_run(broker.journal, xid, altered)
        with capture_logs("warning") as logged:
            status, answer = await replay(
                url, {"mode": "resend", "exchange_id": xid, "reason": "r"}
            )
    assert status == 200 and answer["replayed"] == []
    assert codes(answer["skipped"]) == [(xid, "journal-damaged")]
    shown = orjson.dumps(answer).decode()
    assert [w for w in where(journal, store) if w in shown] == []
    said = answer["skipped"][0]["why"]
    assert said == service.JOURNAL_SAID[service.Skip.JOURNAL_DAMAGED]
    told_by_journal(logged, "journal-damaged", journal, store)


def test_every_code_is_one_the_openapi_document_lists() -> None:
    """The document's ReplaySkip code enum is the service's codes, no more, no fewer."""
    listed = contracts.openapi()["components"]["schemas"]["ReplaySkip"]["properties"]["code"]
    assert set(listed["enum"]) == {code.value for code in service.Skip}
