"""The journal's hash chain: every event carries a hash over its content and the previous hash.

``hash(n) = sha256(hash(n-1) ‖ seq ‖ exchange_id ‖ at ‖ kind ‖ data [‖ state])`` in ``seq`` order,
starting from 32 zero bytes; ``data`` is the stored (sealed) bytes, ``state`` the digest of what the
exchange's row shows after the write the event belongs to (``replay/rows.py``), on the last event
of each write. Flipping a byte, deleting a row or reordering rows breaks the chain at the first
event whose stored hash no longer matches; ``tongban journal verify`` names it.

The chain alone is unkeyed: anyone who can write the database can recompute it. What makes it
hold is the chain head (seq and hash of the last event) signed with the journal's MAC key in the
same transaction as every append (``replay/seal.py``), and the signed checkpoints kept outside the
database (``replay/checkpoints.py``); ``replay/audit.py`` checks all of it. Writers extend the
chain only from a head whose signature holds and that matches the last event (``head_problem``):
a journal whose end was cut or forged takes no more writes until someone looks.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from federation.domain.errors import JournalDamaged
from replay.seal import Seal

GENESIS = bytes(32)
# An event as a backend appends it: exchange_id, at, kind, stored data, state digest (or None).
EventRow = tuple[str, float, str, bytes, bytes | None]


class ChainBroken(JournalDamaged):
    """The chain head does not hold: the journal refuses to extend it (see ``head_problem``)."""


class HeadBroken(Exception):
    """Raised by ``Chain.append`` mid-transaction: not a FederationError, so that the writer
    rolls back the whole write that tried to append (see replay/dbthread.py) before it is
    translated to ChainBroken."""


def link(
    prev: bytes,
    seq: int,
    exchange_id: str,
    at: float,
    kind: str,
    data: bytes,
    state: bytes | None = None,
) -> bytes:
    """The hash of one event, chained to ``prev``."""
    h = hashlib.sha256(prev)
    h.update(struct.pack(">q", seq))
    h.update(exchange_id.encode())
    h.update(b"\0")
    h.update(repr(float(at)).encode())
    h.update(b"\0")
    h.update(kind.encode())
    h.update(b"\0")
    h.update(data)
    if state is not None:
        h.update(b"\0\x01")
        h.update(state)
    return h.digest()


class Indexed(Protocol):
    """A row read by position (a tuple, ``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, index: int, /) -> Any: ...


def head_problem(seal: Seal, head: Indexed | None, last: Indexed | None) -> str | None:
    """Why the chain may not be extended from ``head`` (seq, hash, mac), given the last event
    (seq, hash); None if it may."""
    last_seq, last_hash = (0, GENESIS) if last is None else (int(last[0]), bytes(last[1]))
    if head is None:
        return "the journal's chain_head row is missing"
    if (odd := _odd_head(head)) is not None:
        return f"the chain head row's {odd} (altered outside tongban)"
    seq, digest, mac = int(head[0]), bytes(head[1]), head[2]
    if not seal.keyed:
        if mac is not None:
            return "the journal's chain head is signed, but no journal key was given"
    elif mac is None:
        return "the chain head is not signed (every write signs it once the journal has keys)"
    elif not seal.head_signed(seq, digest, bytes(mac)):
        return (
            f"the chain head's signature does not verify with {seal.where}: "
            "a wrong key, or the head was altered"
        )
    if (seq, digest) != (last_seq, last_hash):
        return (
            f"the signed chain head records event {seq}, but the last event is {last_seq} "
            "(or has another hash): events were removed, added or rewritten outside tongban"
        )
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _blob(value: Any) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


def _odd_head(head: Indexed) -> str | None:
    """What in a chain head row (seq, hash, mac) is not of its column's type: a database (SQLite
    keeps any value in any column) edited by hand. Names the column, never the value."""
    if not _whole(head[0]):
        return "seq is not a whole number"
    if not _blob(head[1]) or len(bytes(head[1])) != len(GENESIS):
        return "hash is not 32 bytes"
    if head[2] is not None and not _blob(head[2]):
        return "mac is not bytes"
    return None


def odd_event(row: Sequence[Any]) -> str | None:
    """What in an event row (seq, exchange_id, at, kind, data, hash, archived, state) is not of
    its column's type, as ``_odd_head``; None when every column is."""
    seq, xid, at, kind, data, stored, archived, state = row
    for odd, name in (
        (not _whole(seq), "seq is not a whole number"),
        (not isinstance(xid, str), "exchange id is not text"),
        (not _number(at), "at is not a number"),
        (not isinstance(kind, str), "kind is not text"),
        (not _blob(data), "data is not bytes"),
        (stored is not None and not _blob(stored), "hash is not bytes"),
        (not isinstance(archived, int), "archived mark is not 0 or 1"),
        (state is not None and not _blob(state), "state is not bytes"),
    ):
        if odd:
            return f"its {name} (altered outside tongban)"
    return None


