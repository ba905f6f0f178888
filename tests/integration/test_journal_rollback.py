"""A journal that its own checkpoints show to be rolled back takes no more writes: the broker does
not start on it (``ping`` fails, as readiness and the start check it), every write is refused as
for a broken chain head, and what reads it (verify, show, search) still works. The check at open
reads the checkpoints file's last lines and two rows, never the chain. On SQLite (a real file put
back from an online backup, as an operator would), PostgreSQL and the in-memory journal.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from federation.domain.errors import JournalDamaged
from replay.checkpoints import TAIL, Checkpoint, Checkpoints, rolled_back
from replay.keys import Keyring
from replay.memory import InMemoryJournal
from replay.seal import Seal
from replay.sqlite import SQLiteJournal
from tests.integration.pg import SQLiteFile, Store
from tests.integration.test_journal_tamper import NOW, filled, new, verify, write

ROLLED = "records event {}, but the journal ends at event {}: it was rolled back"


async def refused(j: object, n: int) -> str:
    """What the open journal ``j`` says when asked whether it can be written, then to write."""
    with pytest.raises(JournalDamaged) as pinged:
        await j.ping()  # type: ignore[attr-defined]
    with pytest.raises(JournalDamaged) as created:
        await j.create(new(n), owner="w", lease_until=NOW + 100)  # type: ignore[attr-defined]
    assert str(created.value) == str(pinged.value)
    assert "docs/operations.md" in str(pinged.value) and "tongban journal verify" in str(
        pinged.value
    )
    return str(pinged.value)


async def test_sqlite_file_put_back_from_a_backup_is_refused(tmp_path: Path) -> None:
    """The operator's steps: `.backup` a journal, submit one more application, put the backup back
    keeping the current keys and checkpoints. It opens for reading, but ping and every write
    are refused with the rollback named, and nothing is appended; verify says the same."""
    path = tmp_path / "j.sqlite"
    where = SQLiteFile(path)
    ids = await filled(where, 3, refusals=0)  # 9 events, checkpointed at close
    with (
        contextlib.closing(sqlite3.connect(path)) as live,
        contextlib.closing(sqlite3.connect(tmp_path / "old.sqlite")) as old,
    ):
        live.backup(old)
    await filled(where, 1, start=3, refusals=0)  # events 10-12, checkpointed at close
    for extra in ("-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    os.replace(tmp_path / "old.sqlite", path)
    points = path.with_name(path.name + ".checkpoints")
    kept = points.read_bytes()

    j = SQLiteJournal(path)
    await j.open()
    try:
        problem = await refused(j, 9)
        assert problem.startswith(f"journal {path}: its checkpoint of ")
        assert ROLLED.format(12, 9) in problem
        assert await j.get(ids[0]) is not None  # reading still works
        _, broken = await j.verify()
        assert "records event 12, but the journal ends at event 9" in str(broken)
    finally:
        await j.close()
    assert await where.fetchval("SELECT max(seq) FROM events") == 9  # nothing appended
    assert points.read_bytes() == kept  # and no checkpoint of another end beside the old ones


async def test_a_rolled_back_store_is_refused(where: Store) -> None:
    """The tail cut and an older signed head put back (a rollback on either store): refused at
    open, nothing written; verify still runs and names it."""
    await filled(where, 2, refusals=0)
    old = (await where.fetch("SELECT seq, hash, mac FROM chain_head"))[0]
    await filled(where, 2, start=2, refusals=0)
    await where.execute("DELETE FROM events WHERE seq > ?", old[0])
    await where.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ?", *old)
    j = where.journal()
    await j.open()
    try:
        assert ROLLED.format(12, 6) in await refused(j, 9)
    finally:
        await j.close()
    assert await where.fetchval("SELECT max(seq) FROM events") == 6
    assert "records event 12, but the journal ends at event 6" in str(await verify(where))


async def test_rolled_back_and_written_to_since_is_refused(where: Store) -> None:
    """A rollback that a writer without this check then extended past the checkpoint: the event
    at the checkpoint's seq is another one."""
    await filled(where, 2, refusals=0)
    old = (await where.fetch("SELECT seq, hash, mac FROM chain_head"))[0]
    await filled(where, 2, start=2, refusals=0)  # to event 12, checkpointed
    await where.execute("DELETE FROM events WHERE seq > ?", old[0])
    await where.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ?", *old)
    points = where.keys.checkpoints
    assert points is not None
    kept = points.read_bytes()
    points.unlink()  # what a broker without the check saw: nothing to compare with
    await filled(where, 3, start=10, refusals=0)  # events 7-15, other than those checkpointed
    points.write_bytes(kept)
    j = where.journal()
    await j.open()
    try:
        assert "records another event 12 than the journal holds" in await refused(j, 20)
    finally:
        await j.close()


async def test_a_consistent_journal_opens_as_before(where: Store) -> None:
    """Checkpoints that the journal reaches: it opens, pings and takes writes as before, also
    after many checkpoints (the file read from its end only)."""
    ids = await filled(where, 2, refusals=0)
    for n in range(3):
        await filled(where, 1, start=10 + n, refusals=0)
    j = where.journal()
    await j.open()
    try:
        await j.ping()
        _, created = await j.create(new(30), owner="w", lease_until=NOW + 100)
        assert created and await j.get(ids[0]) is not None
    finally:
        await j.close()
    assert await verify(where) is None


async def test_memory_rolled_back_is_refused() -> None:
    """The in-memory journal keeps its checkpoints in memory: cut behind an older signed head
    while closed, it is refused when opened again."""
    j = InMemoryJournal()
    await j.open()
    await write(j, 0, 2, 0)
    await j.close()
    old_head, kept = j.head, len(j._chain)
    await j.open()
    await write(j, 2, 2, 0)
    await j.close()
    del j._chain[kept:]
    j.head = old_head
    await j.open()
    assert ROLLED.format(12, 6) in await refused(j, 9)

    fresh = InMemoryJournal()
    await fresh.open()
    await write(fresh, 0, 2, 0)
    await fresh.close()
    await fresh.open()
    await fresh.ping()  # consistent: opens as before
    await write(fresh, 2, 1, 0)


def test_latest_reads_only_the_end_of_a_long_file(tmp_path: Path) -> None:
    """The highest signed seq among the file's last lines; a cut first line, an unsigned or
    garbled line are passed over (verify names them), a missing file is no checkpoint."""
    seal = Seal(Keyring.generate())
    points = Checkpoints(tmp_path / "j.checkpoints", seal)
    assert points.latest() is None
    for seq in range(1, 400):  # far more than TAIL bytes
        points.write(seq, bytes(32), NOW + seq)
    assert (tmp_path / "j.checkpoints").stat().st_size > TAIL
    with (tmp_path / "j.checkpoints").open("ab") as f:
        f.write(b'{"seq": 9999, "head": "00", "at": 1, "mac": "00"}\nnot json\n')
    latest = points.latest()
    assert latest is not None and latest.seq == 399


def test_rolled_back_compares_the_end_and_the_hash() -> None:
    """No checkpoint, or one the journal reaches with that hash: nothing to say."""
    point = Checkpoint(seq=5, head=b"h" * 32, at=NOW)
    assert rolled_back(None, 0, None) is None
    assert rolled_back(point, 5, b"h" * 32) is None
    assert rolled_back(point, 9, b"h" * 32) is None
    assert "ends at event 4" in str(rolled_back(point, 4, None))
    assert "records another event 5" in str(rolled_back(point, 9, b"x" * 32))
