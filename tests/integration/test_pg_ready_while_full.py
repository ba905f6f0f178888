"""A PostgreSQL journal whose server has no room for its writes (SQLSTATE 53100 disk_full: "could
not extend file …: No space left on device") is not ready: its ping's read still answered, so
/readyz said ready while every application was refused 503 journal-unavailable. Now the ping says
why writes fail until a probe finds room again. A presence beat or a lease renewal (updates in
place, no new page) still succeeds on a full disk and does not make it ready.

The server's full disk is simulated in the test's own schema, through the real driver and the real
error path: triggers on the journal's ``events`` table and on the probe's ``room_probe`` raise
SQLSTATE 53100 (other schemas are untouched), and "room again" drops them.
``test_a_real_full_tablespace`` does it for real where it can (root, a server on this machine): a
tablespace on a 4 MB tmpfs, then the tmpfs grown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from federation.domain.errors import JournalUnavailable
from replay import pgroom
from replay.instances import Instance
from tests.conftest import HK_APPLICATION
from tests.integration.pg import DSN, PgSchema, fresh_schema
from tests.integration.test_journal_contract import NOW, new

FULL = "could not extend file: No space left on device"
HERE = Instance(id="h:1", host="h", pid=1, config_version="v", started_at=NOW, seen_at=NOW)


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema (dropped afterwards, with the triggers it holds)."""
    async with fresh_schema() as schema:
        yield schema


