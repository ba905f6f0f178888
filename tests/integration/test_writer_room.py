"""The check a SQLite writer that failed for want of the disk makes after each of its commits
(``replay.dbthread.room``): room for ``ROOM_PAGES`` pages both under the file's page limit and on
its disk, proved by writing them beside the file; nothing is left behind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from replay.dbthread import ROOM_PAGES, room


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A small database file with one table."""
    made = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    made.execute("CREATE TABLE t (x BLOB)")
    yield made
    made.close()


def test_room_on_a_disk_with_space_leaves_no_file(conn: sqlite3.Connection, tmp_path: Path) -> None:
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


def test_no_room_where_the_disk_refuses_the_pages(conn: sqlite3.Connection, tmp_path: Path) -> None:
    """The pages cannot be written beside the file (here a directory is in their way): no room."""
    (tmp_path / "j.sqlite-room").mkdir()
    assert not room(conn)


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
