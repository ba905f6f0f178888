"""The turn to write a shared SQLite journal (replay/turn.py): one holder at a time across open
files of ``<journal>-turn``, a bounded wait, and a turn given back once nobody waits for it."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from federation.domain.errors import JournalUnavailable
from replay.turn import Turn, TurnNotHad


@pytest.fixture
def turn_file(tmp_path: Path) -> Path:
    return tmp_path / "j.sqlite-turn"


@pytest.fixture
def other(turn_file: Path) -> Iterator[int]:
    """Another open file of the turn, as another process has: its flock excludes ours."""
    fd = os.open(turn_file, os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def free(path: Path) -> bool:
    """Whether a third open file could take the turn now."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def eventually(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def settled(turn: Turn) -> None:
    """Wait until the turn's waiting thread, if any, has done what it does once it has the turn."""
    if turn._helper is not None:
        turn._helper.join(10.0)
        assert not turn._helper.is_alive(), "the waiting thread never had the turn"


def test_a_free_turn_is_taken_and_given_back(turn_file: Path) -> None:
    turn = Turn(turn_file, timeout=1.0)
    turn.take()
    assert not free(turn_file)
    turn.give()
    assert free(turn_file)
    turn.close()


def test_a_held_turn_is_had_once_its_holder_lets_go(turn_file: Path, other: int) -> None:
    """The writer waits while another holds the turn and has it as soon as that one gives it."""
    fcntl.flock(other, fcntl.LOCK_EX)
    turn = Turn(turn_file, timeout=30.0)
    had = threading.Event()

    def take() -> None:
        turn.take()
        had.set()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not had.wait(0.3), "the turn was had while another held it"
    fcntl.flock(other, fcntl.LOCK_UN)
    assert had.wait(10.0)
    waiter.join()
    assert not free(turn_file)
    turn.give()
    assert free(turn_file)
    turn.close()


def test_a_turn_not_had_in_time_says_so_and_is_given_back_when_it_comes(
    turn_file: Path, other: int
) -> None:
    """TurnNotHad after the timeout, a "database is locked" to the journal; the thread that kept
    waiting gives the turn straight back, so nobody is locked out by a writer that gave up."""
    fcntl.flock(other, fcntl.LOCK_EX)
    turn = Turn(turn_file, timeout=0.2)
    with pytest.raises(TurnNotHad, match="database is locked") as caught:
        turn.take()
    assert "j.sqlite-turn" in str(caught.value)
    fcntl.flock(other, fcntl.LOCK_UN)
    settled(turn)  # the waiting thread had the turn, found nobody wanting it, gave it back
    assert free(turn_file)
    turn.take()  # and the writer has it again afterwards
    assert not free(turn_file)
    turn.give()
    turn.close()


def test_a_writer_that_asks_again_joins_the_wait_already_in_the_kernel(
    turn_file: Path, other: int
) -> None:
    """A second take after a timeout waits on the same pending turn and gets it."""
    fcntl.flock(other, fcntl.LOCK_EX)
    turn = Turn(turn_file, timeout=0.1)
    with pytest.raises(TurnNotHad):
        turn.take()
    threading.Timer(0.2, fcntl.flock, (other, fcntl.LOCK_UN)).start()
    turn._timeout = 10.0  # the second wait outlasts the holder
    turn.take()
    assert not free(turn_file)
    turn.give()
    eventually(lambda: free(turn_file), "the turn to be free")
    turn.close()


def test_closed_while_waiting_the_file_is_closed_once_the_turn_comes(
    turn_file: Path, other: int
) -> None:
    """Closing a turn whose thread still waits leaves that thread to close the file, so the turn
    it gets at last goes back at once."""
    fcntl.flock(other, fcntl.LOCK_EX)
    turn = Turn(turn_file, timeout=0.1)
    with pytest.raises(TurnNotHad):
        turn.take()
    turn.close()
    os.fstat(turn._fd)  # still open: the waiting thread closes it
    fcntl.flock(other, fcntl.LOCK_UN)
    settled(turn)
    assert free(turn_file)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(turn._fd)


def test_the_turn_file_is_private_and_missing_directories_mean_no_turn(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        turn = Turn.beside(tmp_path / "j.sqlite", timeout=1.0)
    finally:
        os.umask(old)
    assert turn is not None and turn.path == tmp_path / "j.sqlite-turn"
    assert (turn.path.stat().st_mode & 0o777) == 0o600
    turn.close()
    assert Turn.beside(tmp_path / "missing" / "j.sqlite", timeout=1.0) is None


def test_a_turn_file_open_to_others_is_narrowed(tmp_path: Path) -> None:
    """Anyone who can open the file can hold the turn and stop every write: a copied or restored
    one left 0644 is made 0600."""
    path = tmp_path / "j.sqlite-turn"
    path.touch()
    path.chmod(0o644)
    Turn(path, timeout=1.0).close()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_writable_journal_whose_turn_cannot_be_opened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing without turns would bring the starvation back unnoticed: the open fails and says
    which file (here the turn's name is taken by a directory); a journal this process may not
    write anyway simply has no turn."""
    journal = tmp_path / "j.sqlite"
    journal.touch()
    (tmp_path / "j.sqlite-turn").mkdir()
    with pytest.raises(JournalUnavailable, match=r"j\.sqlite-turn"):
        Turn.beside(journal, timeout=1.0)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # read-only to this process
    assert Turn.beside(journal, timeout=1.0) is None


def test_a_file_system_without_locks_means_writing_without_turns(
    turn_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOLCK (no locks on this file system): the writer goes on with SQLite's lock alone, as
    before turns, rather than failing or dying."""
    turn = Turn(turn_file, timeout=1.0)

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    turn.take()
    turn.give()
    monkeypatch.undo()
    turn.close()
