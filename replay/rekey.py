"""A journal's keys over its life: taken at open (``open_keys``), rotated by ``tongban journal rekey``.

Rekey: every payload sealed again under a new data key, the chain kept whole. Rows last written
by a release that recorded a digest of fewer of their columns get the full one (``resealed_chain``).

The order makes every crash recoverable: (1) the journal must verify, or rekey would sign what is
wrong; (2) the key file gains the new key, kept beside the old (written atomically); (3) one
transaction re-seals every event, refused body and partner's words in a row's last error still in
the journal (also those in clear, from before the journal had keys or sealed those words),
recomputes the chain over them, signs the new head and puts the new seal in force, so that no
later write is sealed under the old key, not even one prepared before it and written after (each
backend's ``reseal``; on PostgreSQL it also records, signed, the old chain's hash of every event
it changes, for the other instances' checkpoints: ``replay/rekeyed.py``); before it commits,
the checkpoint of the new chain is put first in the checkpoints file, marked pending, the old
checkpoints kept after it (``Checkpoints.stage``, atomically); (4) after the commit, the
checkpoints file keeps only the new chain's checkpoints (``Checkpoints.settle``); (5) the old
data keys are dropped from the key file.

A crash before (3) commits leaves everything under the old key (the new one is only unused);
after it, under the new key (the old one is only still held). A crash after (3) staged its
checkpoint and before (4) ended leaves the checkpoints file pending: the next open settles it by
the chain the journal holds at the pending checkpoint's event (``settle_interrupted``): for the new
chain (committed) the file keeps only its checkpoints; for the old (not committed, or a rekey still
running elsewhere) the pending line is left and passed over, so the journal opens and verifies
either way, and a copy of
the database from before the rekey is refused afterwards as any rollback is. The MAC key stays.

Archive files written before keep their own chain and their seals: keep the key file of their time
with them (``tongban journal verify --archive`` needs no key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import orjson

from federation.domain.errors import ConfigError, JournalError, JournalUnavailable, Problem
from replay import lasterror
from replay.chain import GENESIS, Break, link
from replay.checkpoints import Checkpoint, Checkpoints
from replay.keys import KeyPlace, Keyring, write_file
from replay.rows import REFUSAL, REFUSAL_COLUMNS, loads, refusal_digest
from replay.seal import Seal, event_aad, refusal_aad

# An event row as read for a rekey: seq, exchange_id, at, kind, data, hash, archived, state.
EventUpdate = tuple[bytes, bytes, bytes | None, int]  # new data, new hash, state, seq
# Told a reseal's new head (seq, hash) in its transaction, before it commits.
Staged: TypeAlias = Callable[[int, bytes], None]


class Keyed(Protocol):
    """A backend's keys: where they live, the seal in use, its checkpoints."""

    keys: KeyPlace
    seal: Seal
    checkpoints: Checkpoints

    def use(self, seal: Seal) -> None:
        """Seal and sign with ``seal`` from now on."""


async def open_keys(
    journal: Keyed,
    signed: bool,
    sign_first: Callable[[Seal], Awaitable[tuple[int, bytes] | None]],
    now: float,
) -> None:
    """At open: take the journal's keys (``KeyPlace.open_ring``); a journal that gets keys for the
    first time (``signed``: its head has a MAC already) has its head signed by ``sign_first`` and
    checkpointed. A head that lost its MAC while checkpoints exist is left for verify to report."""
    ring = await asyncio.to_thread(journal.keys.open_ring, signed=signed)
    journal.use(Seal(ring, where=journal.keys.describe()))
    if ring is not None and not signed and not journal.checkpoints.exists():
        point = await sign_first(journal.seal)
        if point is not None:
            await asyncio.to_thread(journal.checkpoints.write, *point, now)


class Rekeyable(Keyed, Protocol):
    """What a backend offers ``rotate``: its keys, and a re-sealing transaction."""

    async def verify(self) -> tuple[int, Break | None]: ...

    async def reseal(self, new: Seal, staged: Staged) -> tuple[int, int, bytes]:
        """Re-seal everything under ``new`` in one transaction; (values, last seq, head).
        ``staged(seq, head)`` is called in it before it commits (it may block)."""


def resealed_refusals(
    refusals: Sequence[Any], old: Seal, new: Seal
) -> tuple[list[tuple[bytes, int]], dict[int, bytes]]:
    """Each refusal row's body sealed under ``new`` ((body, seq) updates) and its new digest."""
    updates: list[tuple[bytes, int]] = []
    digests: dict[int, bytes] = {}
    for row in refusals:
        aad = refusal_aad(row["at"], row["status"], row["body_bytes"])
        body = new.seal(old.open(bytes(row["body"]), aad, f"the body of refusal {row['seq']}"), aad)
        updates.append((body, int(row["seq"])))
        values = [body if c == "body" else row[c] for c in REFUSAL_COLUMNS]
        digests[int(row["seq"])] = refusal_digest(values)
    return updates, digests


