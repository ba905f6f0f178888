"""Checkpoints: signed statements of where the chain stood, kept outside the database.

One JSON line per checkpoint, appended to ``<journal>.checkpoints`` (mode 0600; for PostgreSQL one
file per instance, beside its key file): ``{"seq": N, "head": "<hash of event N>", "at": T,
"mac": "<HMAC-SHA256 with the journal's MAC key>"}``. A journal writes one after its commits at
most every ``every`` seconds, one ``every`` seconds after a commit that had none (``Timer``: a
journal gone idle after a burst is not left with its last writes unrecorded until it closes),
one when it closes, and one when a journal is first given keys.

The chain head in the database is signed too, but someone who can write the database can put back
an older signed head (a backup, a copy taken earlier) after cutting the events that followed it.
The checkpoints are what such a rollback cannot undo: ``verify`` checks every line's MAC and that
the journal still holds, at every checkpointed seq, the event with that hash; every open compares
the journal's end with the latest one only (``Checkpoints.latest``, ``rolled_back``), and a
journal that contradicts it takes no more writes.

``tongban journal rekey`` rewrites the chain, so the file must change with the database, and no
write can be atomic with a commit. Before the rekey commits, its checkpoint of the new chain is
put first in the file, marked pending, the old lines kept after it (``stage``); after the commit,
the file keeps the new checkpoint and the lines written since of the new chain (``settle``). A
crash between the two leaves a pending file, which the next open settles by the chain the
journal holds (``standing``): it holds the new chain at the pending checkpoint's event, or it
still holds the old one. Nothing but a rekey writes a pending line (signed apart), and once
settled a copy of the database from before the rekey contradicts the file as any rollback does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from federation.domain.models import iso
from replay.seal import Seal

TAIL = 8192  # bytes of the file's end that ``latest`` reads (some forty lines)
SIGNED = b"tongban/checkpoint"
PENDING = b"tongban/checkpoint/rekey-pending"  # a rekey's checkpoint, before it is known committed


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """The chain stood at ``seq`` with hash ``head`` at time ``at`` (``pending``: a rekey's new
    chain would, once committed)."""

    seq: int
    head: bytes
    at: float
    pending: bool = False


def _parts(seq: int, head: bytes, at: float) -> tuple[bytes, ...]:
    return struct.pack(">q", seq), head, repr(float(at)).encode()


class Checkpoints:
    """The checkpoints of one journal: a file, or (``path`` None) a list that lives in memory."""

    def __init__(self, path: Path | None, seal: Seal) -> None:
        self.path = path
        self.seal = seal
        self._kept: list[bytes] = []

    def under(self, seal: Seal) -> Checkpoints:
        """The same checkpoints, signed with ``seal`` from now on (those kept in memory too)."""
        out = Checkpoints(self.path, seal)
        out._kept = list(self._kept)
        return out

    def _line(self, seq: int, head: bytes, at: float, *, pending: bool = False) -> bytes:
        mac = self.seal.sign(PENDING if pending else SIGNED, _parts(seq, head, at)) or b""
        doc: dict[str, object] = {"seq": seq, "head": head.hex(), "at": at}
        if pending:
            doc["rekey"] = "pending"
        doc["mac"] = mac.hex()
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

    def stage(self, seq: int, head: bytes, at: float) -> Checkpoint:
        """Before a rekey commits: its checkpoint of the new chain first in the file, marked
        pending, every line before kept after it (atomically); the checkpoint."""
        point = Checkpoint(seq=seq, head=head, at=at, pending=True)
        if self.seal.keyed:
            kept = [raw + b"\n" for raw in self._lines() if not _pending_line(raw)]
            self._store([self._line(seq, head, at, pending=True), *kept])
        return point

    def pending(self) -> Checkpoint | None:
        """The pending checkpoint an interrupted rekey left first in the file, if any (one line
        read: cheap enough for every open)."""
        if self.path is None:
            first = self._kept[0] if self._kept else b""
        else:
            try:
                with self.path.open("rb") as f:
                    first = f.readline()
            except OSError:
                return None
        point = self._signed(first)
        return point if point is not None and point.pending else None

    def settle(self, point: Checkpoint, committed: bool) -> None:
        """The file as ``standing`` reads it, atomically: ``point`` (a rekey's, as staged) and
        the lines after it of the new chain when the rekey ``committed``; else every line but the
        pending one. A line another process appends meanwhile may be lost, as with any rewrite:
        run rekey with the brokers stopped."""
        kept: list[bytes] = [self._line(point.seq, point.head, point.at)] if committed else []
        for raw in self._lines():
            line = self._signed(raw)  # None: not ours to judge, verify names it
            if line is None or (not line.pending and _keeps(line, point, committed)):
                kept.append(raw + b"\n")
        self._store(kept)

    def rewrite(self, points: Sequence[Checkpoint]) -> None:
        """The file replaced by ``points``, each signed again (atomically): an instance's
        checkpoints carried to the chain another instance's rekey made (``replay/rekeyed.py``)."""
        if self.seal.keyed:
            self._store([self._line(p.seq, p.head, p.at) for p in points])

    def _lines(self) -> list[bytes]:
        """Every line (without its end), as they stand."""
        if self.path is None:
            return [raw.rstrip(b"\n") for raw in self._kept]
        try:
            return [raw for raw in self.path.read_bytes().splitlines() if raw.strip()]
        except FileNotFoundError:
            return []

    def _store(self, lines: list[bytes]) -> None:
        """Replace every line by ``lines`` (each ending in a newline): written aside, synced and
        renamed over the file, so a crash leaves the old file or the new one."""
        if self.path is None:
            self._kept = list(lines)
            return
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # the rename itself, durable where the system allows
            dirfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    def identity(self) -> str | None:
        """The id of this checkpoints file, kept beside it in ``<file>.id`` and made at the first
        asking (None: kept in memory, or unreadable). A PostgreSQL journal knows its instances by
        it across restarts (``replay/rekeyed.py``): the lease owner id changes at every start."""
        if self.path is None:
            return None
        place = self.path.with_name(self.path.name + ".id")
        try:
            return _identity(place) or _made_identity(place)
        except OSError:
            return None

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
                point, mac = _parse(raw)
            except ValueError:
                return out, f"line {n} of the {where} is not a checkpoint"
            if not self._valid(point, mac):
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
            if point is None or point.pending:  # a rekey's: settled at open (``standing``)
                continue
            if best is None or point.seq > best.seq:
                best = point
        return best

    def _signed(self, raw: bytes) -> Checkpoint | None:
        """The checkpoint of one line, if it parses and is signed with this journal's key."""
        try:
            point, mac = _parse(raw)
        except ValueError:
            return None
        return point if self._valid(point, mac) else None

    def _valid(self, point: Checkpoint, mac: bytes) -> bool:
        what = PENDING if point.pending else SIGNED
        expected = self.seal.sign(what, _parts(point.seq, point.head, point.at))
        return expected is not None and secrets.compare_digest(expected, mac)


def _parse(raw: bytes) -> tuple[Checkpoint, bytes]:
    """The checkpoint of one line and its MAC, unchecked (ValueError: not a checkpoint)."""
    try:
        doc = orjson.loads(raw)
        pending = doc.get("rekey") == "pending"
        point = Checkpoint(
            seq=int(doc["seq"]), head=bytes.fromhex(doc["head"]), at=doc["at"], pending=pending
        )
        return point, bytes.fromhex(doc["mac"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ValueError("not a checkpoint") from exc


def _identity(place: Path) -> str | None:
    """The id kept in ``place``, if the file is there and holds one."""
    try:
        found = place.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return found if 0 < len(found) <= 64 and found.isprintable() else None


def _made_identity(place: Path) -> str | None:
    """A new id put in ``place`` whole, under a lock beside it, unless another process put one
    while this one waited (then that one): workers starting together agree. A file there that
    holds no id (cut short, edited) is replaced, not left to make the instance nameless."""
    lock = os.open(place.with_name(place.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _identity(place)
        if found is not None:
            return found
        tmp = place.with_name(f".{place.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_hex(8) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, place)
        finally:
            tmp.unlink(missing_ok=True)
        return _identity(place)
    finally:
        os.close(lock)  # and with it the lock


def _pending_line(raw: bytes) -> bool:
    try:
        return _parse(raw)[0].pending
    except ValueError:
        return False


def _keeps(point: Checkpoint, staged: Checkpoint, committed: bool) -> bool:
    """Whether ``point`` (not pending) stands beside a rekey's ``staged`` checkpoint: every one,
    if the rekey did not commit; if it did, only those of the new chain, which begins at
    ``staged`` (the old chain never passed its seq, and held another event there)."""
    return not committed or point.seq > staged.seq


def standing(points: Sequence[Checkpoint], held: Callable[[int], bytes | None]) -> list[Checkpoint]:
    """The checkpoints that speak for a journal holding ``held(seq)`` as the hash of event seq:
    all of them, unless an interrupted rekey left one pending; then those of the chain the
    journal holds at the pending one's event (``Checkpoints.settle`` keeps the same)."""
    staged = next((p for p in points if p.pending), None)
    if staged is None:
        return list(points)
    committed = held(staged.seq) == staged.head
    rest = [p for p in points if not p.pending and _keeps(p, staged, committed)]
    return [replace(staged, pending=False), *rest] if committed else rest


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
    ``every`` seconds, and at close if the last head it signed has none yet. A head a commit
    signed within ``every`` seconds of the last checkpoint is owed one: ``Timer`` writes it
    ``every`` seconds after that checkpoint, however idle the journal is by then. Called from a
    writer thread and from the loop, so under a lock."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._signed: tuple[int, bytes] | None = None  # the last head we signed, committed
        self._done: tuple[int, float] = (-1, 0.0)  # seq and time of our last checkpoint
        self._lock = threading.Lock()

    def due(
        self, signed: tuple[int, bytes] | None, now: float, *, closing: bool = False
    ) -> tuple[int, bytes] | None:
        """The head to checkpoint now, if one is due (and taken as done)."""
        with self._lock:
            if signed is not None:
                self._signed = signed
            last, (seq, at) = self._signed, self._done
            if last is None or last[0] <= seq or (not closing and now - at < self.every):
                return None
            self._done = (last[0], now)
            return last

    def wait(self, now: float) -> float | None:
        """Seconds until the head a commit left without a checkpoint is due one (0: now), or
        None when every signed head has one."""
        with self._lock:
            last, (seq, at) = self._signed, self._done
            if last is None or last[0] <= seq:
                return None
            return max(0.0, at + self.every - now)


Write = Callable[[tuple[int, bytes], float], Awaitable[None]]


class Timer:
    """Writes, on the event loop, the checkpoint a commit left owed (``Cadence.wait``) once it is
    due: a journal that goes idle after a burst of writes still has its last head checkpointed
    within ``every`` seconds of that head's commit, not only at close. One task at a time, made
    by ``owed`` (after a commit: from the loop, or from a writer thread through
    ``owed_threadsafe``); it sleeps, never polls, ends when nothing is owed, and ``stop`` cancels
    it before the journal's last checkpoint at close."""

    def __init__(
        self,
        cadence: Cadence,
        write: Write,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.cadence = cadence
        self._write = write
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    @classmethod
    def of(cls, journal: Any, cadence: Cadence, clock: Callable[[], float]) -> Timer:
        """The timer of ``journal``: it writes through ``journal.checkpoints`` as they are when
        a checkpoint is due (a rekey gives the journal new ones), in a thread (a file's write)."""

        async def write(point: tuple[int, bytes], now: float) -> None:
            seq, head = point
            await asyncio.to_thread(journal.checkpoints.write, seq, head, now)

        return cls(cadence, write, clock=clock)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Owed checkpoints are written on ``loop`` from now on (until ``stop``)."""
        self._loop, self._stopped = loop, False

    def owed(self) -> None:
        """After a commit, on the loop: a task that writes the owed checkpoint when it is due,
        unless one is running or nothing is owed."""
        if self._stopped or self._loop is None:
            return
        if self._task is not None and not self._task.done():
            return
        if self.cadence.wait(self._clock()) is None:
            return
        self._task = self._loop.create_task(self._run(), name="journal checkpoint timer")

    def owed_threadsafe(self) -> None:
        """``owed`` from another thread (a SQLite journal's writer)."""
        loop = self._loop
        if loop is not None and not self._stopped and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.owed)

    async def _run(self) -> None:
        while (delay := self.cadence.wait(self._clock())) is not None:
            if delay > 0:
                await self._sleep(delay)
            now = self._clock()
            point = self.cadence.due(None, now)
            if point is not None:
                with contextlib.suppress(OSError):  # best effort: verify tells what one leaves
                    await self._write(point, now)

    async def stop(self) -> None:
        """No more timed checkpoints; a running wait is cancelled (the close writes the last)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
