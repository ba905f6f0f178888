"""Room on the PostgreSQL server: whether this instance's writes fail for want of the server's
space, so that its ping (/readyz) says so while reads, and updates in place, still succeed.

Like the SQLite writer's failing flag and its ``room()`` (``replay/dbthread.py``). A write refused
with ``disk_full`` (SQLSTATE 53100: PostgreSQL's "could not extend file …: No space left on
device"), or an I/O error (class 58) for the same want of space, is remembered. Not every commit
clears it: a presence beat (an upsert) or a lease renewal updates rows in place and needs no new
page, so it succeeds on a full disk while every application, which does, is refused.

A write that adds rows (an application taken, an outcome recorded) clears it once it has
committed, unless a write was refused for want of room meanwhile, as a commit clears SQLite's once
there is room: the instance takes applications again, so it does not say it refuses them (the
gauge ``tongban_journal_writes_refused``, which a worker of ``serve --workers`` publishes without
pinging, would otherwise stay at 1 while every worker takes applications). A write refused after
that sets it again.

A probe clears it too, with no application needed: the ping (and a scrape of /metrics), while the
flag is set, inserts rows of random bytes (which no compressing filesystem can shrink), a page
each, into the journal's own ``room_probe`` table (migration 0015), in a transaction it rolls
back, until the table's file has grown by ``ROOM_PAGES`` pages. One probe runs at a time for a
journal: pings that come while it runs wait for its answer and share it; and a probe follows the
last one only after ``PROBE_EVERY`` seconds, the pings between answering with what the flag says
(not ready, and why), so that no number of /readyz asked at once, or in a row, writes more than
one probe's pages every few seconds on a server that is nearly full.

The probe needs INSERT on a journal table and nothing more: not TEMP on the database nor CREATE in
a tablespace, which a least-privilege role may lack. Pages freed by vacuum are reused before the
file grows, so the probe measures the growth itself (``pg_relation_size``) instead of trusting
that new rows take new pages.

A probe that fails for another reason (no INSERT granted, the table missing or not where
``events`` is, a lock, a check the server refuses) cannot tell: it is not taken for a full disk,
and it must not keep /readyz not ready for ever. Then the next write that adds rows clears the
flag, and until then the ping says both: why writes failed and why the probe cannot tell.

Not remembered: ``out_of_memory`` (53200) is one backend's allocation failing, not the journal
being unable to take applications, and ``too_many_connections`` (53300) refuses the ping's own
connection, so /readyz already says not ready.

The state is each instance's own (each process's): instances sharing one PostgreSQL are not told
of another's refused write; one with no refused write yet answers ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from time import monotonic

import asyncpg

from replay.pgsql import Conn

# pages of room a journal whose writes failed for want of space asks for before it says writes
# work again (512 KiB with 8 KiB pages): some applications' worth, as on SQLite
ROOM_PAGES = 64
# rows inserted before the probe gives up waiting for its table's file to grow: pages vacuum
# freed are filled first, and the table holds only probes' rolled-back rows
MAX_ROWS = 8 * ROOM_PAGES
# seconds from the end of one probe to the start of the next: the pings between are answered
# with what the flag says, so that /readyz (which anyone may ask) cannot make the journal write
# 512 KiB at will on a server that is nearly full
PROBE_EVERY = 5.0
DISK_FULL = "53100"
# the strerror texts of ENOSPC and EDQUOT, which PostgreSQL may report under another code
NO_SPACE = ("no space left on device", "disk quota exceeded", "could not extend file")

# Where the probe's table is not where the journal's events are, its room proves nothing.
SAME_TABLESPACE = """
SELECT (SELECT reltablespace FROM pg_class WHERE oid = 'events'::regclass)
     = (SELECT reltablespace FROM pg_class WHERE oid = 'room_probe'::regclass)
"""
SIZE = "SELECT pg_relation_size('room_probe')"
# $1 rows of 16-byte random UUIDs strung together, 7/8 of a page each (7168 bytes with 8 KiB
# pages, PLAIN storage): two never share a page. The subquery names the row so it is drawn anew
# for each.
FILL = """
INSERT INTO room_probe (b)
SELECT (SELECT string_agg(uuid_send(gen_random_uuid()), ''::bytea)
        FROM generate_series(1, current_setting('block_size')::int * 7 / 8 / 16) AS u
        WHERE r > 0)
FROM generate_series(1, $1) AS r
"""


class Blind(Exception):
    """The probe cannot tell whether the server has room (not that it has none)."""


def out_of_room(exc: BaseException) -> str | None:
    """Why ``exc`` says the server has no room for a write (short: the server's message and its
    SQLSTATE, which name no row's content); None if it failed for another reason."""
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    code = str(getattr(exc, "sqlstate", "") or "")
    io_error = code.startswith("58") and any(m in _first_line(exc).lower() for m in NO_SPACE)
    if code == DISK_FULL or io_error:
        return said(exc)
    return None


def said(exc: asyncpg.PostgresError) -> str:
    """The server's message's first line and its SQLSTATE (no row's content)."""
    return f"{_first_line(exc)} (SQLSTATE {getattr(exc, 'sqlstate', '') or '?'})"


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "message", "") or exc).splitlines() or [""])[0][:200]