def resealed_errors(found: Sequence[Any], old: Seal, new: Seal) -> list[tuple[bytes, str]]:
    """The ``last_error`` of each (id, last_error) row sealed under ``new``, as (column, id)
    updates: the partner's words sealed again, or for the first time in a row written before
    they were (``replay/lasterror.py``); rows with nothing to seal are left out."""
    updates: list[tuple[bytes, str]] = []
    for xid, stored in found:
        column = lasterror.resealed(old, new, str(xid), loads(stored))
        if column is not None:
            updates.append((column, str(xid)))
    return updates


def resealed_chain(
    events: Sequence[Sequence[Any]],
    old: Seal,
    new: Seal,
    refusals: Mapping[int, bytes],
    shown: Mapping[str, bytes] | None = None,
) -> tuple[list[EventUpdate], int, bytes]:
    """Every live event's data sealed under ``new`` and the chain recomputed over it (tombstones
    keep their hash, as verify reads them); the updates, the last seq and the new head.

    ``shown`` (exchange id → ``replay.rows.shown_digest`` of its row now, read in the same
    transaction) replaces the digest on each exchange's last event that carries one: a row last
    written by a release that recorded fewer columns gets the full digest (the journal verified
    first). An event that carried no digest gets none (verify tells those journals apart by it)."""
    shown = {} if shown is None else shown
    latest = _latest_digests(events, shown)
    prev, last, out = GENESIS, 0, []
    for seq, xid, at, kind, data, stored, archived, state in events:
        last = int(seq)
        if archived:
            prev = bytes(stored)
            continue
        aad = event_aad(str(xid), str(kind), float(at))
        digest = None if state is None else bytes(state)
        if kind == REFUSAL and not xid:
            plain = old.open(bytes(data), aad, f"event {seq}")
            digest = refusals.get(int(orjson.loads(plain)["refusal"]), digest)
        elif latest.get(str(xid)) == last:
            digest = shown[str(xid)]
        sealed = old.reseal(bytes(data), aad, new, f"event {seq}")
        prev = link(prev, last, str(xid), float(at), str(kind), sealed, digest)
        out.append((sealed, prev, digest, last))
    return out, last, prev


def _latest_digests(events: Sequence[Sequence[Any]], shown: Mapping[str, bytes]) -> dict[str, int]:
    """Per exchange of ``shown``, the seq of its last live event carrying a row digest."""
    latest: dict[str, int] = {}
    for seq, xid, _, _, _, _, archived, state in events:
        if state is not None and not archived and str(xid) in shown:
            latest[str(xid)] = int(seq)
    return latest


def _save(place: KeyPlace, ring: Keyring) -> None:
    if place.file is not None:
        write_file(place.file, ring)


async def rotate(journal: Rekeyable) -> int:
    """Rekey ``journal`` (see the module docstring); the number of values sealed again."""
    place, ring = journal.keys, journal.seal.ring
    if ring is None:
        raise ConfigError([Problem(message="the journal has no keys to rotate (it is unkeyed)")])
    if place.file is None and not place.ephemeral:
        raise ConfigError(
            [
                Problem(
                    message=f"the journal's keys come from {place.describe()}: rekey rotates a key "
                    "file; put the keyring in one and name it with TONGBAN_JOURNAL_KEY_FILE"
                )
            ]
        )
    _, broken = await journal.verify()
    if broken is not None:
        raise JournalError(
            f"the journal does not verify ({broken}): rekey would sign what is wrong; look first"
        )
    both = ring.rotated()
    await asyncio.to_thread(_save, place, both)
    staged: list[Checkpoint] = []

    def stage(seq: int, head: bytes) -> None:
        staged.append(journal.checkpoints.stage(seq, head, time.time()))

    count, _, _ = await journal.reseal(Seal(both, where=journal.seal.where), stage)
    final = Seal(both.only_current(), where=journal.seal.where)
    journal.use(final)
    await asyncio.to_thread(journal.checkpoints.settle, staged[-1], True)
    await asyncio.to_thread(_save, place, both.only_current())
    return count


async def settle_interrupted(
    journal: Keyed, end_at: Callable[[int], Awaitable[tuple[int, bytes | None]]]
) -> None:
    """At open, before the journal's end is checked: a checkpoints file a rekey left pending (a
    crash after step 3 staged its checkpoint, before step 4 ended) settled by the chain the
    journal holds at the pending checkpoint's event, read with ``end_at`` (``Checkpoints.settle``)."""
    point = await asyncio.to_thread(journal.checkpoints.pending)
    if point is None:
        return
    _, held = await end_at(point.seq)
    if held != point.head:
        # Not committed, or not yet: a rekey running now in another process may still commit
        # (an open while it stages reads the old chain), and settling the file its way would
        # lose the new chain's checkpoint before that rekey's own settle. The pending line is
        # passed over meanwhile (``latest``, ``standing``); a rekey's settle removes it.
        return
    try:
        await asyncio.to_thread(journal.checkpoints.settle, point, True)
    except OSError as exc:
        raise JournalUnavailable(
            f"cannot finish the rekey interrupted on this journal: writing its checkpoints file "
            f"{journal.checkpoints.path}: {exc.strerror}"
        ) from exc
