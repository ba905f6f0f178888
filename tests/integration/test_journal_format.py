"""A journal says which stored format its newest writer wrote; a release refuses a later one.

An instance of an earlier release restarted on a journal a later release has written would fail
on every exchange holding a value it cannot read (docs/operations.md, "Upgrade"). The journal's
mark (``chain_head.format``, replay/formats.py) makes it refuse at open instead, with a message
saying what to do, and change nothing. Run on SQLite and PostgreSQL; the in-memory journal lives
and dies with its release.
"""

from __future__ import annotations

import pytest

from federation.domain.errors import JournalUnavailable
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange
from replay import formats
from replay.journal import AuditEntry
from tests.integration.pg import Store

NOW = 1_790_000_000.0


async def one_exchange(where: Store, key: str = "k1") -> str:
    """Open the journal, write one exchange, close it; the exchange's id."""
    j = where.journal()
    await j.open()
    try:
        new = NewExchange(
            id=new_id(NOW + len(key)),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=key,
            request_hash="sha256:x",
            application={"n": 1},
            received_at=NOW,
        )
        ex, _ = await j.create(new, owner="w", lease_until=NOW + 100)
    finally:
        await j.close()
    return ex.id


async def test_a_journal_is_marked_by_its_first_write_and_not_by_reading(where: Store) -> None:
    """The mark rises with the first write of a value of a later format, in its transaction: a new
    journal, and one from before the mark (no mark: the first format), carry the format of an
    exchange's row digest once an exchange is written; opening it and reading it (search, show,
    verify) leaves the mark as it was."""
    xid = await one_exchange(where)
    assert await where.fetchval("SELECT format FROM chain_head") == formats.ROWS
    await where.execute("UPDATE chain_head SET format = NULL")
    j = where.journal()
    await j.open()
    try:
        assert (await j.get(xid)) is not None
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert await where.fetchval("SELECT format FROM chain_head") is None
    await one_exchange(where, key="k2")
    assert await where.fetchval("SELECT format FROM chain_head") == formats.ROWS


async def test_an_audit_entry_in_a_journal_of_the_first_format_marks_its_own(
    where: Store,
) -> None:
    """An audit entry (what `journal show` writes) is sealed as the second format seals: a journal
    of the first raises to that, not to an exchange row's format or this release's."""
    await one_exchange(where)
    await where.execute("UPDATE chain_head SET format = NULL")
    j = where.journal()
    await j.open()
    try:
        await j.note(AuditEntry(at=NOW, who="ops", role="support", action="show", target="x"))
    finally:
        await j.close()
    assert await where.fetchval("SELECT format FROM chain_head") == formats.SEALED


async def test_a_journal_of_a_later_format_is_refused_and_left_alone(where: Store) -> None:
    """Marked by a later release: open refuses, naming both formats and what to do, and the
    journal's rows and mark are as they were."""
    xid = await one_exchange(where)
    later = formats.WRITES + 1
    await where.execute("UPDATE chain_head SET format = ?", later)
    before = await where.fetch("SELECT seq, hash FROM events ORDER BY seq")
    j = where.journal()
    with pytest.raises(JournalUnavailable) as refused:
        await j.open()
    await j.close()
    message = str(refused.value)
    assert f"holds stored format {later}, written by a later release" in message
    assert f"reads formats 1 to {formats.WRITES}" in message and "Upgrade" in message
    assert await where.fetchval("SELECT format FROM chain_head") == later
    assert await where.fetch("SELECT seq, hash FROM events ORDER BY seq") == before
    await where.execute("UPDATE chain_head SET format = ?", formats.WRITES)
    j = where.journal()
    await j.open()
    try:
        assert (await j.get(xid)) is not None  # the same journal opens again at its own format
    finally:
        await j.close()


async def test_migrate_refuses_a_journal_of_a_later_format(where: Store) -> None:
    """`tongban journal migrate` of an earlier release says the journal is a later one's, where
    it used to say it was up to date."""
    await one_exchange(where)
    await where.execute("UPDATE chain_head SET format = ?", formats.WRITES + 1)
    with pytest.raises(JournalUnavailable, match="written by a later release"):
        await where.journal().migrate()


async def test_a_journal_without_its_chain_head_row_opens_for_verify_to_report(
    where: Store,
) -> None:
    """The mark lives in the chain head's row; a journal whose row was cut out is not refused
    with a crash but opens, and verify says the head is missing."""
    await one_exchange(where)
    await where.execute("DELETE FROM chain_head")
    j = where.journal()
    await j.open()
    try:
        _, broken = await j.verify()
    finally:
        await j.close()
    assert broken is not None and "chain_head row is missing" in str(broken)


def test_the_mark_judges_every_generation() -> None:
    """No mark and every known format open, a later one never."""
    for stored in (None, *formats.READS):
        formats.check(stored, "j")
    with pytest.raises(JournalUnavailable, match="stored format 9"):
        formats.check(9, "j")
