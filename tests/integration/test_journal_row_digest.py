"""Every column of an exchange's row that a reader is shown as fact is in the digest the chain
records of it (``replay.rows.SHOWN``), on SQLite, PostgreSQL and the in-memory journal; the rest
are named exempt (``replay.rows.EXEMPT``). Rows recorded by an earlier release, with a digest of
fewer columns, keep verifying, and no row can be passed off as one of those.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from federation.domain.models import Direction, State, StateChange
from replay import rows
from replay.memory import InMemoryJournal
from replay.rows import _digest
from tests.integration.pg import Store
from tests.integration.test_journal_tamper import events, filled, new, relink, verify, write

EDITS = [
    ("target", "mo"),
    ("service", "X"),
    ("source", "other"),
    ("idempotency_key", "forged"),
    ("direction", "inbound"),
    ("created_at", 1.0),
    ("updated_at", 1.0),
    ("next_attempt_at", 1.0),
    ("request_hash", "sha256:0"),
]
FULL = (
    "its row (partner, service, source, key, direction, request hash, state, receipt, attempts, "
    "lifecycle, errors, times) is not what the chain recorded at event {}: the row was edited"
)


def old_digest(row: Any) -> bytes:
    """A row digest as the release before this one recorded it (replay.rows.SHOWN_1, 16 bytes)."""
    return _digest(b"tongban/shown/1", (row[k] for k in rows.SHOWN_1))[: rows.SHOWN_BYTES]


@pytest.mark.parametrize(("column", "value"), EDITS)
async def test_an_exchange_moved_or_backdated_is_found(
    where: Store, column: str, value: Any
) -> None:
    """An application moved to another partner, service or source, or backdated: verify names
    the row, and the columns its digest covers."""
    ids = await filled(where, 3)
    await where.execute(f"UPDATE exchanges SET {column} = ? WHERE id = ?", value, ids[1])
    assert await verify(where) == f"exchange {ids[1]}: {FULL.format(6)}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target", "mo"),
        ("service", "X"),
        ("source", "other"),
        ("idempotency_key", "forged"),
        ("direction", Direction.INBOUND),
        ("created_at", 1.0),
        ("updated_at", 1.0),
        ("next_attempt_at", 1.0),
        ("request_hash", "sha256:0"),
    ],
)
async def test_memory_an_exchange_moved_or_backdated_is_found(field: str, value: Any) -> None:
    """The in-memory journal's exchanges are held to the same digest."""
    j = InMemoryJournal()
    await j.open()
    ids = await write(j, 0, 3, 0)
    assert (await j.verify())[1] is None
    j.exchanges[ids[1]] = replace(j.exchanges[ids[1]], **{field: value})
    assert str((await j.verify())[1]) == f"exchange {ids[1]}: {FULL.format(6)}"


@pytest.mark.parametrize("column", rows.EXEMPT)
async def test_exempt_columns_are_bookkeeping(where: Store, column: str) -> None:
    """Leases and callback bookkeeping change without a chain write (claims, heartbeats, the
    notifier): an edit of them is not reported, as docs/security.md says."""
    ids = await filled(where, 3)
    value = 7 if column in ("notify_attempts", "lifecycle_steps") else None
    await where.execute(f"UPDATE exchanges SET {column} = ? WHERE id = ?", value, ids[1])
    assert await verify(where) is None


async def test_every_column_is_covered_or_exempt(where: Store) -> None:
    """A column added to ``exchanges`` must go into the digest or be named exempt, with a reason."""
    await filled(where, 1, refusals=0)
    if where.name == "sqlite":
        found = await where.fetch("SELECT name FROM pragma_table_info('exchanges')")
    else:
        found = await where.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'exchanges' AND table_schema = current_schema()"
        )
    assert {c for (c,) in found} == set(rows.SHOWN) | set(rows.EXEMPT)
    assert not set(rows.SHOWN) & set(rows.EXEMPT)