class Chain:
    """Appends events to the SQLite ``events`` table with their chain hashes, and signs the head.

    The head (last seq and hash) is read at the start of every write transaction, so other
    processes writing the same file (a CLI replay beside a running broker) keep one chain; the
    first append of a transaction checks it (``head_problem``), ``end`` signs the new one.
    """

    def __init__(self) -> None:
        self.seal = Seal(None)
        self.seq = 0
        self.head = GENESIS
        self._row: Indexed | None = None
        self._checked = False
        self._moved = False
        self._pending: tuple[int, bytes] | None = None
        # Why the chain may not be extended at all, found at open: a journal its own checkpoints
        # show rolled back (``replay.checkpoints.rolled_back``). None: it may.
        self.refused: str | None = None

    def begin(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self.seq, self.head = (int(row[0]), bytes(row[1])) if row else (0, GENESIS)
        self._row = conn.execute("SELECT seq, hash, mac FROM chain_head").fetchone()
        self._checked = self._moved = False
        self._pending = None

    def append(self, conn: sqlite3.Connection, rows: Iterable[EventRow]) -> list[int]:
        """Insert events at the end of the chain; their seqs."""
        out = []
        for exchange_id, at, kind, data, state in rows:
            if not self._checked:
                if self.refused is not None:
                    raise HeadBroken(self.refused)
                problem = head_problem(self.seal, self._row, (self.seq, self.head))
                if problem is not None:
                    raise HeadBroken(f"{problem}; run `tongban journal verify`")
                self._checked = True
            self.seq += 1
            self.head = link(self.head, self.seq, exchange_id, at, kind, data, state)
            out.append((self.seq, exchange_id, at, kind, data, self.head, state))
        if out:
            self._moved = True
            conn.executemany(
                "INSERT INTO events (seq, exchange_id, at, kind, data, hash, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                out,
            )
        return [row[0] for row in out]

    @property
    def moved(self) -> bool:
        """Whether this transaction has moved the head (appended, or rewritten the chain)."""
        return self._moved

    def end(self, conn: sqlite3.Connection) -> None:
        """Sign the head this transaction moved (before its COMMIT)."""
        if self._moved:
            conn.execute(
                "UPDATE chain_head SET seq = ?, hash = ?, mac = ?",
                (self.seq, self.head, self.seal.sign_head(self.seq, self.head)),
            )
            self._moved = False
            self._pending = (self.seq, self.head)

    def commit(self) -> tuple[int, bytes] | None:
        """After the COMMIT: the head it signed (None if it moved none)."""
        done, self._pending = self._pending, None
        return done

    def moved_to(self, seq: int, head: bytes) -> None:
        """The head after a rewrite of the chain (rekey) in this transaction: ``end`` signs it."""
        self.seq, self.head, self._moved = seq, head, True


_NAME = re.compile(r"[A-Za-z0-9_.:~-]{1,80}")


def named(value: str) -> str:
    """An exchange id or event kind as a verify message may say it: one tongban could have
    written (letters, digits, ``_.:~-``); any other was written outside tongban and may be
    anything, personal data too, so only its length is said."""
    return value if _NAME.fullmatch(value) else f"<{len(value)} characters, not shown>"


@dataclass(frozen=True, kw_only=True)
class Break:
    """The first place the chain does not hold."""

    seq: int
    exchange_id: str
    kind: str
    reason: str
    where: str = ""  # what the problem is in, when it is not an event (the head, a row, a file)

    def __str__(self) -> str:
        if self.where:
            return f"{self.where}: {self.reason}"
        kind = named(self.kind)
        if not self.exchange_id:
            return f"event {self.seq} ({kind}): {self.reason}"
        return f"event {self.seq} ({kind} of exchange {named(self.exchange_id)}): {self.reason}"


def verify(
    events: Iterator[Sequence[Any]], *, start: bytes = GENESIS, start_seq: int = 0
) -> tuple[int, Break | None, bytes]:
    """Walk (seq, exchange_id, at, kind, data, hash, archived, state) rows in seq order.

    An archived event (a tombstone: its content is in an archive file) cannot be recomputed here;
    its stored hash carries the chain on, the archive's check under the journal's key or against
    the journal (``replay/archive.py``) proves the content, and
    ``replay.audit`` checks that the chain recorded archiving it (its ``~archived`` record). A
    column not of its type (SQLite keeps any value anywhere) is a break at that event.

    Returns the number of events checked, the first break (or None) and the final hash.
    """
    prev, expected_seq, count = start, start_seq, 0
    for row in events:
        count += 1
        if (odd := odd_event(row)) is not None:
            seq_i = row[0] if _whole(row[0]) else expected_seq + 1
            xid, kind_s = (v if isinstance(v, str) else "?" for v in (row[1], row[3]))
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=odd), prev
        seq, exchange_id, at, kind, data, stored, archived, state = row
        seq_i, xid, kind_s = int(seq), str(exchange_id), str(kind)
        if stored is None:
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason="has no hash"), prev
        if len(bytes(stored)) != len(GENESIS):
            reason = "its hash is not 32 bytes (altered outside tongban)"
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=reason), prev
        if seq_i != expected_seq + 1:
            reason = (
                f"follows event {expected_seq}: event(s) {expected_seq + 1}–{seq_i - 1} are missing"
                if seq_i > expected_seq + 1
                else "is out of order"
            )
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=reason), prev
        if archived:
            if bytes(data) or state is not None:
                reason = "is marked archived but keeps content (an archived event keeps none)"
                return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=reason), prev
            prev, expected_seq = bytes(stored), seq_i
            continue
        state_b = None if state is None else bytes(state)
        actual = link(prev, seq_i, xid, float(at), kind_s, bytes(data), state_b)
        if actual != bytes(stored):
            reason = "its content or the chain before it was altered (hash does not match)"
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=reason), prev
        prev, expected_seq = actual, seq_i
    return count, None, prev
