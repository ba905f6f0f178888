"""The SQLite backup runbook of docs/operations.md: the online backup API while the journal is being
written, the key files beside it, and a restore that verifies and reads."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from federation.domain.errors import FederationError
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange
from replay.sqlite import SQLiteJournal
from tests.integration.pg import fresh_schema

NOW = 1_790_000_000.0
SIDE_FILES = (".keys", ".key", ".checkpoints")  # the keyring, the search key, the checkpoints


def new(i: int) -> NewExchange:
    return NewExchange(
        id=new_id(NOW + i),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=f"backup-{i}",
        request_hash=f"sha256:{i}",
        application={"applicant": {"name": "陳大文", "hk_id_card": "A123456(3)"}, "n": i},
        received_at=NOW + i,
    )


def online_backup(journal: Path, dest: Path) -> None:
    """As the runbook does it: first the files beside the journal (a checkpoint copied after the
    database could name a head the copy does not reach, and verify would call it a cut), then
    SQLite's backup API (a consistent copy while the broker writes)."""
    for suffix in SIDE_FILES:
        side = journal.with_name(journal.name + suffix)
        if side.exists():
            shutil.copy2(side, dest.with_name(dest.name + suffix))
    src = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    out = sqlite3.connect(dest)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()


async def test_an_online_backup_restores_to_a_journal_that_verifies(tmp_path: Path) -> None:
    """Taken while the journal is open and being written: the copy opens with its keys, verifies,
    and holds every exchange committed before the backup, payloads readable."""
    live = tmp_path / "live" / "journal.sqlite"
    live.parent.mkdir()
    j = SQLiteJournal(live, clock=lambda: NOW)
    await j.open()
    try:
        ids = [(await j.create(new(i), owner="w", lease_until=NOW))[0].id for i in range(20)]
        restored = tmp_path / "restored" / "journal.sqlite"
        restored.parent.mkdir()
        online_backup(live, restored)
        await j.create(new(99), owner="w", lease_until=NOW)  # after the backup: not in it
    finally:
        await j.close()
    copy = SQLiteJournal(restored, clock=lambda: NOW)
    await copy.open()
    try:
        count, broken = await copy.verify()
        first = await copy.get(ids[0])
        later = await copy.get(new_id(NOW + 99))
    finally:
        await copy.close()
    assert broken is None and count >= 20
    assert first is not None and first.application["applicant"]["name"] == "陳大文"
    assert later is None


async def test_a_restore_without_its_keyring_refuses_to_open(tmp_path: Path) -> None:
    """The database alone is not a backup: without journal.sqlite.keys the copy refuses to open
    (it never makes a new key that would open nothing), and says which file is missing."""
    live = tmp_path / "journal.sqlite"
    j = SQLiteJournal(live, clock=lambda: NOW)
    await j.open()
    try:
        await j.create(new(1), owner="w", lease_until=NOW)
        dest = tmp_path / "bare" / "journal.sqlite"
        dest.parent.mkdir()
        online_backup(live, dest)
    finally:
        await j.close()
    dest.with_name(dest.name + ".keys").unlink()
    copy = SQLiteJournal(dest, clock=lambda: NOW)
    with pytest.raises(FederationError, match=r"journal\.sqlite\.keys is missing"):
        await copy.open()


async def run(*command: str) -> None:
    """A PostgreSQL client tool, to completion (off the event loop)."""
    await asyncio.to_thread(subprocess.run, command, check=True, timeout=120)


async def test_a_postgresql_dump_restores_to_a_journal_that_verifies(tmp_path: Path) -> None:
    """The PostgreSQL runbook: checkpoints first, pg_dump of the schema, the schema lost,
    pg_restore, and a journal on it with the same key file verifies and reads."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump / pg_restore not installed")
    async with fresh_schema() as pg:
        j = pg.journal(clock=lambda: NOW)
        await j.open()
        try:
            ids = [(await j.create(new(i), owner="w", lease_until=NOW))[0].id for i in range(5)]
        finally:
            await j.close()
        assert pg.keys.checkpoints is not None
        saved = tmp_path / "journal.checkpoints"
        shutil.copy2(pg.keys.checkpoints, saved)
        dump = tmp_path / "tongban.dump"
        await run("pg_dump", "--format=custom", f"--schema={pg.schema}", f"--file={dump}", pg.dsn)
        await pg.execute(f'DROP SCHEMA "{pg.schema}" CASCADE')
        await run("pg_restore", f"--dbname={pg.dsn}", str(dump))  # the dump holds that schema
        shutil.copy2(saved, pg.keys.checkpoints)
        again = pg.journal(clock=lambda: NOW)
        await again.open()
        try:
            count, broken = await again.verify()
            first = await again.get(ids[0])
        finally:
            await again.close()
    assert broken is None and count >= 5
    assert first is not None and first.application["applicant"]["name"] == "陳大文"
