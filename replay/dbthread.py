"""A thread that owns one SQLite connection and runs queued operations in group-committed batches.

``synchronous=FULL`` makes every commit an fsync. Committing each intake request alone would cap the
broker at the disk's fsync rate; instead the writer drains whatever operations queued up while the
previous fsync ran and commits them together. No caller's future resolves before the COMMIT that
contains its work, and one failing operation never undoes its neighbours (see ``_run_batch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import queue
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any, TypeVar

from replay.turn import Turn, TurnNotHad

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Prepare = Callable[[], None]
# an op, its caller's future, and whether the batch's ``on_begin`` must do all its work for it
# as the transaction begins (False: the op lets the journal leave some of it to later)
Ready = tuple[Op, asyncio.Future[Any], bool]
MAX_BATCH = 512
# pages of room a writer that failed for want of the disk asks for before it says writes work
# again: some applications' worth (one takes 14 to 18 pages of the write-ahead log, 8 KiB each)
ROOM_PAGES = 64
# seconds from one write of those pages (``_disk_room``) to the next: the checks between answer
# no room (the last found none, or the writer failed since), so that pings (/readyz, which anyone
# may ask) cannot make it write 512 KiB and fsync them at will on a disk that is nearly full
ROOM_EVERY = 5.0
Item = TypeVar("Item")


def batch_after(
    first: Item, get_nowait: Callable[[], Item | None], empty: type[Exception], limit: int
) -> tuple[list[Item], bool]:
    """``first`` and whatever else is queued now, up to ``limit`` in all (group commit), and
    whether the stop marker (None) was among them. The PostgreSQL writer takes its batches so too."""
    batch = [first]
    while len(batch) < limit:
        try:
            item = get_nowait()
        except empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


class DbThread(threading.Thread):
    """Runs ``Op``s against one connection; ``transactional`` wraps each batch in BEGIN IMMEDIATE."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        loop: asyncio.AbstractEventLoop,
        *,
        name: str,
        transactional: bool,
        translate: Callable[[BaseException], BaseException],
        expected: tuple[type[BaseException], ...] = (),
        on_begin: Callable[[sqlite3.Connection, bool], None] | None = None,
        on_commit: Callable[[sqlite3.Connection], None] | None = None,
        after_commit: Callable[[], None] | None = None,
        observe: Callable[[float, int], None] | None = None,
        turn: Callable[[], Turn | None] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._connect = connect
        self._loop = loop
        self._transactional = transactional
        self._translate = translate
        self._expected = expected
        self._on_begin = on_begin
        self._on_commit = on_commit  # last thing in the transaction (signs the chain head)
        self._after_commit = after_commit  # once the batch is durable (writes a checkpoint)
        self._observe = observe  # (seconds, ops) of each committed batch, for /metrics
        # makes the turn every transaction takes first, shared with the other processes writing
        # the same file (replay/turn.py); made in the thread, beside its connection
        self._make_turn = turn
        self._queue: queue.SimpleQueue[
            tuple[Op, asyncio.Future[Any], Prepare | None, bool] | None
        ] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        # why the last write failed for want of the disk (full, an I/O error, made read-only),
        # until the disk has room again (``room``): a ping's read succeeds all the while, and so
        # do updates in place (a presence beat, a lease renewal), so neither says so (/readyz)
        self.failing: str | None = None
        self._wrote_room_at: float | None = None  # when ``room`` last wrote its pages (monotonic)

    def start_and_wait(self) -> None:
        """Start the thread and raise (translated) if the connection could not be opened."""
        self.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._translate(self._startup_error) from self._startup_error

    def submit(
        self,
        op: Callable[[sqlite3.Connection], T],
        prepare: Prepare | None = None,
        *,
        early: bool = True,
    ) -> asyncio.Future[T]:
        """Run ``op`` in the next batch's transaction; ``prepare`` first, once, outside it (work
        that needs no row, so that the turn is held for the SQL alone). ``on_begin`` is told
        whether any op of the batch asks for all its work ``early``."""
        fut: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((op, fut, prepare, early))
        return fut

    def stop(self) -> None:
        self._queue.put(None)

    def run(self) -> None:
        try:
            conn = self._connect()
            turn = self._make_turn() if self._make_turn is not None else None
        except BaseException as exc:  # reported to start_and_wait
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stopping = batch_after(first, self._queue.get_nowait, queue.Empty, MAX_BATCH)
                ready = self._prepared(batch)
                if ready:
                    self._run_batch(conn, ready, turn)
                # nothing of this batch (its closures, events, sealed rows) kept while idle
                del first, batch, ready
                if stopping:
                    return
        finally:
            conn.close()
            if turn is not None:
                turn.close()

    def _prepared(
        self, batch: list[tuple[Op, asyncio.Future[Any], Prepare | None, bool]]
    ) -> list[Ready]:
        """Each op's preparation, run once before the batch's transaction; an op whose
        preparation fails is answered with its error and left out of the batch."""
        ready: list[Ready] = []
        failed: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for op, fut, prepare, early in batch:
            if prepare is not None:
                try:
                    prepare()
                except Exception as exc:
                    failed.append((fut, None, exc))
                    continue
            ready.append((op, fut, early))
        if failed:
            self._deliver(failed)
        return ready

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[Ready], turn: Turn | None = None
    ) -> None:
        """Run ``batch`` in one transaction; an unexpected failure re-runs its ops one by one.

        Operations raise only ``expected`` errors, and only before they write anything, so those
        need no savepoint. Anything else (a disk error, a bug) rolls the whole batch back; the ops
        are then retried one per transaction so that one bad op cannot fail its neighbours. A turn
        not had in time fails the whole batch at once: no op of it could be written either.

        A writer whose writes failed for want of the disk looks for room after a commit, the
        turn given back first: other processes need not wait for its check.
        """
        if turn is not None:
            try:
                turn.take()
            except Exception as exc:  # TurnNotHad, or anything unforeseen: never a dead writer
                failed = (
                    exc if isinstance(exc, TurnNotHad) else TurnNotHad(f"database is locked: {exc}")
                )
                self._deliver([(fut, None, failed) for _, fut, _ in batch])
                return
        try:
            results, committed = self._transact(conn, batch)
        finally:
            if turn is not None:
                turn.give()
        if results is None:
            for item in batch:
                self._run_batch(conn, [item], turn)
            return
        if committed and self.failing is not None and self._room_now(conn):
            self.failing = None
        self._deliver(results)

    def _transact(
        self, conn: sqlite3.Connection, batch: list[Ready]
    ) -> tuple[list[tuple[asyncio.Future[Any], Any, BaseException | None]] | None, bool]:
        """The batch's results, and whether it committed; None if it was rolled back and should
        be retried op by op."""
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        t0 = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE" if self._transactional else "BEGIN")
            if self._on_begin is not None:
                self._on_begin(conn, any(early for _, _, early in batch))
            for op, fut, _ in batch:
                try:
                    results.append((fut, op(conn), None))
                except self._expected as exc:
                    results.append((fut, None, exc))
            if self._on_commit is not None:
                self._on_commit(conn)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if len(batch) > 1:
                return None, False
            if _disk(exc):
                self.failing = str(exc)
            return [(fut, None, exc) for _, fut, _ in batch], False
        if self._observe is not None:
            # committed: a metric that fails must not take the writer (and every waiter) down
            with contextlib.suppress(Exception):
                self._observe(time.perf_counter() - t0, len(batch))
        if self._after_commit is not None:
            with contextlib.suppress(Exception):  # a checkpoint is best effort, never a failure
                self._after_commit()
        return results, True

    def _room_now(self, conn: sqlite3.Connection) -> bool:
        """``room``, with anything it raises (the disk failing under the check itself) taken as
        no room: the check runs after the batch's COMMIT, outside its error handling, and must
        never end the writer nor leave the batch's callers unanswered. Its pages are written at
        most every ``ROOM_EVERY`` seconds (``_disk_now``)."""
        try:
            return room(conn, disk=self._disk_now)
        except Exception:
            return False

    def _disk_now(self, path: Path, size: int) -> bool:
        """``_disk_room``, unless it ran less than ``ROOM_EVERY`` seconds ago: then no room (the
        last one found none, or the writer failed again since it found some)."""
        now = monotonic()
        if self._wrote_room_at is not None and now - self._wrote_room_at < ROOM_EVERY:
            return False
        try:
            return _disk_room(path, size)
        finally:
            self._wrote_room_at = monotonic()

    def _deliver(
        self, results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
    ) -> None:
        translate = self._translate

        def resolve() -> None:
            for fut, value, exc in results:
                if fut.done():
                    continue
                if exc is None:
                    fut.set_result(value)
                else:
                    fut.set_exception(translate(exc))

        # RuntimeError: the loop is gone, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(resolve)


