"""Mapping sets: each distinct set of mapping file versions stored once and referred to by digest,
read back whole by every reader, and held by verify (run on SQLite, PostgreSQL and memory)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from federation.domain.errors import JournalError
from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.factory import open_journal
from replay.journal import Backend, Query
from tests.integration.pg import BACKENDS, PgSchema, SQLiteFile, store

NOW = 1_790_000_000.0
VERSIONS = {
    "mappings/hk/td-vehicle-licence.yaml": "sha256:" + "a1" * 32,
    "mappings/tables/sex-mf.yaml": "sha256:" + "b2" * 32,
}
REMAPPED = {**VERSIONS, "mappings/hk/td-vehicle-licence.yaml": "sha256:" + "c3" * 32}


@pytest.fixture(params=[*BACKENDS, "memory"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An open journal of each backend."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "memory":
            j: Backend = open_journal("memory:")
        else:
            j = (await stack.enter_async_context(store(request.param, tmp_path))).journal()
        await j.open()
        yield j
        await j.close()


async def mapped_twice(j: Backend, n: int) -> list[str]:
    """``n`` exchanges mapped with VERSIONS, the first one mapped again with REMAPPED."""
    ids = []
    for i in range(n):
        new = NewExchange(
            id=new_id(NOW + i),
            direction=Direction.OUTBOUND,
            source="hk-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=f"k{i}",
            request_hash="sha256:x",
            application={"applicant": {"name": "陳大文"}},
            received_at=NOW + i,
        )
        ex, _ = await j.create(new, owner="w", lease_until=NOW + 100)
        mapped = Event(
            exchange_id=ex.id,
            kind="mapped",
            at=NOW + i + 0.5,
            data={"mapped": {"n": i}, "versions": VERSIONS},
        )
        change = StateChange(state=State.DELIVERING, attempts=1, mapping_versions=VERSIONS)
        await j.record(ex.id, [mapped], change, owner="w")
        ids.append(ex.id)
    again = Event(
        exchange_id=ids[0],
        kind="mapped",
        at=NOW + 50,
        data={"mapped": {"n": 0}, "versions": REMAPPED},
    )
    change = StateChange(
        state=State.RETRY_WAIT, next_attempt_at=NOW + 60, mapping_versions=REMAPPED
    )
    await j.record(ids[0], [again], change, owner="w")
    return ids


async def test_every_reader_sees_the_versions_whole(journal: Backend) -> None:
    """get, search and the events show each mapping's own versions (the earlier mapping of a
    remapped exchange keeps its set), wherever they are stored by reference."""
    ids = await mapped_twice(journal, 3)
    first = await journal.get(ids[0])
    second = await journal.get(ids[1])
    assert first is not None and second is not None
    assert dict(first.mapping_versions) == REMAPPED
    assert [e.data["versions"] for e in first.events if e.kind == "mapped"] == [VERSIONS, REMAPPED]
    assert dict(second.mapping_versions) == VERSIONS
    found = {ex.id: dict(ex.mapping_versions) for ex in await journal.search(Query(limit=10))}
    assert found == {ids[0]: REMAPPED, ids[1]: VERSIONS, ids[2]: VERSIONS}
    _, broken = await journal.verify()
    assert broken is None


async def test_each_distinct_set_is_stored_once_and_an_edited_one_is_named(
    where: PgSchema | SQLiteFile,
) -> None:
    """Five exchanges and a remapping store two sets, not six; a set edited in place is named
    by verify, and an exchange whose set was deleted is a journal error, never other versions."""
    j = where.journal()
    await j.open()
    try:
        ids = await mapped_twice(j, 5)
    finally:
        await j.close()
    assert await where.fetchval("SELECT count(*) FROM mapping_sets") == 2
    await where.execute(
        "UPDATE mapping_sets SET versions = ? WHERE versions = ?",
        b'{"mappings/hk/td-vehicle-licence.yaml":"sha256:forged"}',
        b'{"mappings/hk/td-vehicle-licence.yaml":"sha256:'
        + b"c3" * 32
        + b'","mappings/tables/sex-mf.yaml":"sha256:'
        + b"b2" * 32
        + b'"}',
    )
    fresh = where.journal()
    await fresh.open()
    try:
        _, broken = await fresh.verify()
        assert broken is not None and "mapping set" in str(broken) and "altered" in str(broken)
        with pytest.raises(JournalError, match="mapping set"):
            await fresh.get(ids[0])
        still = await fresh.get(ids[1])
        assert still is not None and dict(still.mapping_versions) == VERSIONS
    finally:
        await fresh.close()
