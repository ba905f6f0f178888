"""Choosing the journal backend from one setting, by URL scheme: a registry of backends.

``tongban serve --journal tongban.sqlite`` (the embedded default; ``sqlite:tongban.sqlite`` and
``sqlite:///var/lib/tongban/journal.sqlite`` say the same explicitly),
``--journal postgresql://user@db.example:5432/tongban?schema=gba`` (or ``postgres://``) for several
instances sharing the work, ``memory:`` for a journal that lives as long as the process. The same
string works for every ``tongban journal`` command and ``TONGBAN_JOURNAL``.

A backend registers an opener for its scheme with ``register_backend``; ``open_journal`` looks the
scheme up. A string without a registered scheme is a SQLite file path (a path may contain a colon);
one that looks like a URL (``scheme://…``) with an unknown scheme is an error, not a file.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from federation.domain.errors import ConfigError, Problem
from federation.domain.texts import said
from replay.journal import Backend
from replay.memory import InMemoryJournal
from replay.sqlite import SQLiteJournal

ENV = "TONGBAN_JOURNAL"
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@dataclass(frozen=True, kw_only=True)
class Registration:
    """How one scheme's journals are opened, and the file they live in (if any)."""

    open: Callable[[str], Backend]  # the whole setting → a backend, not yet opened
    file: Callable[[str], Path | None] = lambda _: None


_BACKENDS: dict[str, Registration] = {}


def register_backend(
    scheme: str,
    opener: Callable[[str], Backend],
    *,
    file: Callable[[str], Path | None] | None = None,
) -> None:
    """Open settings of ``scheme:`` with ``opener``; ``file`` names the file such a journal lives in
    (the CLI checks it exists; the applicant-search key is kept beside it)."""
    _BACKENDS[scheme.lower()] = Registration(open=opener, file=file or (lambda _: None))


def _registration(spec: str | Path) -> tuple[Registration, str]:
    """The backend ``spec`` names, and ``spec`` as its opener takes it."""
    if isinstance(spec, Path):
        return _BACKENDS["sqlite"], f"sqlite:{spec}"
    m = _URL.match(spec)
    if m is not None and m.group(1).lower() in _BACKENDS:
        return _BACKENDS[m.group(1).lower()], spec
    if m is not None and spec[m.end() :].startswith("//"):
        known = ", ".join(f"{s}:" for s in sorted(_BACKENDS))
        unknown = said(
            "journal %(scheme)s//…: unknown scheme (use %(known)s)",
            scheme=spec.split("//")[0],
            known=known,
        )
        raise ConfigError([Problem(text=unknown)])
    return _BACKENDS["sqlite"], f"sqlite:{spec}"


def open_journal(spec: str | Path) -> Backend:
    """The journal ``spec`` names (not yet opened)."""
    registration, setting = _registration(spec)
    return registration.open(setting)


def journal_file(spec: str | Path) -> Path | None:
    """The file the journal ``spec`` names lives in (None for a server or memory)."""
    registration, setting = _registration(spec)
    return registration.file(setting)


def key_path(spec: str | Path) -> Path | None:
    """Where the applicant-search key file lives: beside a SQLite journal; none for the others."""
    return journal_file(spec)


# -- the built-in backends ------------------------------------------------------------------------


def sqlite_path(setting: str) -> Path:
    """``sqlite:j.sqlite`` → ``j.sqlite``; ``sqlite:///var/j.sqlite`` → ``/var/j.sqlite``."""
    rest = setting.split(":", 1)[1]
    if rest.startswith("//"):
        parts = urlsplit(setting)
        if parts.netloc:
            text = said(
                "journal %(setting)s: a SQLite journal is a file: sqlite:///PATH", setting=setting
            )
            raise ConfigError([Problem(text=text)])
        return Path(parts.path)
    return Path(rest)


def _open_postgres(setting: str) -> Backend:
    # asyncpg and the PostgreSQL backend are imported only when a postgresql:// journal is opened:
    # every `tongban` command imports this registry, and most never touch PostgreSQL. The import
    # is explicit here rather than a function-local `from … import`, so that it reads as what it
    # is: a lazy dependency, loaded by name on first use.
    module = importlib.import_module("replay.postgres")
    dsn, schema = _split_schema(setting)
    journal: Backend = module.PostgresJournal(dsn, schema=schema)
    return journal


def _split_schema(url: str) -> tuple[str, str | None]:
    """Take our own ``schema=`` parameter out of a PostgreSQL URL."""
    parts = urlsplit(url)
    params = parse_qs(parts.query, keep_blank_values=True)
    schema = params.pop("schema", [None])[0]
    if schema is not None and not schema.replace("_", "").isalnum():
        text = said("schema %(schema)r: use letters, digits and _ only", schema=schema)
        raise ConfigError([Problem(text=text)])
    query = urlencode({k: v[-1] for k, v in params.items()})
    return urlunsplit(parts._replace(query=query)), schema


register_backend("sqlite", lambda s: SQLiteJournal(sqlite_path(s)), file=sqlite_path)
register_backend("postgresql", _open_postgres)
register_backend("postgres", _open_postgres)
register_backend("memory", lambda _: InMemoryJournal())
