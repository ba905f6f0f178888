"""What a rekey leaves in a PostgreSQL journal for the instances whose checkpoints it cannot rewrite.

Each instance keeps its own checkpoints file on its own machine (``replay/checkpoints.py``); a
rekey rewrites the chain (every live event's hash changes) and only the checkpoints file of the
machine it runs on. Every other instance's file still names the old chain, which the journal no
longer holds, and the instance would refuse the journal as rolled back at its next open.

So the rekey's transaction (``replay/rekey.py``, step 3) also records, for every event whose hash
it changes, ``(seq, old hash, new hash, time)`` signed with the journal's MAC key (the rekey keeps
it) in the table ``rekeyed``: a statement that the chain it verified held ``old`` at ``seq`` and
now holds ``new`` there. At open, an instance whose latest checkpoint names another event than the
journal holds carries every one of its checkpoints along those statements, through as many
rekeys as ran since, to the hash the journal holds at its seq (``follow``); when every one gets
there, its file is rewritten to them (atomically, each line signed again with its own time) and
the journal opens; when any does not, the file is left as it was and the journal is refused as
before. Every old hash is recorded, not a sample: a checkpoint can name any event (one is written
after a commit, at most every few seconds, and at close: ``Cadence``), and the old chain cannot be
recomputed later, its sealed values being gone. One row per event a rekey changes; a rekey is rare.

The threat is someone who can write the database but has no MAC key. They cannot make a
statement, so no instance follows a chain they rewrote, or one that a rekey made over a chain
that did not hold the instance's checkpointed event (a rekey of a rolled-back journal): the
statement must start from the very hash the instance recorded. Statements only lead from an old
chain to the new one: put back beside a copy of the database from before the rekey, they do not
let an instance whose checkpoints name the new chain (the rekey's, or one that has opened since)
accept the old one. They can delete statements: the instances that needed them then refuse the
journal, as for any damage. What no instance could tell before it cannot tell now: one that has
not opened since the rekey still accepts a copy holding the old chain up to its checkpoint, and
the data key retired by the rekey no longer opens that copy's values (``journal verify`` says so).
No time is compared: the hash is what binds, and instances' clocks may differ. A statement binds
to the MAC key, not to one database: a rekey of a copy that held the same chain makes statements
just as true, about the same events.

SQLite keeps one checkpoints file per journal, which every worker of ``serve --workers N``
shares and the rekey rewrites; the in-memory journal has none on disk: neither needs this.

``journal verify`` checks the statements too (``unsound``, read by ``replay/rekeyedadmin.py``):
each is signed, and each leads, through the later statements at its seq, to the hash the journal
holds there. A statement forged or altered, or one left leading nowhere (its event rewritten
since by no rekey, or a later statement deleted), is damage. A statement deleted whole cannot be
told from one pruned: only the instance that needed it notices, by refusing the journal.
Statements are needed until every instance whose checkpoints could name the old chain has opened
since; ``tongban journal prune-rekeyed`` deletes those of the rekeys before a time, oldest first
(every statement of one rekey has the same time), so those left still lead to the chain held.

Which instances have opened since, the database keeps (table ``opened``, not cleared when an
instance stops, unlike ``instances``): at every open that the journal does not refuse, the
instance's checkpoints file is known by its id (``Checkpoints.identity``, stable across restarts)
with the latest rekey whose statements the journal held before the open followed them
(``rekey_at``, read first: a rekey committed meanwhile counts as not followed). Its checkpoints
name the chain after that rekey. The rekey's own time is compared, never an instance's clock.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from federation.domain.errors import JournalUnavailable
from replay import rekey
from replay.checkpoints import Checkpoint, Checkpoints, rolled_back
from replay.rekey import Keyed
from replay.seal import Seal

TAG = b"tongban/rekeyed"
# A row already there for (seq, old) is no rekey's: an event's hash never comes back, and the
# rekey verified that the chain holds ``old`` now. Made up in the way, it gives way.
RECORD = """
INSERT INTO rekeyed (seq, old, new, at, mac)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::float8[], $5::bytea[])
ON CONFLICT (seq, old) DO UPDATE SET new = excluded.new, at = excluded.at, mac = excluded.mac"""
HELD = "SELECT seq, hash FROM events WHERE seq = ANY($1::bigint[])"
STATEMENTS = "SELECT seq, old, new, at, mac FROM rekeyed WHERE seq = ANY($1::bigint[])"

# The latest rekey whose statements the journal holds; what an instance records at open.
LATEST = "SELECT max(at) FROM rekeyed"
WRITABLE = "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"
# Never back: two processes of one instance (``serve --workers``) open in any order.
OPENED = """
INSERT INTO opened (id, host, checkpoints, opened_at, rekey_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, checkpoints = excluded.checkpoints,
    opened_at = greatest(opened.opened_at, excluded.opened_at),
    rekey_at = greatest(opened.rekey_at, excluded.rekey_at)"""

# One statement: seq, old hash, new hash, time of the rekey, MAC.
Statement: TypeAlias = tuple[int, bytes, bytes, float, bytes]
# What the journal holds at some seqs: the hash of each event, and the statements about it.
Held: TypeAlias = tuple[dict[int, bytes], list[Statement]]
End: TypeAlias = Awaitable[tuple[int, bytes | None]]
Run: TypeAlias = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


def _parts(seq: int, old: bytes, new: bytes, at: float) -> tuple[bytes, ...]:
    return struct.pack(">q", seq), old, new, repr(float(at)).encode()


def statements(
    events: Sequence[Sequence[Any]], updates: Sequence[Sequence[Any]], seal: Seal, at: float
) -> list[Statement]:
    """A rekey's statements: for each event (rows as ``replay.rekey.resealed_chain`` reads them)
    whose hash its update (new data, new hash, state, seq) changes, signed with ``seal``."""
    old = {int(row[0]): bytes(row[5]) for row in events}
    out: list[Statement] = []
    for _, new, _, seq in updates:
        before = old[int(seq)]
        if before != bytes(new):
            mac = seal.sign(TAG, _parts(int(seq), before, bytes(new), at)) or b""
            out.append((int(seq), before, bytes(new), at, mac))
    return out


async def record(conn: Any, made: Sequence[Statement]) -> None:
    """Store a rekey's statements, in its transaction."""
    if made:
        await conn.execute(RECORD, *(list(col) for col in zip(*made, strict=True)))


async def held(conn: Any, seqs: Sequence[int]) -> Held:
    """The hash the journal holds at each of ``seqs`` (those it has), and the statements there."""
    hashes = {int(s): bytes(h) for s, h in await conn.fetch(HELD, list(seqs))}
    found = await conn.fetch(STATEMENTS, list(seqs))
    return hashes, [(int(s), bytes(o), bytes(n), float(a), bytes(m)) for s, o, n, a, m in found]


def signed(seal: Seal, made: Statement) -> bool:
    """Whether ``made`` is signed with this journal's MAC key."""
    seq, old, new, at, mac = made
    expected = seal.sign(TAG, _parts(seq, old, new, at))
    return expected is not None and hmac.compare_digest(expected, mac)


def followed(
    points: Sequence[Checkpoint], hashes: Mapping[int, bytes], made: Sequence[Statement], seal: Seal
) -> list[Checkpoint] | None:
    """Each of ``points`` carried along the signed statements to the hash the journal holds at its
    seq (``hashes``); None when any cannot be (no event there, or no signed way to it)."""
    steps: dict[tuple[int, bytes], bytes] = {}
    for statement in made:
        if signed(seal, statement):
            steps[(statement[0], statement[1])] = statement[2]
    out: list[Checkpoint] = []
    for point in points:
        target, head = hashes.get(point.seq), point.head
        for _ in range(len(steps)):  # each rekey at most once: no cycle can hold it
            if head == target:
                break
            head = steps.get((point.seq, head), b"")
        if target is None or head != target:
            return None
        out.append(point if point.head == head else replace(point, head=head))
    return out


# Why verify does not accept a statement (``Unsound.why``).
UNSIGNED = "unsigned"  # its MAC is not the journal's: forged or altered
NO_EVENT = "no event"  # the journal holds no event at its seq
NOWHERE = "nowhere"  # it leads neither to the hash held there nor to a later statement


@dataclass(frozen=True, kw_only=True)
class Unsound:
    """A statement verify does not accept: at event ``seq``, made by the rekey of time ``at``."""

    seq: int
    at: float
    why: str  # UNSIGNED, NO_EVENT or NOWHERE


def unsound(held: bytes | None, made: Sequence[Statement], seal: Seal) -> Unsound | None:
    """The first of the statements at one seq (``made``) that verify does not accept, the journal
    holding ``held`` as that event's hash (None: no event there); None when all hold."""
    ordered = sorted(made, key=lambda statement: statement[3])
    forged = next((statement for statement in ordered if not signed(seal, statement)), None)
    if forged is not None:
        return Unsound(seq=forged[0], at=forged[3], why=UNSIGNED)
    if ordered and held is None:
        return Unsound(seq=ordered[0][0], at=ordered[0][3], why=NO_EVENT)
    steps = {old: new for _, old, new, _, _ in ordered}
    for seq, _, new, at, _ in ordered:
        head = new
        for _ in range(len(steps)):  # each later rekey at most once
            if head == held:
                break
            head = steps.get(head, b"")
        if head != held:
            return Unsound(seq=seq, at=at, why=NOWHERE)
    return None


async def checked_end(journal: Keyed, run: Run, ends: Callable[[Any, int], End]) -> str | None:
    """At open: an interrupted rekey settled (``rekey.settle_interrupted``), the checkpoints
    carried past the rekeys run since (``follow``), then why the journal contradicts the latest
    one (``replay.checkpoints.rolled_back``; None: it does not). ``run`` runs a query on a
    connection; ``ends(conn, seq)``: the last event's seq and the hash of event ``seq``."""

    async def end_at(seq: int) -> tuple[int, bytes | None]:
        found: tuple[int, bytes | None] = await run(lambda conn: ends(conn, seq))
        return found

    latest: float | None = await run(lambda conn: conn.fetchval(LATEST))
    await rekey.settle_interrupted(journal, end_at)
    await follow(journal.checkpoints, lambda seqs: run(lambda conn: held(conn, seqs)))
    point = await asyncio.to_thread(journal.checkpoints.latest)
    problem = None if point is None else rolled_back(point, *await end_at(point.seq))
    if problem is None:
        await opened(journal.checkpoints, latest, run)
    return problem


async def opened(checkpoints: Checkpoints, latest: float | None, run: Run) -> None:
    """That the instance of ``checkpoints`` (a file of its own, with keys) opened the journal,
    its checkpoints following every rekey up to the one of time ``latest`` (None: none held);
    nothing on a journal open read-only (a standby), where no rekey runs either."""
    if checkpoints.path is None or not checkpoints.seal.keyed:
        return
    ident = await asyncio.to_thread(checkpoints.identity)
    if ident is None:
        return  # no file beside the checkpoints: they cannot be written either, verify says so
    row = (ident, socket.gethostname(), str(checkpoints.path), time.time(), latest)

    async def op(conn: Any) -> None:
        if await conn.fetchval(WRITABLE):
            await conn.execute(OPENED, *row)

    await run(op)


async def follow(
    checkpoints: Checkpoints, read: Callable[[Sequence[int]], Awaitable[Held]]
) -> bool:
    """At open, after an interrupted rekey is settled: when the latest checkpoint names another
    event than the journal holds (``read`` tells what it holds), every checkpoint carried along
    the rekeys' statements and the file rewritten to them, if every one can be (see the module
    docstring). Whether the file was rewritten."""
    latest = await asyncio.to_thread(checkpoints.latest)
    if latest is None or not checkpoints.seal.keyed:
        return False
    hashes, _ = await read([latest.seq])
    if hashes.get(latest.seq, latest.head) == latest.head:
        return False  # it holds the event, or has none there: the end check says which
    points, problem = await asyncio.to_thread(checkpoints.read)
    if problem is not None or any(p.pending for p in points):
        return False  # verify names what is wrong with the file
    hashes, made = await read(sorted({p.seq for p in points}))
    carried = followed(points, hashes, made, checkpoints.seal)
    if carried is None:
        return False
    try:
        await asyncio.to_thread(checkpoints.rewrite, carried)
    except OSError as exc:
        raise JournalUnavailable(
            f"cannot follow the rekey of this journal: writing its checkpoints file "
            f"{checkpoints.path}: {exc.strerror}"
        ) from exc
    return True
