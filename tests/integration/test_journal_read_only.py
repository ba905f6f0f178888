"""A SQLite journal on read-only media: tongban writes to a journal even to read it (its
write-ahead log beside the file, the audit entry of what it shows), so opening one where it cannot
write is refused with what to do, not sqlite3's "unable to open database file".

Tests here run as root, whom permission bits do not stop, and cannot mount a read-only file
system: the operating system's answers for read-only media (EROFS from open, no write access to
the directory) are given by patching ``os.open`` and ``os.access`` for the journal's paths only.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation.cli.main import main
from federation.domain.errors import JournalUnavailable
from replay.sqlite import SQLiteJournal


async def made(path: Path) -> Path:
    journal = SQLiteJournal(path)
    await journal.open()
    await journal.close()
    return path


def read_only_file(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    real = os.open

    def fake(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(file) == path and flags & (os.O_RDWR | os.O_WRONLY):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def read_only_directory(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    real = os.access

    def fake(file: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if Path(file) == directory and mode & os.W_OK:
            return False
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", fake)


async def test_a_journal_on_a_read_only_medium_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await made(tmp_path / "j.sqlite")
    read_only_file(monkeypatch, path)
    with pytest.raises(JournalUnavailable) as info:
        await SQLiteJournal(path).open()
    assert "cannot be written" in str(info.value) and "copy it to a writable place" in str(
        info.value
    )


async def test_a_journal_in_a_read_only_directory_is_refused_unless_its_log_files_are_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write-ahead log goes beside the file: a directory that cannot take it refuses; one
    where the log and its index already are (and can be written) opens as before."""
    path = await made(tmp_path / "j.sqlite")
    read_only_directory(monkeypatch, tmp_path)
    with pytest.raises(JournalUnavailable) as info:
        await SQLiteJournal(path).open()
    assert f"{tmp_path} cannot be written" in str(info.value)
    for extra in ("-wal", "-shm"):
        path.with_name(path.name + extra).touch(mode=0o600)
    journal = SQLiteJournal(path)
    await journal.open()
    await journal.close()


@pytest.mark.parametrize("command", ["verify", "search", "show"])
def test_journal_commands_say_the_medium_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    path = asyncio.run(made(tmp_path / "j.sqlite"))
    read_only_file(monkeypatch, path)
    extra = ["01JD0000000000000000000000"] if command == "show" else []
    result = CliRunner().invoke(main, ["journal", command, *extra, "--journal", str(path)])
    assert result.exit_code == 2, result.output
    assert "cannot be written" in result.output and "Traceback" not in result.output
    assert "unable to open database file" not in result.output
