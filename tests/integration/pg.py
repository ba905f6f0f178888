"""Journal stores for integration tests: a fresh PostgreSQL schema per test, or a SQLite file.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth, database ``test``) unless
``TONGBAN_TEST_POSTGRES`` names another DSN. Each test gets its own schema, dropped afterwards.
Without a server the test is skipped with the reason, except when ``CI`` is set: then it fails,
so a CI run cannot pass by skipping every PostgreSQL test. Journals on a schema share one key file
and one checkpoints file in a directory of the test's own, as the instances of one deployment do.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import pytest

from replay.factory import open_journal
from replay.journal import Backend
from replay.keys import KeyPlace, beside
from replay.postgres import PostgresJournal
from replay.sqlite import SQLiteJournal

DSN = os.environ.get("TONGBAN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required when CI is set: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unreachable ({reason}); set CI=1 to make this a failure")


@dataclass(frozen=True)
class PgSchema:
    """One test's schema: journals on it, and raw SQL (``?`` placeholders) to tamper with it."""

    dsn: str
    schema: str
    keydir: Path | None = None

    name = "postgresql"

    @property
    def keys(self) -> KeyPlace:
        """Where this schema's journals keep their key and checkpoints."""
        if self.keydir is None:
            return KeyPlace()
        return KeyPlace(
            file=self.keydir / "journal.keys", checkpoints=self.keydir / "journal.checkpoints"
        )

    def journal(self, **kw: Any) -> PostgresJournal:
        kw.setdefault("pool_size", 4)
        kw.setdefault("keys", self.keys)
        return PostgresJournal(self.dsn, schema=self.schema, **kw)

    async def execute(self, sql: str, *args: Any) -> None:
        conn = await self._connect()
        try:
            await conn.execute(_numbered(sql), *args)
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await self._connect()
        try:
            return await conn.fetchval(_numbered(sql), *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = await self._connect()
        try:
            return [tuple(r) for r in await conn.fetch(_numbered(sql), *args)]
        finally:
            await conn.close()

    async def _connect(self) -> Any:
        return await asyncpg.connect(self.dsn, server_settings={"search_path": self.schema})


@dataclass(frozen=True)
class SQLiteFile:
    """The same as PgSchema, on a SQLite file."""

    path: Path

    name = "sqlite"

    def journal(self, **kw: Any) -> SQLiteJournal:
        return SQLiteJournal(self.path, **kw)

    async def execute(self, sql: str, *args: Any) -> None:
        with contextlib.closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute(sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]

    @property
    def keys(self) -> KeyPlace:
        """Where this file's journals keep their key and checkpoints (beside it)."""
        return beside(self.path)


Store = PgSchema | SQLiteFile  # an empty journal store of either persistent backend


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1``, ``$2`` …"""
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[PgSchema]:
    """A schema name no one uses yet (the journal creates it at open); dropped with all it holds."""
    try:
        admin = await asyncpg.connect(DSN, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable(f"{DSN}: {exc}")
    schema = f"tongban_test_{secrets.token_hex(6)}"
    keydir = tempfile.TemporaryDirectory(prefix="tongban-keys-")
    try:
        yield PgSchema(DSN, schema, Path(keydir.name))
    finally:
        keydir.cleanup()
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def store(backend: str, tmp_path: Path) -> AsyncIterator[PgSchema | SQLiteFile]:
    """A fresh, empty journal store of ``backend`` (one of BACKENDS)."""
    if backend == "postgresql":
        async with fresh_schema() as pg:
            yield pg
    else:
        yield SQLiteFile(tmp_path / "journal.sqlite")


JOURNALS = ("sqlite", "memory", "postgresql")  # every Journal backend, for behaviour on each


@contextlib.asynccontextmanager
async def unopened_journal_of(backend: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """An empty journal of ``backend`` (one of JOURNALS), not yet opened: for a broker to open
    (its PostgreSQL schema dropped afterwards)."""
    if backend == "postgresql":
        async with fresh_schema() as pg:
            yield pg.journal()
    elif backend == "sqlite":
        yield open_journal(tmp_path / "journal.sqlite")
    else:
        yield open_journal("memory:")


@contextlib.asynccontextmanager
async def open_journal_of(backend: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """An open, empty journal of ``backend`` (one of JOURNALS), closed afterwards."""
    async with unopened_journal_of(backend, tmp_path) as j:
        await j.open()
        try:
            yield j
        finally:
            await j.close()
