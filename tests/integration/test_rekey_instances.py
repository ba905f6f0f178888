"""A rekey through one instance of a PostgreSQL journal does not lock the others out.

Each instance keeps its own checkpoints file, and a rekey rewrites only its own: before, every
other instance refused the journal at its next start as rolled back ("records another event …
than the journal holds"), with no way out. The rekey now leaves signed statements of the old
chain's hashes in the database (replay/rekeyed.py), which carry another instance's checkpoints
to the new chain at its next open. What rollback detection caught, it still catches: a copy of
the database from before the rekey put back is refused by every instance, and a chain rewritten
by no rekey (a statement not signed with the journal's MAC key) is not followed.

PostgreSQL only: a SQLite journal has one checkpoints file, shared by its workers and rewritten by
the rekey; the in-memory journal keeps its checkpoints with it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from federation.domain.errors import JournalDamaged
from replay.checkpoints import Checkpoint, Checkpoints
from replay.keys import read_file
from replay.postgres import PostgresJournal
from replay.seal import Seal
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_journal_sealing import application, write
from tests.integration.test_rekey_crash import copy_of, put_back


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh schema (fails rather than skips when CI is set)."""
    async with fresh_schema() as schema:
        yield schema


def instance(pg: PgSchema, name: str) -> PostgresJournal:
    """The journal as instance ``name`` opens it: the shared key file, its own checkpoints."""
    assert pg.keydir is not None
    return pg.journal(keys=replace(pg.keys, checkpoints=pg.keydir / f"{name}.checkpoints"))


async def wrote(pg: PgSchema, name: str, n: int, start: int) -> dict[str, int]:
    """Instance ``name`` opens, writes ``n`` exchanges and closes: their ids → numbers."""
    j = instance(pg, name)
    await j.open()
    try:
        return {xid: start + i for i, xid in enumerate(await write(j, n, start=start))}
    finally:
        await j.close()


async def rekeyed(pg: PgSchema, name: str) -> None:
    """A rekey through instance ``name``, as `tongban journal rekey` runs it (brokers stopped)."""
    j = instance(pg, name)
    await j.open()
    try:
        await j.rekey()
    finally:
        await j.close()


def points(j: PostgresJournal) -> list[Checkpoint]:
    """Every checkpoint in ``j``'s file, each signed with the journal's MAC key."""
    assert j.keys.file is not None
    found, problem = Checkpoints(j.keys.checkpoints, Seal(read_file(j.keys.file))).read()
    assert problem is None, problem
    return found


async def two_instances(pg: PgSchema) -> dict[str, int]:
    """Instances a and b both wrote, so both have checkpoints; the exchanges written."""
    return {**await wrote(pg, "a", 2, 0), **await wrote(pg, "b", 2, 10)}


async def refused(j: PostgresJournal, why: str) -> None:
    """``j`` opens but takes no writes, saying ``why``."""
    await j.open()
    try:
        with pytest.raises(JournalDamaged, match=why):
            await j.ping()
    finally:
        await j.close()


@pytest.mark.parametrize("rekeys", [1, 2])
async def test_another_instance_opens_after_a_rekey(pg: PgSchema, rekeys: int) -> None:
    """After one rekey, or two, through instance a: b opens, verifies, reads and writes, and its
    checkpoints file names the chain the journal holds (before: refused as rolled back)."""
    ids = await two_instances(pg)
    b = instance(pg, "b")
    before = points(b)
    for _ in range(rekeys):
        await rekeyed(pg, "a")
    await b.open()
    try:
        await b.ping()
        assert (await b.verify())[1] is None
        for xid, n in ids.items():
            got = await b.get(xid)
            assert got is not None and got.application == application(n)
        ids.update({xid: 20 for xid in await write(b, 1, start=20)})
    finally:
        await b.close()
    after = points(b)
    assert [(p.seq, p.at) for p in after[: len(before)]] == [(p.seq, p.at) for p in before]
    for p in after:
        held = await pg.fetchval("SELECT hash FROM events WHERE seq = ?", p.seq)
        assert p.head == bytes(held)
    assert after[len(before) - 1].head != before[-1].head  # the chain was rewritten
    for name in ("a", "b"):
        j = instance(pg, name)
        await j.open()
        try:
            await j.ping()
            assert (await j.verify())[1] is None
        finally:
            await j.close()


async def test_a_copy_from_before_the_rekey_is_refused_by_every_instance(pg: PgSchema) -> None:
    """The database put back as it was before the rekey, the rekey's statements left in it: a
    (which rekeyed) and b (which opened since) both refuse it; b's file is left as it was."""
    await two_instances(pg)
    copy = await copy_of(pg)
    await rekeyed(pg, "a")
    b = instance(pg, "b")
    await b.open()  # carries b's checkpoints to the new chain; writes nothing
    await b.close()
    await put_back(pg, copy)
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") > 0
    kept = b.checkpoints.path.read_bytes()  # type: ignore[union-attr]
    await refused(instance(pg, "a"), "rolled back")
    await refused(instance(pg, "b"), "records another event .* than the journal holds")
    assert b.checkpoints.path.read_bytes() == kept  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["forged", "altered"])
async def test_a_chain_no_rekey_made_is_not_followed(pg: PgSchema, how: str) -> None:
    """Someone who can write the database but has no MAC key rewrites the event b checkpointed
    last, with a statement leading to it (made up, or a real rekey's altered): b refuses."""
    await two_instances(pg)
    b = instance(pg, "b")
    last = points(b)[-1]
    if how == "altered":
        await rekeyed(pg, "a")
    other = os.urandom(32)
    if how == "forged":
        await pg.execute(
            "INSERT INTO rekeyed (seq, old, new, at, mac) VALUES (?, ?, ?, ?, ?)",
            last.seq,
            last.head,
            other,
            last.at + 1,
            os.urandom(32),
        )
    else:
        await pg.execute("UPDATE rekeyed SET new = ? WHERE seq = ?", other, last.seq)
    await pg.execute("UPDATE events SET hash = ? WHERE seq = ?", other, last.seq)
    kept = b.checkpoints.path.read_bytes()  # type: ignore[union-attr]
    await refused(b, f"records another event {last.seq} than the journal holds")
    assert b.checkpoints.path.read_bytes() == kept  # type: ignore[union-attr]


async def test_a_rekey_of_a_rolled_back_journal_is_not_followed(pg: PgSchema) -> None:
    """The journal rolled back to before b's last writes, written on by a, then rekeyed by a:
    the rekey's statements start from a chain that never held b's events, so b refuses."""
    await wrote(pg, "a", 2, 0)
    copy = await copy_of(pg)
    await wrote(pg, "b", 2, 10)
    b = instance(pg, "b")
    last = points(b)[-1]
    await put_back(pg, copy)
    kept = [row[0] for row in copy["exchanges"]]
    await pg.execute("DELETE FROM exchanges WHERE NOT id = ANY(?)", kept)
    await pg.execute(
        "DELETE FROM refusals WHERE NOT seq = ANY(?)", [r[0] for r in copy["refusals"]]
    )
    await wrote(pg, "a", 3, 30)  # the chain goes on past b's last event, another way
    await rekeyed(pg, "a")
    assert await pg.fetchval("SELECT count(*) FROM rekeyed WHERE seq = ?", last.seq) == 1
    await refused(b, f"records another event {last.seq} than the journal holds")
