"""Choosing the journal backend from one setting: a file path (SQLite) or a PostgreSQL URL.

``tongban serve --journal tongban.sqlite`` (the embedded default) or
``--journal postgresql://user@db.example:5432/tongban?schema=gba`` for several instances sharing the
work. The same string works for every ``tongban journal`` command and ``TONGBAN_JOURNAL``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from federation.domain.errors import ConfigError, Problem
from replay.journal import Journal

ENV = "TONGBAN_JOURNAL"


def is_postgres(spec: str | Path) -> bool:
    return isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://"))


def open_journal(spec: str | Path) -> Journal:
    """The journal named by ``spec`` (not yet opened)."""
    if is_postgres(spec):
        assert isinstance(spec, str)
        dsn, schema = _split_schema(spec)
        from replay.postgres import PostgresJournal  # asyncpg only when PostgreSQL is used

        return PostgresJournal(dsn, schema=schema)
    from replay.sqlite import SQLiteJournal

    return SQLiteJournal(Path(spec))


def key_path(spec: str | Path) -> Path | None:
    """Where the applicant-search key file lives (beside a SQLite journal; none for PostgreSQL)."""
    return None if is_postgres(spec) else Path(spec)


def _split_schema(url: str) -> tuple[str, str | None]:
    """Take our own ``schema=`` parameter out of a PostgreSQL URL."""
    parts = urlsplit(url)
    params = parse_qs(parts.query, keep_blank_values=True)
    schema = params.pop("schema", [None])[0]
    if schema is not None and not schema.replace("_", "").isalnum():
        raise ConfigError([Problem(message=f"schema {schema!r}: use letters, digits and _ only")])
    query = urlencode({k: v[-1] for k, v in params.items()})
    return urlunsplit(parts._replace(query=query)), schema
