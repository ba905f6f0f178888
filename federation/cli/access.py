"""The journal a command names: opened for the command's work, and its applicant-search key.

Every command works on the journal itself, so it needs no running broker; one may be running all
the same (SQLite takes a second writer, the hash chain is read afresh in every transaction, and the
broker picks replayed exchanges up on its next poll). Commands see the journal only through
``replay.journal.Backend`` (the runtime's ``Journal`` and the operators' ``JournalAdmin``), whatever
backend the setting names.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from federation.cli.failures import Failure
from federation.cli.lang import _
from federation.cli.problems import said_all
from federation.domain.errors import ConfigError, JournalError
from replay.factory import journal_file, key_path, open_journal
from replay.journal import Backend
from replay.refs import ENV, load_key, reference

T = TypeVar("T")


def existing_file(spec: str) -> Path | None:
    """The file the journal ``spec`` names, if it is one; a missing file is a Failure (a typo
    must not make a new, empty journal)."""
    try:
        file = journal_file(spec)
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc
    if file is not None and not file.is_file():
        raise Failure(
            _("no journal at %(spec)s: give the file `tongban serve` writes with --journal FILE")
            % {"spec": spec}
        )
    return file


def with_journal(spec: str, work: Callable[[Backend], Awaitable[T]]) -> T:
    """Run ``work`` on the open journal ``spec`` names; journal trouble is a Failure."""
    existing_file(spec)

    async def go() -> T:
        journal = open_journal(spec)
        await journal.open()
        try:
            return await work(journal)
        finally:
            await journal.close()

    return run(go())


def run(work: Awaitable[T]) -> T:
    """Run ``work`` to its end; a journal or configuration error is a Failure naming the journal."""

    async def go() -> T:
        return await work

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc  # names the journal already
    except JournalError as exc:
        raise Failure(str(exc)) from exc


def applicant_ref(journal_path: str, value: str) -> bytes:
    """The keyed hash of ``value`` with the journal's search key (never the value itself)."""
    try:
        beside = key_path(journal_path)
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc
    key_file = beside.with_name(beside.name + ".key") if beside else Path(ENV)
    if not os.environ.get(ENV) and (beside is None or not key_file.is_file()):
        # load_key would make a new key, with which nothing already journalled could be found.
        raise Failure(
            _(
                "cannot search by applicant: no search key (%(file)s or %(env)s); the broker "
                "makes the key file when partners.yaml sets search.applicant_fields"
            )
            % {"file": key_file, "env": ENV}
        )
    try:
        return reference(load_key(beside), value)
    except (ConfigError, OSError, ValueError) as exc:
        raise Failure(_("cannot read the search key: %(error)s") % {"error": exc}) from None
