"""Checkpoints: signed statements of where the chain stood, kept outside the database.

One JSON line per checkpoint, appended to ``<journal>.checkpoints`` (mode 0600; for PostgreSQL one
file per instance, beside its key file): ``{"seq": N, "head": "<hash of event N>", "at": T,
"mac": "<HMAC-SHA256 with the journal's MAC key>"}``. A journal writes one after its commits at
most every ``every`` seconds and one when it closes, and when a journal is first given keys.

The chain head in the database is signed too, but someone who can write the database can put back
an older signed head (a backup, a copy taken earlier) after cutting the events that followed it.
The checkpoints are what such a rollback cannot undo: ``verify`` checks every line's MAC and that
the journal still holds, at every checkpointed seq, the event with that hash; every open compares
the journal's end with the latest one only (``Checkpoints.latest``, ``rolled_back``), and a
journal that contradicts it takes no more writes. ``tongban journal rekey`` rewrites the chain, so
it replaces the file with one checkpoint of the new chain.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from federation.domain.models import iso
from replay.seal import Seal

TAIL = 8192  # bytes of the file's end that ``latest`` reads (some forty lines)


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """The chain stood at ``seq`` with hash ``head`` at time ``at``."""

    seq: int
    head: bytes
    at: float


def _parts(seq: int, head: bytes, at: float) -> tuple[bytes, ...]:
    return struct.pack(">q", seq), head, repr(float(at)).encode()


class Checkpoints:
    """The checkpoints of one journal: a file, or (``path`` None) a list that lives in memory."""

    def __init__(self, path: Path | None, seal: Seal) -> None:
        self.path = path
        self.seal = seal
        self._kept: list[bytes] = []

    def _line(self, seq: int, head: bytes, at: float) -> bytes:
        mac = self.seal.sign(b"tongban/checkpoint", _parts(seq, head, at)) or b""
        doc = {"seq": seq, "head": head.hex(), "at": at, "mac": mac.hex()}
        return orjson.dumps(doc) + b"\n"

    def write(self, seq: int, head: bytes, at: float) -> None:
        """Append a checkpoint (nothing when the journal is unkeyed)."""
        if not self.seal.keyed:
            return
        line = self._line(seq, head, at)
        if self.path is None:
            self._kept.append(line)
            return
        # One write(2) of one short line with O_APPEND: lines of processes sharing the file
        # never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def reset(self, seq: int, head: bytes, at: float) -> None:
        """Replace every checkpoint by one of the chain as it is now (after a rekey)."""
        line = self._line(seq, head, at)
        if self.path is None:
            self._kept = [line]
            return
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def exists(self) -> bool:
        """Whether any checkpoint was ever written here."""
        return bool(self._kept) if self.path is None else self.path.exists()

    def read(self) -> tuple[list[Checkpoint], str | None]:
        """Every checkpoint, and the first problem with the file (a line not signed by us)."""
        where = "checkpoints" if self.path is None else f"checkpoints file {self.path}"
        if self.path is None:
            lines: Sequence[bytes] = self._kept
        else:
            try:
                lines = self.path.read_bytes().splitlines()
            except FileNotFoundError:
                return [], None
            except OSError as exc:
                return [], f"cannot read the {where}: {exc.strerror}"
        out: list[Checkpoint] = []
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                doc = orjson.loads(raw)
                point = Checkpoint(
                    seq=int(doc["seq"]), head=bytes.fromhex(doc["head"]), at=doc["at"]
                )
                mac = bytes.fromhex(doc["mac"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return out, f"line {n} of the {where} is not a checkpoint"
            expected = self.seal.sign(
                b"tongban/checkpoint", _parts(point.seq, point.head, point.at)
            )
            if expected is None or not secrets.compare_digest(expected, mac):
                return out, (
                    f"line {n} of the {where} is not signed with {self.seal.where} "
                    "(forged or altered, or a wrong key)"
                )
            out.append(point)
        return out, None

    def latest(self) -> Checkpoint | None:
        """The signed checkpoint of the highest seq among the last lines (the file's last TAIL
        bytes: cheap enough for every open, however long the file). Lines that do not parse or
        are not signed are passed over: verify reads every line and names them."""
        if self.path is None:
            lines: Sequence[bytes] = self._kept[-64:]
        else:
            try:
                with self.path.open("rb") as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(max(0, size - TAIL))
                    lines = f.read().splitlines()[1 if size > TAIL else 0 :]  # the first, cut
            except OSError:
                return None  # none yet, or unreadable: verify says so
        best: Checkpoint | None = None
        for raw in lines:
            point = self._signed(raw)
            if point is not None and (best is None or point.seq > best.seq):
                best = point
        return best

    def _signed(self, raw: bytes) -> Checkpoint | None:
        """The checkpoint of one line, if it parses and is signed with this journal's key."""
        try:
            doc = orjson.loads(raw)
            point = Checkpoint(seq=int(doc["seq"]), head=bytes.fromhex(doc["head"]), at=doc["at"])
            mac = bytes.fromhex(doc["mac"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        expected = self.seal.sign(b"tongban/checkpoint", _parts(point.seq, point.head, point.at))
        if expected is None or not secrets.compare_digest(expected, mac):
            return None
        return point


def rolled_back(point: Checkpoint | None, end: int, held: bytes | None) -> str | None:
    """Why a journal that ends at event ``end``, holding ``held`` as the hash of event
    ``point.seq``, contradicts its latest checkpoint ``point`` (None: it does not). What a broker
    checks at open (``Checkpoints.latest``); verify checks every checkpoint (replay/audit.py)."""
    if point is None or not point.seq:
        return None
    if point.seq > end:
        what = (
            f"its checkpoint of {iso(point.at)} records event {point.seq}, but the journal ends "
            f"at event {end}: it was rolled back (an older copy of the database put back) or its "
            "last events were removed"
        )
    elif held != point.head:
        what = (
            f"its checkpoint of {iso(point.at)} records another event {point.seq} than the "
            "journal holds: it was rolled back and written to since, or its chain rewritten"
        )
    else:
        return None
    return (
        f'{what}. Nothing more is written to it: see docs/operations.md, "A rolled-back '
        'journal", and run `tongban journal verify`'
    )


class Cadence:
    """When a journal writes a checkpoint: after a commit that moved the head, at most every
    ``every`` seconds, and at close if the last head it signed has none yet."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._signed: tuple[int, bytes] | None = None  # the last head we signed, committed
        self._done: tuple[int, float] = (-1, 0.0)  # seq and time of our last checkpoint

    def due(
        self, signed: tuple[int, bytes] | None, now: float, *, closing: bool = False
    ) -> tuple[int, bytes] | None:
        """The head to checkpoint now, if one is due (and taken as done)."""
        if signed is not None:
            self._signed = signed
        last, (seq, at) = self._signed, self._done
        if last is None or last[0] <= seq or (not closing and now - at < self.every):
            return None
        self._done = (last[0], now)
        return last