class _RolledBack(Exception):
    """Raised to leave the probe's transaction by its rollback."""


async def probe(conn: Conn) -> None:
    """Grow the journal's ``room_probe`` table by ``ROOM_PAGES`` pages of random bytes and roll
    them back; raises what the server answers if it has no room for them, and ``Blind`` where
    the table is not beside ``events`` or its file would not grow."""
    if not await conn.fetchval(SAME_TABLESPACE):
        raise Blind("room_probe is not in the tablespace of the journal's events")
    with contextlib.suppress(_RolledBack):
        async with conn.transaction():
            page = int(await conn.fetchval("SELECT current_setting('block_size')::int"))
            start = int(await conn.fetchval(SIZE))
            for _ in range(MAX_ROWS // ROOM_PAGES):
                await conn.execute(FILL, ROOM_PAGES)
                if int(await conn.fetchval(SIZE)) - start >= ROOM_PAGES * page:
                    raise _RolledBack
            raise Blind(f"room_probe took {MAX_ROWS} rows without growing {ROOM_PAGES} pages")


async def shrink(conn: Conn) -> None:
    """Give back the pages a probe left (a rollback keeps what a table grew): vacuum cuts them
    off where this role owns ``room_probe``, and autovacuum does in a minute or so where not (a
    role that does not own it is skipped with a warning, not refused). Best effort: on a full
    disk vacuum itself may be refused."""
    with contextlib.suppress(asyncpg.PostgresError):
        await conn.execute("VACUUM room_probe")


Run = Callable[[Callable[[Conn], Awaitable[None]]], Awaitable[None]]


class Room:
    """This instance's memory of a write refused for want of the server's space."""

    def __init__(self) -> None:
        self.failing: str | None = None  # why, until a probe finds room or a write adds rows
        self.blind: str | None = None  # why the last probe could not tell
        self.refusals = 0  # refusals seen: one during a probe or a write keeps the flag
        self._probe: asyncio.Future[None] | None = None  # the probe under way, shared
        self._probed_at: float | None = None  # when the last probe ended (monotonic)

    def note(self, exc: BaseException) -> None:
        """Remember ``exc`` if it says the server has no room for a write."""
        why = out_of_room(exc)
        if why is not None:
            self.failing = why
            self.refusals += 1

    def reason(self) -> str:
        """What the ping says while the flag is set."""
        if self.blind is None:
            return f"writes fail: {self.failing}"
        return (
            f"writes fail: {self.failing}; the probe for room cannot tell ({self.blind}):"
            " ready again once a write that adds rows succeeds"
        )

    def wrote(self, seen: int) -> None:
        """A write that added rows committed, and no write was refused for want of room since
        ``refusals`` was ``seen``: the server had room for it, and the flag is cleared."""
        if self.refusals == seen:
            self.failing = self.blind = None

    async def recheck(self, run: Run) -> None:
        """While writes fail for want of room, probe with ``run`` (which notes a refusal); the
        flag is cleared if the probe succeeds and no write was refused meanwhile. A probe the
        server refuses for another reason is remembered as blind; one that cannot reach the
        server raises.

        One probe at a time: a call while one runs waits for it and gets its answer (what it
        raises too). None sooner than ``PROBE_EVERY`` seconds after the last one ended: such a
        call returns at once, the flag as it is."""
        if self.failing is None:
            return
        if self._probe is None:
            if self._probed_at is not None and monotonic() - self._probed_at < PROBE_EVERY:
                return
            self._probe = asyncio.ensure_future(self._probed(run))
            # retrieved here too: its callers may all have been cancelled (a client gone)
            self._probe.add_done_callback(_retrieved)
        await asyncio.shield(self._probe)

    async def _probed(self, run: Run) -> None:
        """One probe, its outcome kept (``recheck``)."""
        try:
            await self._probe_once(run)
        finally:
            self._probe, self._probed_at = None, monotonic()

    async def _probe_once(self, run: Run) -> None:
        seen = self.refusals
        try:
            try:
                await run(probe)
            finally:
                await run(shrink)
        except Blind as exc:
            self.blind = str(exc)
            return
        except Exception as exc:
            cause = exc if isinstance(exc, asyncpg.PostgresError) else exc.__cause__
            if not isinstance(cause, asyncpg.PostgresError):
                raise  # the server did not answer: the ping fails for that
            if out_of_room(cause) is not None:
                self.blind = None  # the probe did tell: no room
                raise
            self.blind = said(cause)
            return
        if self.refusals == seen:
            self.failing = self.blind = None


def _retrieved(done: asyncio.Future[None]) -> None:
    """Its exception taken (each caller has it raised), so that none is logged as lost."""
    if not done.cancelled():
        done.exception()
