"""Whose turn it is to write a SQLite journal shared by several processes.

SQLite lets one connection write at a time. A connection that finds the file locked waits in
SQLite's busy handler, which does not queue: it sleeps (1, 2, 5, 10 … 100 ms) and looks again. Two
busy writers are not served in turns: the one holding the lock commits, finds its next batch
already queued and takes the lock again within microseconds, while the other is still asleep. With
``tongban serve --workers 2`` on one journal, one worker starved this way for whole bench runs: it
used 0.04 of a core while the other used 0.92 and the machine had a third of its CPU idle, so two
workers delivered no more than one.

A turn is an exclusive ``flock`` on ``<journal>-turn``, taken before ``BEGIN IMMEDIATE`` and given
back after ``COMMIT``. A process waiting for it waits in the kernel, which wakes it when the holder
lets go. ``flock`` does not hand the lock over, nor queue its waiters: the woken waiter and the
holder race for it. The waiter is already awake while the holder delivers its results and gathers
its next batch, so in practice the writers alternate (two processes writing flat out: count ratios
of 0.87-0.98, against 0.01-0.8 without turns); that is observed, not guaranteed. SQLite's own lock
still guards the file; the turn only orders the writers that take it, and a writer that cannot
have a turn at all (no locks on this file system) writes without one, as before. The kernel drops
a ``flock`` when its process dies (kill -9 included), so a crashed writer leaves no stale turn.

The wait is bounded by the journal's busy timeout, as SQLite's is: a turn not had in time raises
:class:`TurnNotHad`, and the batch fails as a locked file does (``journal-unavailable``). The thread
that waits in the kernel then goes on waiting; if no writer wants the turn once it comes, it is
given straight back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
from pathlib import Path

from federation.domain.errors import JournalUnavailable


class TurnNotHad(sqlite3.OperationalError):
    """Another process kept the journal's turn to write for longer than the busy timeout: to the
    journal, the same as SQLite's "database is locked"."""


class Turn:
    """The turn to write ``<journal>-turn`` stands for; one per writing connection.

    ``take`` and ``give`` are called by one thread (the journal's writer); a helper thread waits
    in the kernel when the turn is taken, so that the writer can stop waiting after ``timeout``.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        # Anyone who can open the file can hold the turn and so stop every write: one left open
        # to others (restored, copied) is narrowed, as the journal's own files are.
        if os.fstat(self._fd).st_mode & 0o077:
            os.fchmod(self._fd, 0o600)
        self._helper: threading.Thread | None = None  # the thread waiting in the kernel, if any
        self._mutex = threading.Lock()
        self._pending: threading.Event | None = None  # set once the waiting thread has the turn
        self._wanted = False  # whether the writer still waits for the pending turn
        self._closing = False  # closed while a thread waits: that thread closes the file

    @classmethod
    def beside(cls, journal: Path, timeout: float) -> Turn | None:
        """The turn of ``journal``. None where this process may not write the journal anyway (a
        read-only file or directory, a missing directory); a journal it may write but whose turn
        file it cannot open is refused with :class:`JournalUnavailable`: writing without turns
        would bring back the starvation they prevent, unnoticed."""
        path = journal.with_name(journal.name + "-turn")
        try:
            return cls(path, timeout)
        except OSError as exc:
            writable = os.access(journal, os.W_OK) and os.access(journal.parent, os.W_OK)
            if not writable or exc.errno in (errno.ENOENT, errno.EROFS):
                return None
            raise JournalUnavailable(
                f"cannot open {path}, which the processes writing {journal.name} take turns"
                f" with: {exc.strerror}"
            ) from exc

    def take(self) -> None:
        """Wait for the turn (at most ``timeout`` seconds), or raise :class:`TurnNotHad`."""
        with self._mutex:
            pending = self._pending
            if pending is None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pending = self._start_waiting()
                except OSError:  # no locks to be had here (ENOLCK): SQLite's lock alone, as before
                    return
            self._wanted = True
        if pending.wait(self._timeout):
            return
        with self._mutex:
            if pending.is_set():  # had just as the wait ended
                return
            self._wanted = False
        raise TurnNotHad(
            f"database is locked: another process kept its turn to write {self.path.name}"
            f" for more than {self._timeout:g} s"
        )

    def give(self) -> None:
        """Give the turn back (if the caller holds it; otherwise this does nothing)."""
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _start_waiting(self) -> threading.Event:
        """The event the waiting thread sets once it has the turn (under the mutex)."""
        pending = threading.Event()
        helper = threading.Thread(
            target=self._wait, args=(pending,), name="journal-turn", daemon=True
        )
        try:
            helper.start()
        except RuntimeError as exc:  # no thread to be had: as if the turn was not had in time
            raise TurnNotHad(
                f"database is locked: cannot wait for {self.path.name}: {exc}"
            ) from exc
        self._pending, self._helper = pending, helper
        return pending

    def close(self) -> None:
        """Close the file (which gives the turn back); a thread still waiting closes it once it
        has the turn, so that its flock never lands on a descriptor number used again."""
        with self._mutex:
            if self._pending is not None:
                self._closing = True
                return
        os.close(self._fd)

    def _wait(self, pending: threading.Event) -> None:
        """In the helper thread: block until the turn is ours; hand it to the writer, or give it
        straight back if the writer stopped waiting."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:  # no lock to be had (ENOLCK): the writer's wait runs out, as for a holder
            with self._mutex:
                self._pending = None
                if self._closing:
                    os.close(self._fd)
            return
        with self._mutex:
            self._pending = None
            if self._closing:
                os.close(self._fd)
                return
            if self._wanted:
                self._wanted = False
                pending.set()
                return
            fcntl.flock(self._fd, fcntl.LOCK_UN)
