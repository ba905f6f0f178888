"""A rekey cut short at any point leaves a journal that opens, verifies and takes writes, with
nothing lost; a copy of the database from before a rekey is still refused as rolled back.

`tongban journal rekey` changes three things that no transaction holds together: the key file,
the database and the checkpoints file kept outside it (replay/rekey.py lists the steps). Each
crash is a real one: the rekey runs in a child process that ends itself with ``os._exit`` at the
chosen point (no ``finally``, no close, no last checkpoint), and the journal is then opened anew,
as a restarted broker would. Before, a crash between the reseal's commit and the checkpoints'
rewrite left checkpoints of the old chain, and the journal was refused as rolled back for good.

On SQLite and PostgreSQL. The in-memory journal has no such window: a crash ends the journal with
the process, so nothing is left to reopen. Its checkpoints live in a list, staged and settled
like the file; the one test of it below interrupts its rekey with an exception instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import JournalDamaged
from replay import rekey
from replay.keys import KeyPlace
from replay.memory import InMemoryJournal
from replay.postgres import PostgresJournal
from replay.sqlite import SQLiteJournal
from tests.integration.pg import SQLiteFile, Store
from tests.integration.test_journal_sealing import application, write

ROOT = Path(__file__).resolve().parents[2]
CRASHED = 9  # the child's exit status when it crashed where it was told

# Where the child crashes, in rekey's order: between steps 1 and 2, 2 and 3, inside 3 (the new
# chain's checkpoint staged, the transaction not committed), 3 and 4, 4 and 5.
VERIFIED = "verified, no key added"
NEW_KEY = "new key added, nothing resealed"
STAGED = "checkpoint staged, reseal not committed"
COMMITTED = "reseal committed, checkpoints not rewritten"
SETTLED = "checkpoints rewritten, old key kept"
POINTS = [VERIFIED, NEW_KEY, STAGED, COMMITTED, SETTLED]


def described(where: Store) -> str:
    """How the child process finds ``where`` (JSON)."""
    if isinstance(where, SQLiteFile):
        return json.dumps({"sqlite": str(where.path)})
    assert where.keydir is not None
    return json.dumps({"dsn": where.dsn, "schema": where.schema, "keydir": str(where.keydir)})


def journal_of(doc: dict[str, str]) -> SQLiteJournal | PostgresJournal:
    """The journal the child opens (the one ``described`` names)."""
    if "sqlite" in doc:
        return SQLiteJournal(Path(doc["sqlite"]))
    keydir = Path(doc["keydir"])
    keys = KeyPlace(file=keydir / "journal.keys", checkpoints=keydir / "journal.checkpoints")
    return PostgresJournal(doc["dsn"], schema=doc["schema"], keys=keys, pool_size=2)


def crash_at(point: str, j: Any) -> None:
    """Make ``j``'s rekey end the process at ``point`` (one of POINTS)."""

    def crash() -> None:
        print(point, flush=True)
        os._exit(CRASHED)

    saved = rekey._save
    saves: list[object] = []

    def save(place: Any, ring: Any) -> None:
        saves.append(ring)
        if (point, len(saves)) in ((VERIFIED, 1), (SETTLED, 2)):
            crash()
        saved(place, ring)
        if (point, len(saves)) == (NEW_KEY, 1):
            crash()

    reseal = j.reseal

    async def crashing_reseal(new: Any, staged: Any) -> Any:
        def stage(seq: int, head: bytes) -> None:
            staged(seq, head)
            if point == STAGED:
                crash()  # in the transaction, before its commit

        done = await reseal(new, stage)
        if point == COMMITTED:
            crash()
        return done

    rekey._save = save
    j.reseal = crashing_reseal


def child() -> None:
    """In the child process: open the journal named by argv[1], rekey it, crash at argv[2]."""

    async def run() -> None:
        j = journal_of(json.loads(sys.argv[1]))
        await j.open()
        crash_at(sys.argv[2], j)
        await j.rekey()
        print("not crashed", flush=True)

    asyncio.run(run())


async def rekey_crashing(where: Store, point: str) -> str:
    """Rekey ``where``'s journal in a child process that crashes at ``point``; what it printed."""
    code = "from tests.integration.test_rekey_crash import child; child()"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        described(where),
        point,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == CRASHED, (proc.returncode, out, err.decode()[-2000:])
    return out.decode().strip()


async def written(where: Store) -> list[str]:
    """A closed journal with two exchanges and a refused body; their ids."""
    j = where.journal()
    await j.open()
    try:
        return await write(j)
    finally:
        await j.close()


async def reopened(where: Store, ids: dict[str, int], start: int) -> str:
    """Open ``where`` as a restarted broker: it pings, verifies, reads every exchange whole (id
    → its application's number) and takes a write; its checkpoints are left with none pending,
    unless a rekey staged one and never committed (passed over, left for the next rekey: an open
    cannot tell it from a rekey still running elsewhere). The exchange written."""
    j = where.journal()
    await j.open()
    try:
        await j.ping()
        _, broken = await j.verify()
        assert broken is None, broken
        for xid, n in ids.items():
            got = await j.get(xid)
            assert got is not None and got.application == application(n)
        (late,) = await write(j, 1, start=start)
    finally:
        await j.close()
    return late


