"""The PostgreSQL journal's probe for room (``replay/pgroom.py``) needs no privilege beyond a
journal role's table grants, writes what no compressing filesystem can shrink, and cannot keep
/readyz not ready for a reason other than room.

A role without TEMP on its database (a usual hardening step) made the earlier probe, a temporary
table, fail with 42501 for ever: once a write had been refused for want of space, the ping stayed
not ready until a restart, saying "No space left on device" long after the disk had room. Here a
database and a role of the test's own (dropped afterwards) reproduce that role: tables migrated
by the server's superuser, the role granted only SELECT, INSERT, UPDATE and DELETE on them, TEMP
revoked. The full disk is simulated as in ``test_pg_ready_while_full.py``.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from federation.domain.errors import JournalUnavailable
from replay import pgroom
from replay.pgroom import FILL, ROOM_PAGES, probe
from tests.integration.pg import DSN, PgSchema, fresh_schema
from tests.integration.test_journal_contract import NOW, new
from tests.integration.test_pg_ready_while_full import _full, _room


def _in(dsn: str, database: str, user: str | None = None) -> str:
    """``dsn`` with another database (and user)."""
    base, _, _ = dsn.rpartition("/")
    if user is not None:
        scheme, _, rest = base.partition("://")
        base = f"{scheme}://{user}@{rest.rpartition('@')[2]}"
    return f"{base}/{database}"


@pytest.fixture
async def narrow(tmp_path: Path) -> AsyncIterator[tuple[PgSchema, PgSchema, str]]:
    """A database of the test's own, its journal migrated by the superuser, and a role without
    TEMP granted only a journal role's table rights: (as the superuser, as the role, its name)."""
    name = f"tongban_narrow_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(DSN)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN")
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.execute(f"REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")
        await admin.execute(f"GRANT CONNECT ON DATABASE {name} TO {name}")
        owner = PgSchema(_in(DSN, name), "j", tmp_path)
        journal = owner.journal()
        await journal.open()
        await journal.close()
        for grant in (
            f"GRANT USAGE ON SCHEMA j TO {name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA j TO {name}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA j TO {name}",
        ):
            await owner.execute(grant)
        yield owner, PgSchema(_in(DSN, name, name), "j", tmp_path), name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.close()


@pytest.fixture
def probe_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ping probes: here room comes back between two pings far sooner than
    ``PROBE_EVERY`` (the interval is tested in test_room_probe_shared.py)."""
    monkeypatch.setattr(pgroom, "PROBE_EVERY", 0.0)


async def test_ready_again_for_a_role_without_temp(
    narrow: tuple[PgSchema, PgSchema, str], probe_at_once: None
) -> None:
    """A role with no TEMP on its database: not ready on a full disk, saying why, and ready again
    once there is room, with no application needed to prove it."""
    owner, role, _ = narrow
    journal = role.journal()
    await journal.open()
    try:
        await journal.create(new("k0"), owner="w", lease_until=NOW + 60)
        await journal.ping()
        await _full(owner)
        with pytest.raises(JournalUnavailable, match="No space left on device"):
            await journal.create(new("k1", at=NOW + 1), owner="w", lease_until=NOW + 61)
        with pytest.raises(JournalUnavailable) as full:
            await journal.ping()
        await _room(owner)
        await journal.ping()  # the probe finds room
        _, created = await journal.create(new("k2", at=NOW + 2), owner="w", lease_until=NOW + 62)
    finally:
        await journal.close()
    assert "writes fail: could not extend file" in str(full.value)
    assert "SQLSTATE 53100" in str(full.value) and "cannot tell" not in str(full.value)
    assert created


async def test_a_probe_that_cannot_tell_gives_way_to_a_write(
    narrow: tuple[PgSchema, PgSchema, str],
) -> None:
    """A probe refused for another reason (here no INSERT on its table) does not wedge /readyz:
    the ping says why writes failed and why the probe cannot tell, and the next write that adds
    rows makes it ready; a refusal after that makes it not ready again."""
    owner, role, name = narrow
    await owner.execute(f"REVOKE INSERT ON room_probe FROM {name}")
    journal = role.journal()
    await journal.open()
    try:
        await _full(owner)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k1"), owner="w", lease_until=NOW + 61)
        with pytest.raises(JournalUnavailable) as full:
            await journal.ping()
        await _room(owner)
        with pytest.raises(JournalUnavailable) as blind:
            await journal.ping()
        _, created = await journal.create(new("k2", at=NOW + 2), owner="w", lease_until=NOW + 62)
        await journal.ping()  # the write proved room
        await _full(owner)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k3", at=NOW + 3), owner="w", lease_until=NOW + 63)
        with pytest.raises(JournalUnavailable, match="writes fail"):
            await journal.ping()
    finally:
        await journal.close()
    for said in (str(full.value), str(blind.value)):
        assert "writes fail: could not extend file" in said and "(SQLSTATE 53100)" in said
        assert "the probe for room cannot tell (permission denied" in said
        assert "SQLSTATE 42501" in said
    assert created


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema."""
    async with fresh_schema() as schema:
        yield schema


async def test_the_probe_writes_random_bytes(pg: PgSchema) -> None:
    """The probe's rows are random, a page each, and none like another: a compressing filesystem
    cannot store its pages in less room than they take."""
    journal = pg.journal()
    await journal.open()
    await journal.close()
    conn = await asyncpg.connect(DSN, server_settings={"search_path": pg.schema})
    try:
        async with conn.transaction():
            await conn.execute(FILL, 4)
            rows = [bytes(r["b"]) for r in await conn.fetch("SELECT b FROM room_probe")]
            pages = await conn.fetchval("SELECT pg_relation_size('room_probe') / 8192")
    finally:
        await conn.close()
    assert len(rows) == len(set(rows)) == pages == 4
    assert all(len(r) == 7168 for r in rows)
    assert len(zlib.compress(b"".join(rows), 9)) > 0.99 * 4 * 7168


async def test_the_probe_grows_the_file_past_freed_pages(pg: PgSchema) -> None:
    """Pages that vacuum freed (and did not cut off) are filled first: the probe goes on until
    the table's file has grown by its 64 pages, so those pages cannot pass for room."""
    journal = pg.journal()
    await journal.open()
    await journal.close()
    conn = await asyncpg.connect(DSN, server_settings={"search_path": pg.schema})
    try:
        await conn.execute(FILL, ROOM_PAGES)
        await conn.execute("DELETE FROM room_probe")
        await conn.execute("VACUUM (TRUNCATE false) room_probe")
        freed = await conn.fetchval("SELECT pg_relation_size('room_probe') / 8192")
        await probe(conn)
        after = await conn.fetchval("SELECT pg_relation_size('room_probe') / 8192")
        left = await conn.fetchval("SELECT count(*) FROM room_probe")
    finally:
        await conn.close()
    assert freed == ROOM_PAGES
    assert after >= freed + ROOM_PAGES
    assert left == 0  # rolled back


async def test_the_probe_gives_its_pages_back(pg: PgSchema) -> None:
    """A rollback keeps what a table grew: after the probe that finds room, vacuum cuts the
    probe's pages off again (here the role owns ``room_probe``), so probing costs no disk."""
    journal = pg.journal()
    await journal.open()
    try:
        await _full(pg)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k1"), owner="w", lease_until=NOW + 61)
        await _room(pg)
        await journal.ping()
    finally:
        await journal.close()
    assert await pg.fetchval("SELECT pg_relation_size('room_probe')") == 0
