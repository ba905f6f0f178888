"""A SQLite journal whose disk refuses writes (full: here its page limit, as a full disk answers
``database or disk is full``) is not ready: its ping's read still answers, so /readyz said ready
while every application was refused 503 journal-unavailable. Now the ping says why writes fail
until the disk has room again, and /readyz answers 503 not-ready meanwhile. A write that needs
no new page (a presence beat, a lease renewal: updates in place) still succeeds on a full disk
and does not make it ready; room given back does, before any application arrives, also where no
file can be made beside the journal. The check for room failing never stops the writer."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.domain.errors import JournalUnavailable
from replay import dbthread
from replay.instances import Instance
from replay.sqlite import SQLiteJournal
from tests.conftest import HK_APPLICATION
from tests.integration.test_journal_contract import NOW, new
from tests.integration.test_writer_room import no_new_files

MANY = 400  # applications: far past a page limit set at the journal's size


async def capped(journal: Any, pages: int | None) -> None:
    """The writer's page limit: the file's size now (None), or ``pages``."""

    def cap(conn: sqlite3.Connection) -> None:
        limit = pages or conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {int(limit)}")

    await journal._write(cap)


async def fill(journal: Any, start: int) -> JournalUnavailable:
    """Create applications until the journal refuses one; the refusal."""
    for i in range(start, start + MANY):
        try:
            await journal.create(
                new(f"k{i}", body="x" * 2000, at=NOW + i), owner="w", lease_until=NOW + i + 60
            )
        except JournalUnavailable as exc:
            return exc
    raise AssertionError("the capped journal took every write")


async def test_the_ping_says_writes_fail_until_one_succeeds(tmp_path: Path) -> None:
    """Not ready from the refused write until the page limit is raised and a write succeeds."""
    journal = SQLiteJournal(tmp_path / "j.sqlite")
    await journal.open()
    try:
        await journal.create(new("k0"), owner="w", lease_until=NOW + 60)
        await journal.ping()  # ready
        await capped(journal, None)
        refused = await fill(journal, 1)
        assert "full" in str(refused)
        with pytest.raises(JournalUnavailable, match="writes fail: database or disk is full"):
            await journal.ping()
        with pytest.raises(JournalUnavailable, match="writes fail"):
            await journal.ping()  # still: a ping's read is no write
        await capped(journal, 1_000_000)
        await journal.create(new("after", at=NOW + 9999), owner="w", lease_until=NOW + 9999)
        await journal.ping()  # writes again: ready
    finally:
        await journal.close()


async def test_readyz_is_not_ready_while_writes_fail(make_config: Any, broker_at: Any) -> None:
    """/readyz answers 503 not-ready, saying writes fail, until the journal takes writes again."""
    async with (
        broker_at(make_config()) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        await capped(broker.journal, None)
        await fill(broker.journal, 1)
        async with http.get("/readyz") as r:
            status, body = r.status, await r.json(content_type=None)
        await capped(broker.journal, 1_000_000)
        await broker.journal.create(new("after", at=NOW + 9999), owner="w", lease_until=NOW + 9999)
        async with http.get("/readyz") as r:
            again = r.status
    assert (status, body["type"]) == (503, "urn:tongban:problem:not-ready")
    assert "writes fail" in body["detail"]
    assert again == 200


async def test_updates_in_place_do_not_make_it_ready(tmp_path: Path) -> None:
    """A presence beat (an upsert) and a lease renewal succeed on the full journal, and the ping
    still says writes fail: the next application is refused all the same."""
    journal = SQLiteJournal(tmp_path / "j.sqlite")
    here = Instance(id="h:1", host="h", pid=1, config_version="v", started_at=NOW, seen_at=NOW)
    await journal.open()
    try:
        held, _ = await journal.create(new("k0"), owner="w", lease_until=NOW + 60)
        await journal.announce(here)
        await capped(journal, None)
        await fill(journal, 1)
        await journal.announce(replace(here, seen_at=NOW + 15))  # succeeds: no new page
        renewed = await journal.renew(owner="w", ids=[held.id], lease_until=NOW + 90)
        seen = await journal.instances(seen_since=NOW + 15)
        with pytest.raises(JournalUnavailable, match="writes fail: database or disk is full"):
            await journal.ping()
        with pytest.raises(JournalUnavailable, match="full"):
            await journal.create(
                new("next", body="x" * 2000, at=NOW + 9999), owner="w", lease_until=NOW + 9999
            )
    finally:
        await journal.close()
    assert (renewed, [i.seen_at for i in seen]) == (1, [NOW + 15])


async def test_room_given_back_makes_it_ready_before_any_application(tmp_path: Path) -> None:
    """Nothing but the ping writes once the page limit is raised: ready at once (a broker taken
    out of rotation gets no application to prove it), and the check for room leaves no file."""
    journal = SQLiteJournal(tmp_path / "j.sqlite")
    await journal.open()
    try:
        await capped(journal, None)
        await fill(journal, 1)
        with pytest.raises(JournalUnavailable, match="writes fail"):
            await journal.ping()
        files = sorted(await asyncio.to_thread(os.listdir, tmp_path))
        await capped(journal, 1_000_000)
        await journal.ping()
        after = sorted(await asyncio.to_thread(os.listdir, tmp_path))
    finally:
        await journal.close()
    assert after == files


async def test_readyz_stays_not_ready_after_a_presence_beat(
    make_config: Any, broker_at: Any
) -> None:
    """Applications refused 503 for a full journal: /readyz is 503 before and after a presence
    beat that succeeds, while the next application is refused; 200 and 202 once there is room."""

    async def apply(http: aiohttp.ClientSession, key: str) -> int:
        body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
        headers = {"Idempotency-Key": key}
        application = {**body, "application": {**HK_APPLICATION, "note": "x" * 2000}}
        async with http.post("/v1/exchanges", json=application, headers=headers) as r:
            return r.status

    async def ready(http: aiohttp.ClientSession) -> int:
        async with http.get("/readyz") as r:
            return r.status

    async with (
        broker_at(make_config()) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        statuses = [await apply(http, "k0")]
        await capped(broker.journal, None)
        for i in range(1, MANY):
            statuses.append(await apply(http, f"k{i}"))
            if statuses[-1] == 503:
                break
        refused = await ready(http)
        beat = await broker.journal.instances(seen_since=0)
        await broker.presence.announce()  # what the presence loop does every 15 s
        beaten = await broker.journal.instances(seen_since=0)
        after_beat, next_one = await ready(http), await apply(http, "next")
        await capped(broker.journal, 1_000_000)
        again, accepted = await ready(http), await apply(http, "after")
    assert (statuses[0], statuses[-1]) == (202, 503)
    assert [i.seen_at for i in beaten] > [i.seen_at for i in beat]  # the beat was written
    assert (refused, after_beat, next_one) == (503, 503, 503)
    assert (again, accepted) == (200, 202)


async def test_readiness_comes_back_where_no_file_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal in a directory no new file can be made in (its -wal and -shm already there):
    the check cannot write a file beside it, and asks the file system instead, so readiness comes
    back once room is given back (it stayed not ready for good)."""
    where = tmp_path / "fixed"
    where.mkdir()
    journal = SQLiteJournal(where / "j.sqlite")
    await journal.open()
    try:
        await capped(journal, None)
        await fill(journal, 1)
        with no_new_files(where, monkeypatch):
            with pytest.raises(JournalUnavailable, match="writes fail"):
                await journal.ping()
            await capped(journal, 1_000_000)
            await journal.ping()
            await journal.create(new("after", at=NOW + 9999), owner="w", lease_until=NOW + 9999)
    finally:
        await journal.close()


async def test_an_error_in_the_room_check_leaves_the_writer_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check for room raising (the disk failing under it) counts as no room: the write it
    followed is answered, the writer goes on, and the next write and the ping work."""

    asked: list[object] = []

    def failing(conn: sqlite3.Connection, *, disk: object = None) -> bool:
        asked.append(disk)  # called as the writer calls it (a signature it does not match would
        raise sqlite3.OperationalError("disk I/O error")  # raise TypeError and test nothing)

    journal = SQLiteJournal(tmp_path / "j.sqlite")
    await journal.open()
    try:
        await capped(journal, None)
        await fill(journal, 1)
        with monkeypatch.context() as patched:
            patched.setattr(dbthread, "room", failing)
            await asyncio.wait_for(capped(journal, 1_000_000), 10)
            with pytest.raises(JournalUnavailable, match="writes fail"):
                await asyncio.wait_for(journal.ping(), 10)
        assert asked, "the room check was never asked"
        created = asyncio.wait_for(
            journal.create(new("after", at=NOW + 9999), owner="w", lease_until=NOW + 9999), 10
        )
        await created
        await asyncio.wait_for(journal.ping(), 10)
    finally:
        await journal.close()
