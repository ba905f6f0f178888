"""The journal's hash chain: every event carries a hash over its content and the previous hash.

``hash(n) = sha256(hash(n-1) ‖ seq ‖ exchange_id ‖ at ‖ kind ‖ data)`` in ``seq`` order, starting
from 32 zero bytes. Flipping a byte, deleting a row or reordering rows breaks the chain at the first
event whose stored hash no longer matches; ``tongban journal verify`` names it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = bytes(32)


def link(prev: bytes, seq: int, exchange_id: str, at: float, kind: str, data: bytes) -> bytes:
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
    return h.digest()


class Chain:
    """Appends events to the SQLite ``events`` table with their chain hashes.

    The head (last seq and hash) is read at the start of every write transaction, so other
    processes writing the same file (a CLI replay beside a running broker) keep one chain.
    """

    def __init__(self) -> None:
        self.seq = 0
        self.head = GENESIS

    def begin(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self.seq, self.head = (int(row[0]), bytes(row[1])) if row else (0, GENESIS)

    def append(
        self, conn: sqlite3.Connection, rows: Iterable[tuple[str, float, str, bytes]]
    ) -> None:
        """Insert events (exchange_id, at, kind, data) at the end of the chain."""
        out = []
        for exchange_id, at, kind, data in rows:
            self.seq += 1
            self.head = link(self.head, self.seq, exchange_id, at, kind, data)
            out.append((self.seq, exchange_id, at, kind, data, self.head))
        conn.executemany(
            "INSERT INTO events (seq, exchange_id, at, kind, data, hash) VALUES (?, ?, ?, ?, ?, ?)",
            out,
        )


@dataclass(frozen=True, kw_only=True)
class Break:
    """The first place the chain does not hold."""

    seq: int
    exchange_id: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"event {self.seq} ({self.kind} of exchange {self.exchange_id}): {self.reason}"


def verify(
    events: Iterator[Sequence[Any]], *, start: bytes = GENESIS, start_seq: int = 0
) -> tuple[int, Break | None, bytes]:
    """Walk (seq, exchange_id, at, kind, data, hash, archived) rows in seq order.

    An archived event (a tombstone: its content is in an archive file) cannot be recomputed here;
    its stored hash carries the chain on, and ``verify_archive`` checks the content.

    Returns the number of events checked, the first break (or None) and the final hash.
    """
    prev, expected_seq, count = start, start_seq, 0
    for seq, exchange_id, at, kind, data, stored, archived in events:
        count += 1
        seq_i, xid, kind_s = int(seq), str(exchange_id), str(kind)
        if stored is None:
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason="has no hash"), prev
        if seq_i != expected_seq + 1:
            reason = (
                f"follows event {expected_seq}: event(s) {expected_seq + 1}–{seq_i - 1} are missing"
                if seq_i > expected_seq + 1
                else "is out of order"
            )
            return count, Break(seq=seq_i, exchange_id=xid, kind=kind_s, reason=reason), prev
        if archived:
            prev, expected_seq = bytes(stored), seq_i
            continue
        actual = link(prev, seq_i, xid, float(at), kind_s, bytes(data))
        if actual != bytes(stored):
            return (
                count,
                Break(
                    seq=seq_i,
                    exchange_id=xid,
                    kind=kind_s,
                    reason="its content or the chain before it was altered (hash does not match)",
                ),
                prev,
            )
        prev, expected_seq = actual, seq_i
    return count, None, prev
