"""Which PostgreSQL refusals mean the server has no room for the journal's writes
(``replay/pgroom.py``), and when the memory of one is cleared. Every recheck here probes (no
interval between probes: that and probes shared are tested in
tests/integration/test_room_probe_shared.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from replay import pgroom
from replay.pgroom import Room, out_of_room

EXTEND = 'could not extend file "base/16384/16390": No space left on device'


@pytest.fixture(autouse=True)
def probe_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgroom, "PROBE_EVERY", 0.0)


def test_disk_full_is_out_of_room() -> None:
    """53100 disk_full is remembered with the server's message and its code."""
    err = asyncpg.DiskFullError(EXTEND)
    assert out_of_room(err) == f"{EXTEND} (SQLSTATE 53100)"


@pytest.mark.parametrize(
    "message", [EXTEND, "could not write to file: No space left on device", "Disk quota exceeded"]
)
def test_an_io_error_for_want_of_space_is_out_of_room(message: str) -> None:
    """Class 58 (an I/O error) counts when it says the disk has no space."""
    assert out_of_room(asyncpg.PostgresIOError(message)) == f"{message} (SQLSTATE 58030)"


@pytest.mark.parametrize(
    "err",
    [
        asyncpg.PostgresIOError("could not read block 3: read only 0 of 8192 bytes"),
        asyncpg.OutOfMemoryError("out of memory"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.CheckViolationError("new row violates check constraint"),
        OSError(28, "No space left on device"),  # the client's own disk: not the server's
    ],
)
def test_other_failures_are_not(err: BaseException) -> None:
    """Out of memory, too many connections, another I/O error or a check: not for want of room."""
    assert out_of_room(err) is None


def test_only_the_first_line_is_kept() -> None:
    """The hint and anything after the first line are left out; the reason stays short."""
    err = asyncpg.DiskFullError(EXTEND + "\nHINT:  Check free disk space.\n" + "x" * 500)
    assert out_of_room(err) == f"{EXTEND} (SQLSTATE 53100)"


async def test_a_probe_clears_it_unless_a_write_was_refused_meanwhile() -> None:
    """Cleared by a probe that succeeds, unless another refusal came while it ran."""
    room = Room()
    room.note(asyncpg.DiskFullError(EXTEND))
    assert room.failing is not None

    async def refused_meanwhile(probe: Any) -> None:
        room.note(asyncpg.DiskFullError(EXTEND))

    async def fine(probe: Any) -> None:
        return None

    await room.recheck(refused_meanwhile)
    assert room.failing is not None
    await room.recheck(fine)
    assert room.failing is None


class _Translated(Exception):
    """What the journal's runner raises for a driver error (its cause kept)."""


def _refusing(exc: BaseException, room: Room | None = None) -> Any:
    async def run(probe: Any) -> None:
        if room is not None:
            room.note(exc)  # the journal notes every failed statement
        raise _Translated("journal: failed") from exc

    return run


async def test_a_probe_refused_for_another_reason_cannot_tell() -> None:
    """A probe refused for want of privilege is not a full disk: the flag stays, the reason
    says both, and the next write that adds rows clears it."""
    room = Room()
    room.note(asyncpg.DiskFullError(EXTEND))
    seen = room.refusals
    denied = asyncpg.InsufficientPrivilegeError("permission denied for table room_probe")
    await room.recheck(_refusing(denied))
    assert room.reason() == (
        f"writes fail: {EXTEND} (SQLSTATE 53100); the probe for room cannot tell"
        " (permission denied for table room_probe (SQLSTATE 42501)):"
        " ready again once a write that adds rows succeeds"
    )
    room.wrote(seen)
    assert (room.failing, room.blind) == (None, None)


async def test_a_write_clears_it_unless_a_refusal_came_meanwhile() -> None:
    """A write that added rows and committed clears the flag, as a commit with room clears
    SQLite's, whether or not the probe can tell; one during which another write was refused for
    want of room does not."""
    room = Room()
    room.note(asyncpg.DiskFullError(EXTEND))
    room.wrote(room.refusals)
    cleared = room.failing
    room.note(asyncpg.DiskFullError(EXTEND))
    seen = room.refusals
    await room.recheck(_refusing(asyncpg.InsufficientPrivilegeError("permission denied")))
    room.note(asyncpg.DiskFullError(EXTEND))
    room.wrote(seen)
    assert (cleared, room.failing) == (None, f"{EXTEND} (SQLSTATE 53100)")


async def test_a_probe_refused_for_want_of_room_raises() -> None:
    """A probe the server refuses for want of room says so: the flag stays, the ping fails with
    it, and an earlier 'cannot tell' is forgotten (the probe did tell)."""
    room = Room()
    room.note(asyncpg.DiskFullError(EXTEND))
    await room.recheck(_refusing(asyncpg.InsufficientPrivilegeError("permission denied")))
    with pytest.raises(_Translated):
        await room.recheck(_refusing(asyncpg.DiskFullError(EXTEND), room))
    assert (room.failing, room.blind) == (f"{EXTEND} (SQLSTATE 53100)", None)


async def test_a_probe_that_cannot_reach_the_server_raises() -> None:
    """A connection lost or a timeout is not the probe's answer: the ping fails for it."""
    room = Room()
    room.note(asyncpg.DiskFullError(EXTEND))
    with pytest.raises(_Translated):
        await room.recheck(_refusing(ConnectionResetError("reset")))
    assert room.blind is None and room.failing is not None
