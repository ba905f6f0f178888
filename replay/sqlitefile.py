"""The SQLite journal's file: made readable by its owner only, and its connections set up.

``SQLiteJournal`` (``replay/sqlite.py``) opens its writer and reader connections, and a migration
its own, through ``connect``; ``private_file`` runs before any of them, so that the file (and
its -wal and -shm files) are never open to group or others, and a journal on read-only media is
refused with what to do rather than with SQLite's own words.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

from federation.domain.errors import JournalUnavailable

READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
PAGE_SIZE = 8192  # bytes per page of a new journal file
SIDES = ("-wal", "-shm")


def read_only(where: Path) -> str:
    """Why a journal on read-only media cannot be opened, and what to do."""
    return (
        f"{where} cannot be written (a read-only file, directory or medium); tongban writes to a "
        "journal even to read it (its write-ahead log beside the file, the audit entry of what "
        "is shown): copy it to a writable place and open the copy"
    )


def private_file(path: Path) -> None:
    """The journal file readable by its owner only: made so, or narrowed to it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno in READ_ONLY:
            raise JournalUnavailable(f"journal {path}: {read_only(path)}") from None
        return  # sqlite3 will say why, in its own words
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    sides = [path.with_name(path.name + extra) for extra in SIDES]
    if not os.access(path.parent, os.W_OK) and not all(  # its log goes beside it
        side.exists() and os.access(side, os.W_OK) for side in sides
    ):
        raise JournalUnavailable(f"journal {path}: {read_only(path.parent)}")
    for side in sides:
        if side.exists() and stat.S_IMODE(side.stat().st_mode) & 0o077:
            side.chmod(0o600)


def connect(path: Path, busy_ms: int) -> sqlite3.Connection:
    """A connection to the journal file as every one of its connections is set up."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.row_factory = sqlite3.Row
    # A new journal's pages are 8 KiB, not 4: rows of half a kilobyte leave less of each page
    # unused (the demo catalogue's journal 4 % smaller). No effect on an existing file.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA synchronous=FULL")
    # Freed content is zeroed: a payload sealed again by rekey leaves no clear copy behind.
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    return conn
