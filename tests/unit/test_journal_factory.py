"""Choosing a journal backend by URL scheme (replay/factory.py); nothing is opened here."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.domain.errors import ConfigError
from replay.factory import journal_file, key_path, open_journal, register_backend
from replay.memory import InMemoryJournal
from replay.postgres import PostgresJournal
from replay.sqlite import SQLiteJournal


def test_a_plain_path_and_sqlite_urls_are_sqlite_files() -> None:
    """A path, ``sqlite:PATH`` and ``sqlite:///ABS`` all name a SQLite file."""
    cases = {
        "tongban.sqlite": Path("tongban.sqlite"),
        Path("/var/j.sqlite"): Path("/var/j.sqlite"),
        "sqlite:rel/j.sqlite": Path("rel/j.sqlite"),
        "sqlite:///var/lib/j.sqlite": Path("/var/lib/j.sqlite"),
        "/data/odd:name.sqlite": Path("/data/odd:name.sqlite"),
    }
    for spec, path in cases.items():
        journal = open_journal(spec)
        assert isinstance(journal, SQLiteJournal) and journal.path == path, spec
        assert journal_file(spec) == key_path(spec) == path


def test_postgresql_urls_keep_their_schema_apart() -> None:
    """``postgresql://`` and ``postgres://`` open PostgreSQL; ``schema=`` is ours, not libpq's."""
    for scheme in ("postgresql", "postgres", "PostgreSQL"):
        journal = open_journal(f"{scheme}://u@db:5432/t?schema=gba&application_name=a")
        assert isinstance(journal, PostgresJournal)
        assert journal.schema == "gba" and journal.dsn.endswith("/t?application_name=a")
        assert journal_file(f"{scheme}://u@db/t") is None
    with pytest.raises(ConfigError, match="letters, digits"):
        open_journal("postgresql://u@db/t?schema=a;drop")


def test_memory_journals_are_new_each_time() -> None:
    """``memory:`` is a fresh in-memory journal, with no file and no key beside it."""
    first, second = open_journal("memory:"), open_journal("memory:")
    assert isinstance(first, InMemoryJournal) and first is not second
    assert key_path("memory:") is None


def test_an_unknown_url_scheme_is_an_error_not_a_file() -> None:
    """``mysql://…`` names the schemes there are instead of making a file called that."""
    with pytest.raises(ConfigError, match=r"unknown scheme \(use memory:, postgres:"):
        open_journal("mysql://u@db/t")
    with pytest.raises(ConfigError, match="sqlite:///PATH"):
        open_journal("sqlite://host/j.sqlite")


def test_a_registered_backend_is_opened_by_its_scheme() -> None:
    """register_backend adds a scheme; the opener gets the whole setting."""
    seen: list[str] = []

    def opener(setting: str) -> InMemoryJournal:
        seen.append(setting)
        return InMemoryJournal()

    register_backend("test-mem", opener, file=lambda s: Path(s.split(":", 1)[1]))
    assert isinstance(open_journal("test-mem:x"), InMemoryJournal)
    assert seen == ["test-mem:x"]
    assert journal_file("test-mem:x") == Path("x")
