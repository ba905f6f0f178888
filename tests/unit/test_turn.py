"""The turn to write a shared SQLite journal (replay/turn.py): one holder at a time across open
files of ``<journal>-turn``, a bounded wait, and a turn given back once nobody waits for it."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
    eventually(lambda: free(turn_file), "the abandoned turn to be given back")
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
    fcntl.flock(other, fcntl.LOCK_UN)
    eventually(lambda: free(turn_file), "the closed turn's file to let go")
    eventually(
        lambda: not any(t.name == "journal-turn" for t in threading.enumerate()),
        "the waiting thread to end",
    )


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
