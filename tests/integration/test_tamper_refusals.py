"""A refusal row added outside the chain: verify names it, wherever its number falls.

Every refusal tongban keeps is recorded in the chain (a ``~refusal`` event with its digest) in the
transaction that stores it. Only a journal of the first releases (no stored-format mark, no full
row digest in its chain) may hold rows with no record; in any other, a row the chain did not
record was added by someone else: in a journal that has refused nothing yet, or numbered below
the oldest recorded one. Run on SQLite and PostgreSQL with the same SQL; the in-memory journal has
no table to add a row to.
"""

from __future__ import annotations

from typing import Any

import pytest

from replay import rows
from tests.integration.pg import Store
from tests.integration.test_tamper_tombstones import (
    _first_digest,
    delivered,
    traffic,
    verify,
    written,
)

COLUMNS = "at, remote, method, path, status, problem, detail, idempotency_key, body, body_bytes"
FORGED = (1_796_000_000.0, "203.0.113.9", "POST", "/v1/exchanges", 400, "invalid-request")


async def forge(where: Store, seq: int | None = None) -> None:
    """A refusal row written by SQL (a refused request tongban never saw)."""
    values = (*FORGED, "forged", None, b"{}", 2)
    if seq is None:
        marks = ", ".join("?" * len(values))
        await where.execute(f"INSERT INTO refusals ({COLUMNS}) VALUES ({marks})", *values)
        return
    marks = ", ".join("?" * (len(values) + 1))
    override = " OVERRIDING SYSTEM VALUE" if where.name == "postgresql" else ""
    await where.execute(
        f"INSERT INTO refusals (seq, {COLUMNS}){override} VALUES ({marks})", seq, *values
    )


async def test_a_refusal_added_to_a_journal_that_refused_nothing_is_found(where: Store) -> None:
    """Exchanges, no refusal yet, one row added: named."""

    async def two(j: Any) -> None:
        await delivered(j, 0)
        await delivered(j, 1)

    await written(where, two)
    assert await verify(where) is None
    await forge(where)
    broken = await verify(where)
    assert broken is not None and broken.startswith("refusal ")
    assert broken.endswith("is not in the chain: it was added outside tongban")


async def test_a_refusal_added_to_an_empty_journal_is_found(where: Store) -> None:
    """A journal opened and closed, nothing written, one row added: named."""

    async def nothing(j: Any) -> None:
        return None

    await written(where, nothing)
    await forge(where)
    assert "it was added outside tongban" in str(await verify(where))


@pytest.mark.parametrize("seq", [0, -5])
async def test_a_refusal_numbered_below_the_oldest_recorded_is_found(
    where: Store, seq: int
) -> None:
    """A row numbered below every recorded refusal: named with its number."""

    async def some(j: Any) -> None:
        await traffic(j, 0, 2)

    await written(where, some)
    assert await verify(where) is None
    await forge(where, seq)
    assert (
        await verify(where) == f"refusal {seq}: is not in the chain: it was added outside tongban"
    )


async def test_the_first_releases_refusal_rows_still_verify(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal as the first releases left it (no mark, row digests of fewer columns) holding a
    refusal row with no record verifies; once a later release marked it, the row is named."""

    async def old(j: Any) -> None:
        await delivered(j, 0)

    monkeypatch.setattr(rows, "shown_digest", _first_digest)
    await written(where, old)
    monkeypatch.undo()
    await forge(where)  # the first releases kept refusals outside the chain
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) is None
    await where.execute("UPDATE chain_head SET format = ?", 2)
    assert "it was added outside tongban" in str(await verify(where))


async def test_a_mark_set_back_to_none_claims_nothing(where: Store) -> None:
    """The stored-format mark set back to none to pass a forged row off as the first releases':
    the chain's full row digests show a later release wrote the journal."""

    async def some(j: Any) -> None:
        await traffic(j, 0, 2)

    await written(where, some)
    await forge(where, 0)
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) == "refusal 0: is not in the chain: it was added outside tongban"
