"""Room on the PostgreSQL server: whether this instance's writes fail for want of the server's
space, so that its ping (/readyz) says so while reads, and updates in place, still succeed.

Like the SQLite writer's failing flag and its ``room()`` (``replay/dbthread.py``). A write refused
with ``disk_full`` (SQLSTATE 53100: PostgreSQL's "could not extend file …: No space left on
device"), or an I/O error (class 58) for the same want of space, is remembered. A commit does not
clear it: a presence beat (an upsert) or a lease renewal updates rows in place and needs no new
page, so it succeeds on a full disk while every application, which does, is refused. Only a probe
clears it: the ping, while the flag is set, writes ``ROOM_PAGES`` pages into a temporary table in
the journal's tablespace (where its ``events`` table lives), in a transaction it rolls back. A new
table has no page with free space, so each of those pages extends a file on the server's disk.

Not remembered: ``out_of_memory`` (53200) is one backend's allocation failing, not the journal
being unable to take applications, and ``too_many_connections`` (53300) refuses the ping's own
connection, so /readyz already says not ready.

The state is each instance's own (each process's): instances sharing one PostgreSQL are not told
of another's refused write; one with no refused write yet answers ready.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from replay.pgsql import Conn

# pages of room (8 KiB each) a journal whose writes failed for want of space asks for before it
# says writes work again: some applications' worth, as on SQLite (``replay/dbthread.py``)
ROOM_PAGES = 64
DISK_FULL = "53100"
# the strerror texts of ENOSPC and EDQUOT, which PostgreSQL may report under another code
NO_SPACE = ("no space left on device", "disk quota exceeded", "could not extend file")

# The tablespace of the journal's events table (0 in pg_class: the database's default).
TABLESPACE = """
SELECT t.spcname FROM pg_tablespace t
WHERE t.oid = coalesce(
    nullif((SELECT c.reltablespace FROM pg_class c WHERE c.oid = 'events'::regclass), 0),
    (SELECT d.dattablespace FROM pg_database d WHERE d.datname = current_database()))
"""
# PLAIN storage: no compression, no TOAST, so a row of 5000 bytes takes a page of its own.
PROBE = (
    "CREATE TEMPORARY TABLE tongban_room_probe (b text) ON COMMIT DROP TABLESPACE {tablespace}",
    "ALTER TABLE tongban_room_probe ALTER COLUMN b SET STORAGE PLAIN",
    f"INSERT INTO tongban_room_probe SELECT repeat('r', 5000) FROM generate_series(1, {ROOM_PAGES})",
)


def out_of_room(exc: BaseException) -> str | None:
    """Why ``exc`` says the server has no room for a write (short: the server's message and its
    SQLSTATE, which name no row's content); None if it failed for another reason."""
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    code = str(getattr(exc, "sqlstate", "") or "")
    message = str(getattr(exc, "message", "") or exc).splitlines()[0][:200]
    io_error = code.startswith("58") and any(m in message.lower() for m in NO_SPACE)
    if code == DISK_FULL or io_error:
        return f"{message} (SQLSTATE {code})"
    return None


class _RolledBack(Exception):
    """Raised to leave the probe's transaction by its rollback."""


async def probe(conn: Conn) -> None:
    """Write ``ROOM_PAGES`` new pages in the journal's tablespace and roll them back; raises
    what the server answers if it has no room for them."""
    tablespace = await conn.fetchval(TABLESPACE)
    with contextlib.suppress(_RolledBack):
        async with conn.transaction():
            for statement in PROBE:
                await conn.execute(statement.format(tablespace=_quoted(tablespace)))
            raise _RolledBack


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Room:
    """This instance's memory of a write refused for want of the server's space."""

    def __init__(self) -> None:
        self.failing: str | None = None  # why, until a probe finds room
        self._refusals = 0  # refusals seen: one during a probe keeps the flag

    def note(self, exc: BaseException) -> None:
        """Remember ``exc`` if it says the server has no room for a write."""
        why = out_of_room(exc)
        if why is not None:
            self.failing = why
            self._refusals += 1

    async def recheck(
        self, run: Callable[[Callable[[Conn], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        """While writes fail for want of room, probe with ``run`` (which notes a refusal); the
        flag is cleared if the probe succeeds and no write was refused meanwhile."""
        if self.failing is None:
            return
        seen = self._refusals
        await run(probe)
        if self._refusals == seen:
            self.failing = None
