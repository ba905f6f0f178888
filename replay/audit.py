"""What ``tongban journal verify`` proves, written once for every backend.

A backend feeds an ``Audit`` what it stores, in this order: the events in seq order (in chunks if
it likes), the chain head row, the ``exchanges`` rows and the ``refusals`` rows. The checkpoints
are read when the Audit is made, before the backend takes its snapshot, so that a checkpoint can
never be newer than the snapshot it is checked against. The first problem found is the answer:

1. the chain: every event's hash links to the one before it (``replay.chain.verify``), a
   tombstone keeps no content, every sealed value opens (AES-GCM authenticates it);
2. the head: signed with the journal's MAC key and naming the last event (``head_problem``):
   events cut from the end, appended, or a chain recomputed after an edit, all fail here;
3. the checkpoints: each line signed, and the event at each checkpointed seq has the hash the
   checkpoint recorded (a rollback to an older signed head, then a cut, fails here); of a file an
   interrupted rekey left, those of the chain the journal holds (``replay.checkpoints.standing``);
4. what readers are shown: each exchange row equals the digest the chain recorded at its latest
   write; every tombstone is accounted for by a later ``~archived`` record of its exchange, which
   says how many of its events were archived (all of them are counted, so a tombstone cannot
   borrow another's record), and an archived exchange has no row; a tombstone of no exchange (an
   audit entry, a refusal's record) is never an archive; a row has events; each refusal the
   chain recorded is in the table as recorded, and none was added outside it.

Leniency for a journal of the first releases, which archived without ``~archived`` records and
refused without ``~refusal`` ones, comes from the journal's stored-format mark
(``replay/formats.py``), never from where the first digest is (whoever can write the database can
tombstone events, which moves it): only a journal no marking release ever wrote (no mark) may hold
tombstones with no record, before its first event with a row digest, and refusal rows with no
record. A mark lowered to claim that claims nothing while an event with a full row digest (which
only generation 3 writes) is left. Nor does it without the chain's own word: the mark is a plain
column, so the journal must also hold a live exchange event that only a first release can have
written (its data in the first releases' form, ``~tb1.``, ``~tb2.`` or clear, or its row digest
of their 32 bytes), and leniency reaches only tombstones before the last such event. Live events
are in the signed chain: nobody without the key can add or alter one, so clearing the mark gains
nothing in a journal a later release started, and only the first releases' part of an upgraded
one. Once a release has written to such a journal, the mark is raised and that leniency is gone:
the transaction that raised it from none recorded in the chain what the first releases had left
unrecorded (``~inherited``, ``replay/inherited.py``: how many tombstones and refusal rows, and the
last of each), and verify accepts exactly those, however the mark is set later. A second such
record, or one after anything only a marking release writes, is named. A row whose last write was
by a release before the full row digest is checked against the
fewer columns that release recorded (``replay.rows.shown_matches``) until its next write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from federation.domain.models import iso
from replay import formats, inherited, sets
from replay.chain import GENESIS, Break, Indexed, head_problem, named, verify
from replay.checkpoints import Checkpoints, standing
from replay.rows import (
    ARCHIVED,
    REFUSAL,
    REFUSAL_COLUMNS,
    SHOWN_2,
    SHOWN_BYTES,
    Row,
    opened,
    refusal_digest,
    shown_matches,
)
from replay.seal import PREFIX, ContextMissing, Seal, SealError

# What a row digest covers, as a verify failure names it: one an earlier release recorded (False),
# or the full one (True, ``replay.rows.SHOWN``).
_COVERED = {
    False: "state, receipt, attempts, lifecycle, errors",
    True: "partner, service, source, key, direction, request hash, state, receipt, attempts, "
    "lifecycle, errors, times",
}


class Audit:
    """Checks a journal's stored rows, fed in order by its backend; ``result()`` is the answer."""

    def __init__(self, seal: Seal, checkpoints: Checkpoints) -> None:
        self.seal = seal
        self._file = checkpoints
        self.points, self._unreadable = checkpoints.read()
        self.broken: Break | None = None
        self.count = 0
        self.prev = GENESIS
        self.last: tuple[int, bytes] | None = None
        self.states: dict[str, tuple[int, bytes]] = {}  # exchange → (seq, digest of its row)
        self.live: set[str] = set()  # exchanges with events still in the journal
        self.tombstoned: dict[str, list[int]] = {}  # exchange → seqs of all its tombstones
        # exchange → (seq of its latest ~archived record, events they say were archived; None:
        # a record written before this release, sealed with a context verify does not hold)
        self.marked: dict[str, tuple[int, int | None]] = {}
        self.refused: dict[int, tuple[int, bytes]] = {}  # refusal seq → (event seq, digest)
        self.first_digest: int | None = None  # seq of the first event carrying a row digest
        self.first_full: int | None = None  # seq of the first one carrying a full row digest
        # seq of the last live exchange event only a first release can have written
        self.first_era: int | None = None
        self.generation: int | None = formats.WRITES  # the stored-format mark (None: no mark)
        # the chain's record of what the first releases left unrecorded (replay/inherited.py):
        # (its seq, its counts), how many tombstones and refusal rows it has accounted for
        self.inherited: tuple[int, dict[str, int]] | None = None
        self.inherited_used = [0, 0]
        self._marking = False  # an event only a marking release writes was seen
        self._wanted = {p.seq for p in self.points}
        self._found: dict[int, bytes] = {}

    @property
    def failed(self) -> bool:
        """Whether a problem was found (the rest is then not looked at)."""
        return self.broken is not None

    def _fail(
        self, reason: str, *, where: str = "", seq: int = 0, xid: str = "", kind: str = ""
    ) -> None:
        if self.broken is None:
            self.broken = Break(seq=seq, exchange_id=xid, kind=kind, reason=reason, where=where)

    # -- 1. the chain -----------------------------------------------------------------------------

    def events(self, rows: Sequence[Sequence[Any]]) -> None:
        """The next events, in seq order: (seq, exchange_id, at, kind, data, hash, archived, state)."""
        if self.broken is not None or not rows:
            return
        start_seq = 0 if self.last is None else self.last[0]
        count, broken, self.prev = verify(iter(rows), start=self.prev, start_seq=start_seq)
        self.count += count
        if broken is not None:
            self.broken = broken
            return
        for row in rows:
            self._event(row)
            if self.failed:
                return
        self.last = (int(rows[-1][0]), self.prev)

    def _event(self, row: Sequence[Any]) -> None:
        seq, xid, at, kind, data, digest, archived, state = row
        seq, xid, kind = int(seq), str(xid), str(kind)
        if seq in self._wanted:
            self._found[seq] = bytes(digest)
        if archived:
            if not xid:
                self._fail(
                    "is marked archived, but it belongs to no exchange and tongban archives only "
                    "exchanges: it was erased outside tongban",
                    seq=seq,
                    kind=kind,
                )
            self.tombstoned.setdefault(xid, []).append(seq)
            self._marking = self._marking or kind in inherited.MARKING
            return
        if xid and kind != ARCHIVED and _first_releases(bytes(data), state):
            self.first_era = seq
        try:
            plain = opened(self.seal, xid, kind, float(at), bytes(data), f"event {seq}")
        except ContextMissing:
            # its tag checked out; its received event was read too long ago to be remembered (or
            # is archived: an ~archived record sealed so says nothing verify can read)
            plain = None
        except SealError as exc:
            self._fail(f"its sealed data does not open: {exc}", seq=seq, xid=xid, kind=kind)
            return
        if state is not None and xid and kind != ARCHIVED:
            self._digest(seq, bytes(state))
        if kind == ARCHIVED:
            self._marker(seq, xid, kind, plain)
        elif not xid and kind == inherited.INHERITED:
            self._inheritance(seq, kind, plain)
        elif not xid and kind == REFUSAL:
            number = int(orjson.loads(plain or b"{}")["refusal"])
            self.refused[number] = (seq, b"" if state is None else bytes(state))
        elif xid:
            self.live.add(xid)
            if state is not None:
                self.states[xid] = (seq, bytes(state))
        self._marking = self._marking or kind in inherited.MARKING

    def _inheritance(self, seq: int, kind: str, plain: bytes | None) -> None:
        """The ``~inherited`` record: written once, as a release first marked a journal the first
        releases wrote (``replay/inherited.py``), before anything only a marking release writes."""
        if self.inherited is not None:
            self._fail(
                "records again what the first releases left unrecorded, which the chain recorded "
                f"at event {self.inherited[0]}: only that first record counts",
                seq=seq,
                kind=kind,
            )
            return
        if self._marking or seq == 1:
            self._fail(
                "records what the first releases left unrecorded, but the journal was not as they "
                "left it then: "
                + (
                    "it held nothing"
                    if seq == 1
                    else "a marking release wrote "
                    "before it (an audit entry, a refusal's or an archive's record)"
                ),
                seq=seq,
                kind=kind,
            )
            return
        counts = inherited.counts(plain, seq)
        if counts is None:
            self._fail("does not say what the first releases left unrecorded", seq=seq, kind=kind)
            return
        self.inherited = (seq, counts)

    def _digest(self, seq: int, state: bytes) -> None:
        if self.first_digest is None:
            self.first_digest = seq
        if self.first_full is None and len(state) == 1 + SHOWN_BYTES and state[:1] == SHOWN_2:
            self.first_full = seq

    def _marker(self, seq: int, xid: str, kind: str, plain: bytes | None) -> None:
        """An ``~archived`` record: how many of the exchange's events it says were archived."""
        if plain is None:  # sealed with its exchange's context, which verify does not hold
            self.marked[xid] = (seq, None)
            return
        try:
            count = orjson.loads(plain)["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            self._fail("does not say how many events were archived", seq=seq, xid=xid, kind=kind)
            return
        before = self.marked.get(xid, (0, 0))[1]
        self.marked[xid] = (seq, None if before is None else before + count)

    def stored_format(self, mark: Any) -> None:
        """The journal's stored-format mark (``chain_head.format``; None: none), after ``head``.
        A backend without one (the in-memory journal) leaves this release's."""
        if self.broken is not None:
            return
        if mark is not None and (not isinstance(mark, int) or isinstance(mark, bool)):
            self._fail("its stored-format mark is not a whole number", where="the chain head")
        self.generation = mark

    @property
    def first_release(self) -> bool:
        """Whether the journal is as the first releases left it (no stored-format mark): it may
        hold tombstones and refusal rows from before the chain recorded them. An empty chain
        is none (a journal of the first releases has events), nor one holding a full row digest,
        which only a marking release writes (the mark was lowered: it claims nothing then), nor
        one whose live events hold none a first release can have written (``_first_releases``:
        the mark, a plain column, was cleared in a journal a later release started)."""
        if self.first_era is None:  # nothing in the chain a first release wrote
            return False
        return self.generation is None and self.last is not None and self.first_full is None

    # -- 2. the head, 3. the checkpoints ----------------------------------------------------------

    def head(self, row: Indexed | None) -> None:
        """The chain head row (seq, hash, mac), after every event."""
        if self.broken is not None:
            return
        problem = head_problem(self.seal, row, self.last)
        if problem is not None:
            self._fail(problem, where="the chain head")
            return
        self._checkpoints(row is not None and row[2] is not None)

    def _checkpoints(self, signed: bool) -> None:
        end = 0 if self.last is None else self.last[0]
        if self._unreadable is not None:
            self._fail(self._unreadable, where="checkpoints")
            return
        if signed and not self.points and self._file.path is not None:
            self._fail(
                "missing: the chain head is signed, so checkpoints were written; without them a "
                "rollback of the database cannot be told",
                where=f"checkpoints file {self._file.path}",
            )
            return
        points = standing(self.points, self._found.get)  # an interrupted rekey's: one chain's
        for point in sorted(points, key=lambda p: -p.seq):  # the latest named first
            where = f"the checkpoint of {iso(point.at)}"
            if point.seq > end:
                self._fail(
                    f"records event {point.seq}, but the journal ends at event {end}: events "
                    f"{end + 1}–{point.seq} were removed (or the database was rolled back)",
                    where=where,
                )
                return
            if point.seq and self._found.get(point.seq) != point.head:
                self._fail(
                    f"records another event {point.seq} than the journal holds: the chain was "
                    "rewritten since",
                    where=where,
                )
                return

    # -- 4. what readers are shown ----------------------------------------------------------------

    def exchanges(self, rows: Iterable[Row]) -> None:
        """Every ``exchanges`` row (at least the SHOWN columns)."""
        if self.broken is not None:
            return
        unseen = set(self.live)
        for row in rows:
            xid = str(row["id"])
            where = f"exchange {named(xid)}"
            if xid in self.tombstoned:
                self._fail(
                    "is archived (its events are tombstones) but its row is still here", where=where
                )
            elif xid not in self.live:
                self._fail(
                    "has no events in the chain: its row was added outside tongban", where=where
                )
            elif xid in self.states and not shown_matches(row, self.states[xid][1]):
                seq, recorded = self.states[xid]
                self._fail(
                    f"its row ({_COVERED[recorded[:1] == SHOWN_2]}) is not what the chain "
                    f"recorded at event {seq}: the row was edited",
                    where=where,
                )
            if self.failed:
                return
            unseen.discard(xid)
        for xid in sorted(unseen):
            self._fail(
                "its events are in the chain but its row is gone, and it was never archived: "
                "deleted outside tongban",
                where=f"exchange {named(xid)}",
            )
            return
        for xid in sorted(set(self.tombstoned) | set(self.marked)):
            self._archived(xid, self.tombstoned.get(xid, []))
            if self.failed:
                return
        self._inherited_total(0, "tombstones", "events marked archived with no record of it")

    def _inherited_total(self, which: int, name: str, what: str) -> None:
        """All the first releases' unrecorded tombstones (or refusal rows) are there, and no more:
        as many as the ``~inherited`` record says."""
        if self.inherited is None or self.failed:
            return
        seq, counts = self.inherited
        held, recorded = self.inherited_used[which], counts[name]
        if held != recorded:
            self._fail(
                f"records that the first releases left {recorded} {what}, up to "
                f"{'event' if which == 0 else 'refusal'} {counts[name[:-1]]}; the journal holds "
                f"{held}: " + ("added" if held > recorded else "removed") + " outside tongban",
                seq=seq,
                kind=inherited.INHERITED,
            )

    def _archived(self, xid: str, seqs: list[int]) -> None:
        """The tombstones of one exchange against the chain's ``~archived`` records of it."""
        where = f"exchange {named(xid)}"
        first = self.first_digest
        if xid not in self.marked and self.inherited is not None:
            if seqs[-1] <= self.inherited[1]["tombstone"]:
                self.inherited_used[0] += len(seqs)  # the first releases': counted in total
                return
            self._fail(
                f"event {seqs[0]} is marked archived, but the chain has no record of archiving "
                "the exchange, and it is not among what the first releases left (recorded at "
                f"event {self.inherited[0]}): erased outside tongban",
                where=where,
            )
            return
        if xid not in self.marked:
            era = self.first_era
            if self.first_release and first is not None and seqs[-1] < min(first, era or 0):
                return  # archived by a first release, which kept no record
            self._fail(
                f"event {seqs[0]} is marked archived, but the chain has no record of archiving "
                "the exchange: erased outside tongban (or marked to hide an edit)",
                where=where,
            )
            return
        at, count = self.marked[xid]
        if seqs and seqs[-1] > at:
            self._fail(
                f"event {seqs[-1]} is marked archived, but the chain recorded archiving the "
                f"exchange at event {at}, before it: erased outside tongban",
                where=where,
            )
        elif count is not None and count != len(seqs):
            self._fail(
                f"{len(seqs)} of its events are marked archived, but the chain recorded archiving "
                f"{count} at event {at}: events were erased outside tongban, or tombstones moved",
                where=where,
            )

    def refusals(self, rows: Iterable[Row]) -> None:
        """Every ``refusals`` row (seq and REFUSAL_COLUMNS)."""
        if self.broken is not None:
            return
        missing = dict(self.refused)
        oldest = min(self.refused, default=None)
        # Rows the first releases wrote have no record; a journal any later release wrote has
        # recorded every refusal since (a refusal raises the stored-format mark).
        earlier = self.first_release
        last = None if self.inherited is None else self.inherited[1]["refusal"]
        for row in rows:
            seq = int(row["seq"])
            where = f"refusal {seq}"
            recorded = missing.pop(seq, None)
            if recorded is not None:
                if refusal_digest([row[c] for c in REFUSAL_COLUMNS]) != recorded[1]:
                    self._fail(
                        f"is not what the chain recorded at event {recorded[0]}: it was edited",
                        where=where,
                    )
            elif last is not None:
                if seq > last:
                    self._fail("is not in the chain: it was added outside tongban", where=where)
                self.inherited_used[1] += 1  # the first releases': counted in total
            elif not earlier or (oldest is not None and seq > oldest):
                self._fail("is not in the chain: it was added outside tongban", where=where)
            if self.failed:
                return
        for seq, (event, _) in sorted(missing.items()):
            self._fail(
                f"was recorded in the chain at event {event} but is gone from the refusals "
                "table: deleted",
                where=f"refusal {seq}",
            )
            return
        self._inherited_total(1, "refusals", "refusal rows with no record of them")

    def mapping_sets(self, rows: Iterable[Any]) -> None:
        """Every ``mapping_sets`` row (digest, versions): each must hash to its digest, which the
        chain holds wherever a row or an event refers to it."""
        if self.broken is None and (problem := sets.altered(rows)) is not None:
            self._fail(problem, where="mapping sets")

    def result(self) -> tuple[int, Break | None]:
        """The number of events checked and the first problem (None: everything holds)."""
        return self.count, self.broken


FIRST_DIGEST = inherited.FIRST_DIGEST  # the bytes of a row digest as the first releases recorded it


def _first_releases(data: bytes, state: Any) -> bool:
    """Whether a live exchange event can only have been written by a first release (no mark):
    its data not sealed as every marking release seals (``~tb3.``; the first releases wrote
    ``~tb1.``, ``~tb2.`` or, unkeyed, clear), or its row digest of their 32 bytes. Both are in the
    chain's hash: a database edit cannot make a later release's event look so."""
    return not data.startswith(PREFIX) or (state is not None and len(bytes(state)) == FIRST_DIGEST)
