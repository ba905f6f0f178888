"""A SQLite journal whose disk refuses writes (full: here its page limit, as a full disk answers
``database or disk is full``) is not ready: its ping's read still answers, so /readyz said ready
while every application was refused 503 journal-unavailable. Now the ping says why writes fail
until a transaction writes again, and /readyz answers 503 not-ready meanwhile."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.domain.errors import JournalUnavailable
from replay.sqlite import SQLiteJournal
from tests.integration.test_journal_contract import NOW, new

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