async def test_rows_of_an_earlier_release_keep_verifying(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal whose rows an earlier release recorded (16-byte digests of fewer columns)
    verifies; a row this release writes again gets the full digest, and an edit of its partner
    is then found."""
    with monkeypatch.context() as m:
        m.setattr(rows, "shown_digest", old_digest)
        ids = await filled(where, 3)
    states = [bytes(s) for (_, x, *_, s) in await events(where) if x and s is not None]
    assert {len(s) for s in states} == {rows.SHOWN_BYTES}
    assert await verify(where) is None
    await where.execute("UPDATE exchanges SET state = 'delivered' WHERE id = ?", ids[0])
    assert "the row was edited" in str(await verify(where))  # what the old digest covered
    await where.execute("UPDATE exchanges SET state = 'delivering' WHERE id = ?", ids[0])

    j = where.journal()
    await j.open()
    try:
        await j.record(ids[2], [], StateChange(state=State.DELIVERED, receipt={"ref": "HK1"}))
    finally:
        await j.close()
    assert await verify(where) is None
    await where.execute("UPDATE exchanges SET target = 'mo' WHERE id = ?", ids[2])
    broken = await verify(where)
    assert broken is not None and broken.startswith(f"exchange {ids[2]}: its row (partner, ")


async def test_memory_rows_of_an_earlier_release_keep_verifying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on the in-memory journal."""
    j = InMemoryJournal()
    await j.open()
    with monkeypatch.context() as m:
        m.setattr(rows, "shown_digest", old_digest)
        ids = await write(j, 0, 3, 0)
    assert (await j.verify())[1] is None
    await j.record(ids[2], [], StateChange(state=State.DELIVERED, receipt={"ref": "HK1"}))
    assert (await j.verify())[1] is None
    j.exchanges[ids[2]] = replace(j.exchanges[ids[2]], target="mo")
    assert str((await j.verify())[1]).startswith(f"exchange {ids[2]}: its row (partner, ")


@pytest.mark.parametrize("relinked", [False, True])
async def test_a_row_cannot_be_downgraded_to_the_old_digest(where: Store, relinked: bool) -> None:
    """Moving an exchange to another partner and putting the old form of digest in its place
    (which the moved row matches, as it covers no partner): the recorded digest is chained, so
    the chain breaks there, or, recomputed, the signed head no longer holds."""
    ids = await filled(where, 3)
    await where.execute("UPDATE exchanges SET target = 'mo' WHERE id = ?", ids[1])
    row = dict(
        zip(
            rows.SHOWN_1,
            (
                await where.fetch(
                    f"SELECT {', '.join(rows.SHOWN_1)} FROM exchanges WHERE id = ?", ids[1]
                )
            )[0],
            strict=True,
        )
    )
    await where.execute("UPDATE events SET state = ? WHERE seq = 6", old_digest(row))
    if relinked:
        await relink(where, await events(where), head=True)
    broken = await verify(where)
    assert broken is not None
    if relinked:
        assert broken.startswith("the chain head: ")
    else:
        assert broken.startswith("event 6 ")


def test_the_form_of_a_digest_is_its_own() -> None:
    """Which columns a recorded digest covers is read from the recorded bytes only: a full digest
    never matches a row by the old columns, an old one never by the new."""
    row = {**rows.created(new(1)), "state": "delivering", "attempts": 1}
    full, old = rows.shown_digest(row), old_digest(row)
    assert len(full) == 1 + rows.SHOWN_BYTES and full[:1] == rows.SHOWN_2
    assert rows.shown_matches(row, full) and rows.shown_matches(row, old)
    moved = {**row, "target": "mo"}
    assert not rows.shown_matches(moved, full)
    assert rows.shown_matches(moved, old)  # what an earlier release could not see
    assert not rows.shown_matches(moved, rows.SHOWN_2 + old)
    assert not rows.shown_matches(row, full[1:]) and not rows.shown_matches(row, b"\x01" + full[1:])


async def test_rekey_gives_rows_of_an_earlier_release_the_full_digest(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tongban journal rekey` (which verifies first, and re-signs the chain) records the full
    digest for rows an earlier release recorded: an edit of their partner is then found."""
    with monkeypatch.context() as m:
        m.setattr(rows, "shown_digest", old_digest)
        ids = await filled(where, 3)
    j = where.journal()
    await j.open()
    try:
        await j.rekey()
    finally:
        await j.close()
    exchange_states = [bytes(s) for (_, x, *_, s) in await events(where) if x and s is not None]
    lengths = sorted(len(s) for s in exchange_states)
    assert lengths == [16] * 3 + [17] * 3  # each exchange's last digest is the full one
    assert await verify(where) is None
    await where.execute("UPDATE exchanges SET target = 'mo' WHERE id = ?", ids[0])
    assert await verify(where) == f"exchange {ids[0]}: {FULL.format(3)}"


async def test_memory_rekey_gives_rows_of_an_earlier_release_the_full_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on the in-memory journal."""
    j = InMemoryJournal()
    await j.open()
    with monkeypatch.context() as m:
        m.setattr(rows, "shown_digest", old_digest)
        ids = await write(j, 0, 3, 0)
    await j.rekey()
    assert (await j.verify())[1] is None
    j.exchanges[ids[0]] = replace(j.exchanges[ids[0]], target="mo")
    assert str((await j.verify())[1]) == f"exchange {ids[0]}: {FULL.format(3)}"