@pytest.mark.parametrize("point", POINTS)
async def test_a_rekey_crashed_at_each_step_leaves_a_journal_that_opens(
    where: Store, point: str
) -> None:
    """After the crash: the journal opens, verifies, reads as before and takes a write; opened
    again it verifies with that write, and a rekey run again completes."""
    ids = {xid: n for n, xid in enumerate(await written(where))}
    assert await rekey_crashing(where, point) == point
    late = await reopened(where, ids, start=10)
    j = where.journal()
    await j.open()
    try:
        assert (await j.verify())[1] is None
        got = await j.get(late)
        assert got is not None and got.application == application(10)
        await j.rekey()  # the way on is the ordinary one
        assert (await j.verify())[1] is None
        assert j.checkpoints.pending() is None  # its settle drops any line a rekey left
    finally:
        await j.close()
    await reopened(where, {**ids, late: 10}, start=20)


REWRITTEN = {  # what a rekey rewrites, per table: the row's key, then the columns
    "events": ("seq", "data", "hash", "state"),
    "refusals": ("seq", "body"),
    "exchanges": ("id", "last_error"),
}


async def copy_of(where: Store) -> dict[str, list[tuple[Any, ...]]]:
    """What a copy of the database taken now holds of what a rekey rewrites."""
    copy = {t: await where.fetch(f"SELECT {', '.join(c)} FROM {t}") for t, c in REWRITTEN.items()}
    copy["chain_head"] = await where.fetch("SELECT seq, hash, mac FROM chain_head")
    return copy


async def put_back(where: Store, copy: dict[str, list[tuple[Any, ...]]]) -> None:
    """The copy put back over the closed journal, as a restore of it would (events written
    since removed)."""
    ((end, head, mac),) = copy["chain_head"]
    await where.execute("DELETE FROM events WHERE seq > ?", end)
    await where.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ?", end, head, mac)
    for table, (key, *columns) in REWRITTEN.items():
        sets = ", ".join(f"{c} = ?" for c in columns)
        for first, *rest in copy[table]:
            await where.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", *rest, first)


@pytest.mark.parametrize("point", [None, COMMITTED])
async def test_a_copy_from_before_the_rekey_is_still_refused(
    where: Store, point: str | None
) -> None:
    """The database put back as it was before a rekey (completed, or crashed after its commit and
    opened since): refused at open as rolled back, and verify names the checkpoint."""
    ids = {xid: n for n, xid in enumerate(await written(where))}
    copy = await copy_of(where)
    if point is None:
        j = where.journal()
        await j.open()
        await j.rekey()
        await j.close()
    else:
        await rekey_crashing(where, point)
        await reopened(where, ids, start=10)  # settles the checkpoints, writes on
    await put_back(where, copy)
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalDamaged, match="rolled back"):
            await j.ping()
        _, broken = await j.verify()
    finally:
        await j.close()
    assert broken is not None
    if point is not None:  # the old key still held: the old chain opens, its checkpoints do not
        assert broken.where.startswith("the checkpoint of"), broken
        assert "records event 11, but the journal ends at event 7" in str(broken)
    else:  # the old key dropped: the old chain's values no longer open
        assert "has no such key" in str(broken)


class Interrupted(Exception):
    """Where a rekey of the in-memory journal is stopped."""


@pytest.mark.parametrize("committed", [False, True])
async def test_memory_a_rekey_interrupted_after_staging_settles_at_open(committed: bool) -> None:
    """The in-memory journal's checkpoints staged and settled as the file is: a rekey stopped
    after staging (its reseal not applied, or applied) is settled by the next open, and the
    journal verifies and takes writes."""
    j = InMemoryJournal()
    await j.open()
    ids = await write(j)
    await j.close()
    reseal = j.reseal

    async def interrupted(new: Any, staged: Any) -> Any:
        def stage(seq: int, head: bytes) -> None:
            staged(seq, head)
            if not committed:
                raise Interrupted  # before the reseal is applied

        await reseal(new, stage)
        raise Interrupted  # applied, before the checkpoints are settled

    j.reseal = interrupted  # type: ignore[method-assign]
    await j.open()
    with pytest.raises(Interrupted):
        await j.rekey()
    assert j.checkpoints.pending() is not None
    await j.close()
    del j.reseal
    await j.open()
    try:
        # settled when the rekey committed; left, and passed over, when it did not
        assert (j.checkpoints.pending() is None) is committed
        await j.ping()
        assert (await j.verify())[1] is None
        for n, xid in enumerate(ids):
            got = await j.get(xid)
            assert got is not None and got.application == application(n)
        await write(j, 1, start=10)
        assert (await j.verify())[1] is None
    finally:
        await j.close()
