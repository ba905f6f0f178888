"""A journal of the previous release keeps its stored-format mark until a value only this release
reads is written in it (replay/formats.py, docs/operations.md "Upgrade").

The previous release (format 3) refuses a journal marked 4. Reading, `journal show` (which writes
an audit entry), a console session, an instance's heartbeat, a refusal, and exchanges whose last
error holds no partner's words apart write nothing it cannot read, so they leave the mark at 3 and
the old brokers able to restart; a write that seals the partner's words, or a rekey that seals
them, raises it to 4 in its own transaction. Run on SQLite and PostgreSQL; the in-memory journal
has no stored format.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation.cli.main import main
from replay import formats, lasterror
from replay.instances import Instance
from replay.journal import AuditEntry, Query, Refusal, TrailQuery
from replay.keys import ENV_CHECKPOINTS, ENV_FILE
from replay.sessions import StoredSession
from tests.integration.pg import PgSchema, SQLiteFile, Store
from tests.integration.test_partner_words_at_rest import NEW, OURS, UNMAPPED, refused

PREVIOUS = formats.WORDS - 1  # the format the previous release writes and reads at most
MARK = "SELECT format FROM chain_head"
OLD_ERROR = {"kind": "permanent_error", "message": f"{OURS}: not valid", "status": 400}


async def previous_release_journal(where: Store) -> str:
    """A journal as the previous release leaves it: one rejected exchange whose last error holds
    the partner's words in clear (as it wrote them), marked with its format; the exchange's id."""
    j = where.journal()
    await j.open()
    try:
        with pytest.MonkeyPatch.context() as before:  # as the previous release wrote last_error
            before.setattr(lasterror, "sealed", lambda _seal, _xid, error: dict(error))
            xid = await refused(j, "old-1")
    finally:
        await j.close()
    await where.execute("UPDATE chain_head SET format = ?", PREVIOUS)
    return xid


async def test_reading_showing_and_writing_nothing_new_leave_the_previous_mark(
    where: Store,
) -> None:
    """Get, search and verify, an audit entry (what `journal show` writes), a console session
    opened and ended, an instance's heartbeat, a refusal and an exchange whose error holds no
    partner's words apart leave a journal of the previous release at its format."""
    xid = await previous_release_journal(where)
    j = where.journal()
    await j.open()
    try:
        assert (await j.get(xid)) is not None
        assert [ex.id for ex in await j.search(Query(error="HTTP 400"))] == [xid]
        assert (await j.verify())[1] is None
        now = time.time()
        await j.note(AuditEntry(at=now, who="ops", role="support", action="show", target=xid))
        session = StoredSession(
            token_hash=b"t" * 32, principal="ops", role="support", expires_at=now + 60
        )
        await j.open_session(session, now=now)
        await j.end_session(session.token_hash)
        await j.announce(
            Instance(id="h:1:a", host="h", pid=1, config_version="v", started_at=now, seen_at=now)
        )
        await j.refuse(
            Refusal(
                at=now,
                remote="127.0.0.1",
                method="POST",
                path="/v1/exchanges",
                status=400,
                problem="invalid-json",
                detail="no",
                idempotency_key=None,
                body=b"{",
                body_bytes=1,
            )
        )
        await refused(j, "old-style-1", OLD_ERROR)
        await refused(j, "no-words-1", {**NEW, "partner_message": ""})
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert await where.fetchval(MARK) == PREVIOUS


@pytest.mark.parametrize("error", [NEW, UNMAPPED], ids=["partner-words", "problems"])
async def test_sealing_the_partners_words_raises_the_mark(
    where: Store, error: dict[str, Any]
) -> None:
    """The first last error whose partner's words (or a mapping's problems) are sealed raises the
    mark to this release's format, in the write's own transaction: the journal says so as soon
    as the record returns."""
    await previous_release_journal(where)
    j = where.journal()
    await j.open()
    try:
        await refused(j, "new-1", error)
        assert await where.fetchval(MARK) == formats.WORDS
    finally:
        await j.close()
    assert await where.fetchval(MARK) == formats.WORDS


async def test_a_rekey_that_seals_the_partners_words_raises_the_mark(where: Store) -> None:
    """Rekey seals the words the previous release kept in clear: the journal is this release's."""
    xid = await previous_release_journal(where)
    j = where.journal()
    await j.open()
    try:
        await j.rekey()
        got = await j.get(xid)
    finally:
        await j.close()
    assert got is not None and got.last_error == NEW
    assert await where.fetchval(MARK) == formats.WORDS


async def test_a_rekey_with_no_partners_words_leaves_the_previous_mark(where: Store) -> None:
    """A journal whose errors hold no partner's words apart is rekeyed in the previous format."""
    j = where.journal()
    await j.open()
    try:
        await refused(j, "old-style-1", OLD_ERROR)
    finally:
        await j.close()
    await where.execute("UPDATE chain_head SET format = ?", PREVIOUS)
    j = where.journal()
    await j.open()
    try:
        await j.rekey()
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert await where.fetchval(MARK) == PREVIOUS


async def test_journal_show_leaves_the_previous_mark(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tongban journal show` with a reason, and `--reveal`, on a journal of the previous release:
    the exchange is shown, the audit trail holds both reads, the mark is still the previous
    release's (which then opens the journal again)."""
    xid = await previous_release_journal(where)
    spec = journal_spec(where, monkeypatch)
    show = ["journal", "show", xid, "--journal", spec, "--config", str(Path.cwd())]
    runs = [
        await asyncio.to_thread(CliRunner().invoke, main, [*show, "--reason", "upgrade check"]),
        await asyncio.to_thread(
            CliRunner().invoke, main, [*show, "--reveal", "--reason", "upgrade check"]
        ),
    ]
    for run in runs:
        assert run.exit_code == 0, run.output
        assert xid in run.output
    j = where.journal()
    await j.open()
    try:
        trail = await j.trail(TrailQuery(target=xid))
        _, broken = await j.verify()
    finally:
        await j.close()
    assert broken is None
    assert sorted(e.action for e in trail) == ["journal-reveal", "journal-show"]
    assert await where.fetchval(MARK) == PREVIOUS


def journal_spec(where: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `--journal` says for ``where``, its keys given as an operator gives them."""
    if isinstance(where, SQLiteFile):
        return str(where.path)
    assert isinstance(where, PgSchema)
    keys: Any = where.keys
    monkeypatch.setenv(ENV_FILE, str(keys.file))
    monkeypatch.setenv(ENV_CHECKPOINTS, str(keys.checkpoints))
    separator = "&" if "?" in where.dsn else "?"
    return f"{where.dsn}{separator}schema={where.schema}"
