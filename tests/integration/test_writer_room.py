"""The check a SQLite writer that failed for want of the disk makes after each of its commits
(``replay.dbthread.room``): room for ``ROOM_PAGES`` pages both under the file's page limit and on
its disk, proved by writing them to a new file of its own beside the file (unnamed where the
system has such files, else a name no one else chose); nothing is left behind, and nothing put in
the directory (a link, a file at the name the check once used) is followed, truncated or removed.
Where no file can be made in the directory, the file system's count of free blocks decides."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replay.dbthread import ROOM_PAGES, room

OLD_NAME = "j.sqlite-room"  # the fixed name the check wrote to before


@pytest.fixture(params=["unnamed", "named"])
def probe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way the check makes its file: unnamed (O_TMPFILE), and named where there is none."""
    if request.param == "named":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    return str(request.param)


def refusing_open(where: Path, code: int) -> Any:
    """``os.open`` refusing, with ``code``, any file made in ``where`` (SQLite opens its own)."""
    real = os.open

    def opener(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        target = Path(os.fsdecode(path))
        if where in (target, target.parent):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args, **kwargs)

    return opener


@contextlib.contextmanager
def no_new_files(where: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``where`` a directory no file can be made in, even by root: immutable (``chattr +i``)
    where that works, else every file made there refused EACCES at ``os.open``."""
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(where)], capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(where)], check=True)
        return
    with monkeypatch.context() as patched:
        patched.setattr(os, "open", refusing_open(where, errno.EACCES))
        yield


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A small database file with one table."""
    made = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    made.execute("CREATE TABLE t (x BLOB)")
    yield made
    made.close()


def test_room_on_a_disk_with_space_leaves_no_file(
    conn: sqlite3.Connection, tmp_path: Path, probe: str
) -> None:
    """Room: the pages are written beside the file and removed."""
    before = sorted(p.name for p in tmp_path.iterdir())
    assert room(conn)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_no_room_under_the_page_limit(conn: sqlite3.Connection) -> None:
    """A page limit with fewer than ROOM_PAGES pages left is no room; one with them is."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + ROOM_PAGES - 1}")
    assert not room(conn)
    conn.execute(f"PRAGMA max_page_count = {pages + ROOM_PAGES}")
    assert room(conn)


def test_no_room_where_the_disk_refuses_the_pages(
    conn: sqlite3.Connection, tmp_path: Path, probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages cannot be flushed (the disk full): no room, and the check's file is gone."""
    before = sorted(p.name for p in tmp_path.iterdir())

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    assert not room(conn)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_no_room_where_no_file_fits(
    conn: sqlite3.Connection, tmp_path: Path, probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its file cannot be made for want of space (no inode, no block): no room, not a count."""
    monkeypatch.setattr(os, "open", refusing_open(tmp_path, errno.ENOSPC))
    assert not room(conn)


def test_a_link_at_the_old_name_to_the_journal_is_not_followed(
    conn: sqlite3.Connection, tmp_path: Path, probe: str
) -> None:
    """A link put at the name the check used to write to, pointing at the journal: the journal
    keeps every byte (it was truncated and overwritten with random bytes), the link stays."""
    journal = tmp_path / "j.sqlite"
    (tmp_path / OLD_NAME).symlink_to(journal)
    before = journal.read_bytes()
    assert room(conn)
    assert journal.read_bytes() == before
    assert os.readlink(tmp_path / OLD_NAME) == str(journal)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_link_at_the_old_name_to_another_file_is_not_followed(
    conn: sqlite3.Connection, tmp_path: Path, probe: str
) -> None:
    """A link at the old name to any file the broker can write: that file is left as it was."""
    target = tmp_path / "elsewhere" / "precious.txt"
    target.parent.mkdir()
    target.write_bytes(b"kept")
    (tmp_path / OLD_NAME).symlink_to(target)
    assert room(conn)
    assert (target.read_bytes(), (tmp_path / OLD_NAME).is_symlink()) == (b"kept", True)


def test_a_file_at_the_old_name_is_left_alone(
    conn: sqlite3.Connection, tmp_path: Path, probe: str
) -> None:
    """A file or a directory at the old name: neither in the way nor truncated nor removed."""
    (tmp_path / OLD_NAME).write_bytes(b"someone else's")
    (tmp_path / "j.sqlite-room-dir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert room(conn)
    assert (tmp_path / OLD_NAME).read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_directory_no_file_can_be_made_in_asks_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file can be made beside the journal (allowed when its -wal and -shm exist): room by the
    file system's count of free blocks, not never again; no room when that count is short."""
    where = tmp_path / "fixed"
    where.mkdir()
    conn = sqlite3.connect(where / "j.sqlite", isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x BLOB)")
        with no_new_files(where, monkeypatch):
            found = room(conn)
            real = os.statvfs(where)
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            short = os.statvfs_result(
                (*real[:4], ROOM_PAGES * size // real.f_frsize - 1, *real[5:])
            )
            monkeypatch.setattr(os, "statvfs", lambda _: short)
            scarce = room(conn)
        assert (found, scarce) == (True, False)
    finally:
        conn.close()


def test_no_room_for_a_file_moved_away(conn: sqlite3.Connection, tmp_path: Path) -> None:
    """The file removed from under its connection: its writes are refused, so no room."""
    (tmp_path / "j.sqlite").rename(tmp_path / "elsewhere.sqlite")
    assert not room(conn)


def test_a_database_in_memory_has_room() -> None:
    """No file, no disk: room (only the page limit counts)."""
    conn = sqlite3.connect(":memory:")
    try:
        assert room(conn)
    finally:
        conn.close()