@pytest.fixture(autouse=True)
def probe_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ping probes: here room comes back between two pings far sooner than
    ``PROBE_EVERY`` (the interval is tested in test_room_probe_shared.py)."""
    monkeypatch.setattr(pgroom, "PROBE_EVERY", 0.0)


async def _full(pg: PgSchema, code: str = "53100") -> None:
    """From now on this schema's journal is refused new space: inserts into ``events`` and into
    ``room_probe`` (the probe's) raise SQLSTATE ``code``, as the server does on a full disk."""
    await pg.execute(
        f"""CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{FULL}' USING ERRCODE = '{code}'; END $$"""
    )
    for table in ("events", "room_probe"):
        await pg.execute(
            f"CREATE TRIGGER full_disk BEFORE INSERT ON {table} EXECUTE FUNCTION full_disk()"
        )


async def _room(pg: PgSchema) -> None:
    """The disk has room again."""
    await pg.execute("DROP FUNCTION full_disk() CASCADE")


async def test_the_ping_says_writes_fail_until_a_probe_finds_room(pg: PgSchema) -> None:
    """Not ready from the refused write, through a presence beat and a lease renewal that
    succeed, until the server has room again: then ready with no application, and one is taken."""
    journal = pg.journal()
    await journal.open()
    try:
        held, _ = await journal.create(new("k0"), owner="w", lease_until=NOW + 60)
        await journal.announce(HERE)
        await journal.ping()  # ready
        await _full(pg)
        with pytest.raises(JournalUnavailable, match="No space left on device"):
            await journal.create(new("k1", at=NOW + 1), owner="w", lease_until=NOW + 61)
        with pytest.raises(JournalUnavailable, match=r"writes fail: .*\(SQLSTATE 53100\)"):
            await journal.ping()
        await journal.announce(replace(HERE, seen_at=NOW + 15))  # succeeds: in place
        renewed = await journal.renew(owner="w", ids=[held.id], lease_until=NOW + 90)
        with pytest.raises(JournalUnavailable, match="writes fail"):
            await journal.ping()
        with pytest.raises(JournalUnavailable, match="No space left on device"):
            await journal.create(new("k2", at=NOW + 2), owner="w", lease_until=NOW + 62)
        await _room(pg)
        await journal.ping()  # the probe finds room: ready before any application
        _, created = await journal.create(new("k3", at=NOW + 3), owner="w", lease_until=NOW + 63)
        await journal.ping()
    finally:
        await journal.close()
    assert (renewed, created) == (1, True)


async def test_the_reason_holds_no_dsn_password(pg: PgSchema) -> None:
    """What the ping says names the journal with its DSN's password masked."""
    secret = secrets.token_hex(8)
    dsn = DSN.replace("postgres@", f"postgres:{secret}@", 1)
    journal = PgSchema(dsn, pg.schema, pg.keydir).journal()
    await journal.open()
    try:
        await _full(pg)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k1"), owner="w", lease_until=NOW + 60)
        with pytest.raises(JournalUnavailable, match="writes fail") as refused:
            await journal.ping()
    finally:
        await journal.close()
    assert secret not in str(refused.value)


@pytest.mark.parametrize("code", ["53200", "53300", "23514"])
async def test_other_refusals_leave_it_ready(pg: PgSchema, code: str) -> None:
    """A write refused for another reason (out of memory, too many connections, a check) is that
    write's failure: the ping stays ready (it fails by itself when it cannot connect)."""
    journal = pg.journal()
    await journal.open()
    try:
        await _full(pg, code)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k1"), owner="w", lease_until=NOW + 60)
        await journal.ping()
    finally:
        await journal.close()


async def _apply(http: aiohttp.ClientSession, key: str) -> int:
    body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
    application = {**body, "application": HK_APPLICATION}
    async with http.post("/v1/exchanges", json=application, headers={"Idempotency-Key": key}) as r:
        return r.status


async def _ready(http: aiohttp.ClientSession) -> tuple[int, str]:
    async with http.get("/readyz") as r:
        body = await r.json(content_type=None)
        return r.status, str(body.get("detail", body.get("status")))


async def test_readyz_over_http(pg: PgSchema, make_config: Any, broker_at: Any) -> None:
    """/readyz: ready and 202; on a full disk 503 and 503 not-ready, still 503 after a presence
    beat and a lease renewal that succeed; once there is room, ready and the next one 202."""
    async with (
        broker_at(make_config(), journal_obj=pg.journal()) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        before = await _ready(http), await _apply(http, "k0")
        hour = time.time() + 3600  # held by another owner: the broker's worker leaves it
        held, _ = await broker.journal.create(new("held"), owner="w", lease_until=hour)
        await _full(pg)
        refused = await _apply(http, "k1")
        full = await _ready(http)
        await broker.presence.announce()  # what the presence loop does every 15 s
        renewed = await broker.journal.renew(owner="w", ids=[held.id], lease_until=hour + 60)
        after_beat, next_one = await _ready(http), await _apply(http, "k2")
        await _room(pg)
        again, accepted = await _ready(http), await _apply(http, "k3")
    assert before == ((200, "ready"), 202)
    assert (refused, full[0], renewed) == (503, 503, 1)
    assert "writes fail" in full[1] and "SQLSTATE 53100" in full[1]
    assert (after_beat[0], next_one) == (503, 503)
    assert (again, accepted) == ((200, "ready"), 202)


# -- the real thing: a tablespace on a small tmpfs ---------------------------------------------


def _sized(where: Path, size: str, *, remount: bool = False) -> bool:
    """Mount a tmpfs of ``size`` at ``where`` (or resize the one there); whether it worked."""
    options = f"remount,size={size}" if remount else f"size={size},mode=700"
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def _unmounted(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, check=False)
    where.rmdir()


@contextlib.asynccontextmanager
async def _tmpfs_tablespace() -> AsyncIterator[tuple[str, Path]]:
    """A tablespace on a 4 MB tmpfs (its name and mount point); skipped where this process
    cannot mount one or the server cannot use it (not root, a server on another machine).

    Grown before it is left, so the server can write back what it holds for it; unmounted only
    once the tablespace is dropped: a server whose tablespace vanishes stops at its checkpoint.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="tongban-full-"))
    if not await asyncio.to_thread(_sized, where, "4m"):
        await asyncio.to_thread(where.rmdir)
        pytest.skip("cannot mount a tmpfs here")
    name = f"tongban_full_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(DSN)
    created = dropped = False
    try:
        shutil.chown(where, "postgres", "postgres")
        await admin.execute(f"CREATE TABLESPACE {name} LOCATION '{where}'")
        created = True
    except (LookupError, OSError, asyncpg.PostgresError):
        pass  # no postgres user here, or a server that cannot see this directory
    try:
        if created:
            try:
                yield name, where
            finally:
                await asyncio.to_thread(_sized, where, "64m", remount=True)
                await admin.execute(f"DROP TABLESPACE {name}")
                dropped = True
        else:
            dropped = True
    finally:
        await admin.close()
        if dropped:
            await asyncio.to_thread(_unmounted, where)
    if not created:
        pytest.skip("the server cannot use a tablespace on this machine's tmpfs")


async def _fill(pg: PgSchema, tablespace: str, journal: Any) -> JournalUnavailable:
    """Fill the tablespace (most of it quickly, with a table of the test's own), then create
    applications until one is refused; the refusal."""
    await pg.execute(f"CREATE TABLE filler (b text) TABLESPACE {tablespace}")
    await pg.execute("ALTER TABLE filler ALTER COLUMN b SET STORAGE PLAIN")
    with contextlib.suppress(asyncpg.DiskFullError):
        for _ in range(1000):  # 128 KiB at a time: PLAIN, a row a page
            await pg.execute(
                "INSERT INTO filler SELECT repeat('f', 5000) FROM generate_series(1, 16)"
            )
    body = "x" * 4000
    for i in range(5000):
        try:
            await journal.create(
                new(f"f{i}", body=body, at=NOW + i), owner="w", lease_until=NOW + i + 60
            )
        except JournalUnavailable as exc:
            return exc
    raise AssertionError("the 4 MB tablespace took every write")


async def test_a_real_full_tablespace() -> None:
    """The journal's tables on a 4 MB tmpfs: applications refused "could not extend file":
    not ready, still not ready after a presence beat and a lease renewal, ready once the tmpfs is
    grown (no application needed), and the next application taken."""
    async with _tmpfs_tablespace() as (tablespace, where), fresh_schema() as pg:
        joiner = "&" if "?" in DSN else "?"
        at = PgSchema(f"{DSN}{joiner}default_tablespace={tablespace}", pg.schema, pg.keydir)
        journal = at.journal()
        await journal.open()
        try:
            held, _ = await journal.create(new("held"), owner="w", lease_until=NOW + 60)
            await journal.announce(HERE)
            await journal.ping()
            refused = await _fill(pg, tablespace, journal)
            with pytest.raises(JournalUnavailable, match="writes fail: could not extend file"):
                await journal.ping()
            await journal.announce(replace(HERE, seen_at=NOW + 15))
            renewed = await journal.renew(owner="w", ids=[held.id], lease_until=NOW + 90)
            with pytest.raises(JournalUnavailable, match="writes fail"):
                await journal.ping()
            assert await asyncio.to_thread(_sized, where, "64m", remount=True)
            await journal.ping()
            _, created = await journal.create(new("after"), owner="w", lease_until=NOW + 99)
        finally:
            await asyncio.to_thread(
                _sized, where, "64m", remount=True
            )  # whatever happened: the server writes back
            await journal.close()
    assert "No space left on device" in str(refused)
    assert (renewed, created) == (1, True)