# SQLITE_READONLY, SQLITE_IOERR (and its extended codes), SQLITE_FULL: the disk refuses writes
_DISK_CODES = frozenset({8, 10, 13})


def _disk(exc: BaseException) -> bool:
    """Whether a failed transaction failed for want of the disk, not for its own content."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _DISK_CODES


def room(conn: sqlite3.Connection, *, disk: Callable[[Path, int], bool] | None = None) -> bool:
    """Whether the journal could grow by ``ROOM_PAGES`` now: under its page limit (read at every
    check: three pragmas), and on its disk (``disk``: ``_disk_room`` unless told).

    Only a writer that failed for want of the disk asks, after each of its commits (a ping's
    among them, so /readyz sees room come back with no application arriving), and writes its
    pages on the disk at most every ``ROOM_EVERY`` seconds (``DbThread._disk_now``). A commit
    alone proves nothing: an update in place, even an upsert (``INSERT … ON CONFLICT DO UPDATE``),
    needs no new page, nor an insert into a page's free space, while the next application does.
    """
    pages, limit, size = (
        conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_count", "max_page_count", "page_size")
    )
    if pages + ROOM_PAGES > limit:
        return False
    path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not path:  # a database in memory: no disk
        return True
    if not os.path.exists(path):  # moved or removed: its writes are refused (read-only)
        return False
    try:
        return (disk or _disk_room)(Path(path), ROOM_PAGES * size)
    except OSError:
        return False


# no new file can be made in the journal's directory: a directory it may not write (allowed when
# its -wal and -shm files exist and can be written: replay/sqlitefile.py), or a read-only mount
_CANNOT_CREATE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# a system or file system without unnamed files (O_TMPFILE): a named one instead
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL})


def _disk_room(path: Path, size: int) -> bool:
    """Whether ``size`` bytes can be written on the journal's disk now: that many random bytes
    (no file system packs them) written to a new file of the check's own beside the journal,
    flushed, and dropped. Where no file can be made there, the file system's count of the blocks
    free to its users, and not read-only (``_free_space``)."""
    try:
        fd, name = _probe_file(path)
    except OSError as exc:
        if exc.errno in _CANNOT_CREATE:
            return _free_space(path.parent, size)
        raise
    made: os.stat_result | None = None
    try:
        made = os.fstat(fd)
        if not stat.S_ISREG(made.st_mode):
            return False
        data = memoryview(os.urandom(size))
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
        if name is not None and made is not None:
            _remove(name, made)
    return True


def _probe_file(path: Path) -> tuple[int, str | None]:
    """A new file, for its owner only, on the journal's file system, and its name if it has one.

    Unnamed (O_TMPFILE) where the system has them: nothing to remove, nothing left if the process
    dies writing it. Else a name no one else chose (mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW), never
    a fixed one, so that a link or a file put in the directory is neither followed nor truncated.
    """
    unnamed = getattr(os, "O_TMPFILE", 0)
    if unnamed:
        try:
            # O_EXCL: it can never be linked into the directory (linkat), only dropped
            flags = unnamed | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC
            return os.open(path.parent, flags, 0o600), None
        except OSError as exc:
            if exc.errno not in _NO_TMPFILE:
                raise
    return tempfile.mkstemp(prefix=f"{path.name}-room-", dir=path.parent)


def _remove(name: str, made: os.stat_result) -> None:
    """Remove the check's own file, by the name it was made with, only if that name still names
    it (an unlink never follows a link, and anything put there since is left alone)."""
    with contextlib.suppress(OSError):
        now = os.lstat(name)
        if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):
            os.unlink(name)


def _free_space(directory: Path, size: int) -> bool:
    """Room for ``size`` bytes by the file system's own count (``statvfs``), for a directory
    where no file can be made. Less honest than writing: blocks reserved for root are not
    counted (no room when only they are free), and a user's quota, thin provisioning, or a disk
    that fails with I/O errors rather than for space are not seen (room said, and the next write
    that fails makes the writer not ready again). Better than never ready again."""
    found = os.statvfs(directory)
    if found.f_flag & os.ST_RDONLY:
        return False
    return found.f_bavail * found.f_frsize >= size
