"""The counts /metrics reads (Journal.tally, Journal.counts) against the exchanges there are: on
every backend after many moves and archiving, and on PostgreSQL, where triggers append changes
that a tally folds in (migration 0009), around concurrent writers and compactions."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from federation.domain.ids import new_id
from federation.domain.models import TRANSITIONS, NewExchange, State, StateChange
from replay import pgsql, tally
from replay.journal import Backend
from replay.tally import WAITING, Tally
from tests.integration.pg import JOURNALS, PgSchema, fresh_schema, open_journal_of
from tests.integration.test_journal_instances import instance
from tests.integration.test_metrics_journal import new as counted_exchange

NOW = 1_790_000_000.0
ROUTES = [("hk", "TD-VL-RENEW"), ("hk", "TD-DL-RENEW"), ("mo", "DSAJ-LIC"), ("sc", "HF-WITHDRAW")]
TRUTH = "SELECT state, target, service, count(*) FROM exchanges GROUP BY state, target, service"
INSERT = (
    "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
    " request_hash, state, attempts, created_at, updated_at)"
    " VALUES ($1, 'outbound', 'gd-portal', $2, 'S', $3, 'h', $4, 1, $5, $5)"
)


@pytest.fixture
def compact_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL tallies fold the changes in once more than 3 have piled up."""
    monkeypatch.setattr(tally, "COMPACT_AFTER", 3)


@pytest.fixture(params=JOURNALS)
async def journal(
    request: pytest.FixtureRequest, tmp_path: Path, compact_often: None
) -> AsyncIterator[Backend]:
    """An open journal of each backend."""
    async with open_journal_of(request.param, tmp_path) as j:
        yield j


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema (fails under CI when there is no server)."""
    async with fresh_schema() as schema:
        yield schema


def new(key: str, partner: str, service: str, at: float = NOW) -> NewExchange:
    return counted_exchange(key, partner, service, at)


def expected(model: dict[str, tuple[State, str, str, float]]) -> Tally:
    """The tally of the exchanges the test knows it left."""
    oldest: dict[str, float] = {}
    for state, partner, _, at in model.values():
        if state in WAITING:
            oldest[partner] = min(oldest.get(partner, at), at)
    counts = Counter((s.value, p, v) for s, p, v, _ in model.values())
    return Tally(exchanges=dict(counts), oldest_waiting=oldest)


def by_state(model: dict[str, tuple[State, str, str, float]]) -> dict[str, int]:
    return dict(Counter(s.value for s, _, _, _ in model.values()))


def walk(rng: random.Random, start: State, steps: int) -> Iterator[State]:
    """Up to ``steps`` moves the broker could make from ``start`` (replays included)."""
    state = start
    for _ in range(steps):
        state = rng.choice(sorted(TRANSITIONS[state]))
        yield state


async def test_the_counts_follow_many_moves_and_archiving(journal: Backend, tmp_path: Path) -> None:
    """Forty exchanges on four routes, each moved up to eight times at random (replays of ended
    ones included), tallied every few moves, then the ended ones archived: every tally and
    counts() equal what the test knows it left, on every backend (on PostgreSQL with the changes
    folded in along the way)."""
    rng = random.Random(9)
    model: dict[str, tuple[State, str, str, float]] = {}
    for i in range(40):
        partner, service = ROUTES[i % len(ROUTES)]
        at = NOW + rng.randrange(1000)
        ex, _ = await journal.create(new(f"k{i}", partner, service, at), owner="w", lease_until=NOW)
        model[ex.id] = (State.RECEIVED, partner, service, at)
    moves = 0
    for xid in list(model):
        start, partner, service, at = model[xid]
        for state in walk(rng, start, rng.randrange(9)):
            await journal.record(xid, [], StateChange(state=state, release_lease=True))
            model[xid] = (state, partner, service, at)
            moves += 1
            if moves % 7 == 0:
                assert await journal.tally() == expected(model)
    assert moves > 100
    assert await journal.tally() == expected(model)
    assert await journal.counts() == by_state(model)
    archived, _ = await journal.archive(older_than=NOW + 10**9, out=tmp_path / "a.jsonl.gz")
    ended = [xid for xid, (state, *_) in model.items() if state.terminal]
    assert archived == len(ended) > 0
    for xid in ended:
        del model[xid]
    assert await journal.tally() == expected(model)
    assert await journal.counts() == by_state(model)


# -- PostgreSQL: changes appended by triggers, folded in by tallies --------------------------


async def truth(pg: PgSchema) -> dict[tuple[str, str, str], int]:
    """The counts of a GROUP BY over every exchange."""
    return {(s, t, v): n for s, t, v, n in await pg.fetch(TRUTH)}


async def pending(pg: PgSchema) -> int:
    """Changes not yet folded into exchange_counts."""
    n: int = await pg.fetchval("SELECT count(*) FROM exchange_count_changes")
    return n


async def connect(pg: PgSchema) -> Any:
    return await asyncpg.connect(pg.dsn, server_settings={"search_path": f'"{pg.schema}"'})


async def test_pg_counts_equal_a_full_count_after_changes_behind_the_journal(
    pg: PgSchema, compact_often: None
) -> None:
    """The changes the triggers append, with or without folding them in, count exactly what a
    GROUP BY counts after inserts, moves, edits made in SQL behind the journal's back (state,
    partner, several rows per statement) and deletes; a fold empties the changes and a tally
    that finds more than COMPACT_AFTER folds them in."""
    j = pg.journal()
    await j.open()
    try:
        for i in range(30):
            partner, service = ROUTES[i % len(ROUTES)]
            ex, _ = await j.create(new(f"k{i}", partner, service), owner="w", lease_until=NOW)
            if i % 3:
                await j.record(ex.id, [], StateChange(state=State.QUEUED), owner="w")
        await pg.execute("UPDATE exchanges SET state = 'failed' WHERE state = 'queued'")
        await pg.execute("UPDATE exchanges SET target = 'yn' WHERE service = 'DSAJ-LIC'")
        await pg.execute("UPDATE exchanges SET lease_until = 1 WHERE target = 'hk'")  # no move
        await pg.execute("DELETE FROM exchanges WHERE service = 'HF-WITHDRAW'")
        counted = await truth(pg)
        assert (
            counted[("failed", "yn", "DSAJ-LIC")] > 0
            and ("received", "mo", "DSAJ-LIC") not in counted
        )
        assert (await j.tally()).exchanges == counted  # the changes folded in
        assert await pending(pg) == 0
        await j.create(new("late", "hk", "TD-VL-RENEW"), owner="w", lease_until=NOW)
        counted = await truth(pg)
        assert (await j.tally()).exchanges == counted  # one change pending, added up
        assert await pending(pg) == 1
        conn = await connect(pg)
        try:
            assert await tally.pg_compact(conn) == 1
        finally:
            await conn.close()
        assert await pending(pg) == 0
        assert (await j.tally()).exchanges == counted
        states: Counter[str] = Counter()
        for (state, _, _), n in counted.items():
            states[state] += n
        assert await j.counts() == states
    finally:
        await j.close()


async def test_pg_a_change_made_from_another_search_path_counts_in_the_journal(
    pg: PgSchema,
) -> None:
    """SQL run with another schema first on its search_path (by hand, or from another journal in
    the same database) still counts in this journal's schema, never fails for want of the table."""
    j = pg.journal()
    await j.open()
    try:
        await j.create(new("k1", "hk", "TD-VL-RENEW"), owner="w", lease_until=NOW)
        conn = await asyncpg.connect(pg.dsn, server_settings={"search_path": "public"})
        try:
            await conn.execute(f"UPDATE \"{pg.schema}\".exchanges SET state = 'failed'")
        finally:
            await conn.close()
        assert (await j.tally()).exchanges == await truth(pg)
        assert (await j.tally()).exchanges == {("failed", "hk", "TD-VL-RENEW"): 1}
    finally:
        await j.close()


async def test_pg_a_renamed_schema_counts_under_its_new_name(pg: PgSchema) -> None:
    """The counting function names its schema; a journal whose schema was renamed (a DBA keeping
    it aside) has it made again at open, so writes neither fail nor count into the old name."""
    j = pg.journal()
    await j.open()
    await j.create(new("k1", "hk", "TD-VL-RENEW"), owner="w", lease_until=NOW)
    await j.close()
    renamed = PgSchema(pg.dsn, pg.schema + "_kept", pg.keydir)
    await pg.execute(f'ALTER SCHEMA "{pg.schema}" RENAME TO "{renamed.schema}"')
    try:
        j = renamed.journal()
        await j.open()
        try:
            await j.create(new("k2", "mo", "DSAJ-LIC"), owner="w", lease_until=NOW)
            assert (await j.tally()).exchanges == await truth(renamed)
            assert len(await truth(renamed)) == 2
        finally:
            await j.close()
    finally:
        await renamed.execute(f'ALTER SCHEMA "{renamed.schema}" RENAME TO "{pg.schema}"')


def test_the_repair_makes_the_function_the_migration_makes() -> None:
    """One text for both: the repair is migration 0009's statement, made replaceable."""
    made = tally.counting_function()
    assert made.startswith("DO $migration$") and made.endswith("$migration$;")
    assert "CREATE OR REPLACE FUNCTION exchange_count_change()" in made
    assert "%1$I.exchange_count_changes" in made


async def test_pg_an_announcement_folds_the_changes_in(pg: PgSchema) -> None:
    """Where nothing scrapes /metrics the changes still stay bounded: each instance's periodic
    announcement folds them in, and the counts are the same after."""
    j = pg.journal()
    await j.open()
    try:
        for i in range(5):
            await j.create(new(f"k{i}", "hk", "TD-VL-RENEW"), owner="w", lease_until=NOW)
        assert await pending(pg) == 5
        await j.announce(instance(1, "sha256:aaaa", NOW))
        assert await pending(pg) == 0
        assert (await j.tally()).exchanges == await truth(pg)
    finally:
        await j.close()


async def test_pg_migration_counts_a_journal_that_already_has_rows(pg: PgSchema) -> None:
    """A journal written by a release before migration 0009 starts counted: its rows are counted
    when the migration runs, and the triggers count from there."""
    conn = await connect(pg)
    try:
        async with conn.transaction():
            await conn.execute(f'CREATE SCHEMA "{pg.schema}"')
            await conn.execute(pgsql.MIGRATIONS_TABLE)
            for number, name, sql in pgsql.migration_files():
                if number < 9:
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        number,
                        name,
                    )
        for n, (target, state) in enumerate([("hk", "delivered")] * 3 + [("mo", "failed")]):
            await conn.execute(INSERT, new_id(NOW + n), target, f"old{n}", state, NOW)
        assert await conn.fetchval("SELECT to_regclass('exchange_counts')") is None
    finally:
        await conn.close()
    j = pg.journal()
    await j.open()
    try:
        assert (await j.tally()).exchanges == {
            ("delivered", "hk", "S"): 3,
            ("failed", "mo", "S"): 1,
        }
        await j.create(new("new", "mo", "S"), owner="w", lease_until=NOW)
        await pg.execute("UPDATE exchanges SET state = 'queued' WHERE state = 'failed'")
        assert (await j.tally()).exchanges == await truth(pg)
        assert await pg.fetchval("SELECT count(*) FROM exchange_counts") == 2  # as migrated
    finally:
        await j.close()


async def test_pg_a_fold_leaves_changes_committed_around_it(pg: PgSchema) -> None:
    """A change not yet committed when a fold runs is left for the next one (not deleted, not
    added); a writer does not wait for a fold in progress, nor a second fold for the first (it
    gives up at once); whatever the order of commits, the counts equal the rows."""
    j = pg.journal()
    await j.open()  # migrates
    await j.close()
    writer, folder, other = await connect(pg), await connect(pg), await connect(pg)
    try:
        await writer.execute("INSERT INTO exchange_counts VALUES ('failed', 'hk', 'S', 0)")
        await tally.pg_compact(folder)  # drops the empty count
        # A writer's change in flight while a fold runs: the fold neither sees nor deletes it.
        async with writer.transaction():
            await writer.execute(INSERT, new_id(NOW), "hk", "w1", "received", NOW)
            assert await tally.pg_compact(folder) == 0
        assert await pending(pg) == 1
        # A fold in flight: a writer commits meanwhile, a second fold gives up without waiting.
        fold = folder.transaction()
        await fold.start()
        assert await folder.fetchval(tally.COMPACT_LOCK)
        await folder.execute(tally.COMPACT)
        await asyncio.wait_for(
            writer.execute(INSERT, new_id(NOW + 1), "hk", "w2", "received", NOW), timeout=5
        )
        assert await asyncio.wait_for(tally.pg_compact(other), timeout=5) is None
        assert await tally.pg_tally(other) != Tally()  # reads while the fold holds its rows
        await fold.commit()
        assert await pending(pg) == 1  # w2's, committed after the fold's snapshot
        counted = await truth(pg)
        assert counted == {("received", "hk", "S"): 2}
        assert (await tally.pg_tally(other)).exchanges == counted
        assert await tally.pg_compact(other) == 1
        assert await pending(pg) == 0
        assert (await tally.pg_tally(other)).exchanges == counted
    finally:
        for conn in (writer, folder, other):
            await conn.close()


async def test_pg_two_instances_writing_while_tallies_fold_lose_no_count(
    pg: PgSchema, compact_often: None
) -> None:
    """Two journals on one schema create and move exchanges side by side while both tally (and
    so fold) over and over and a third connection folds in a loop: no change is lost or
    counted twice, and the counts equal the rows at the end."""
    first, second = pg.journal(), pg.journal()
    await first.open()
    await second.open()
    folder = await connect(pg)
    stop = asyncio.Event()
    folds: list[int | None] = []

    async def fold() -> None:
        while not stop.is_set():
            folds.append(await tally.pg_compact(folder))
            await asyncio.sleep(0)

    async def write(j: Backend, name: str) -> None:
        for i in range(40):
            partner, service = ROUTES[i % len(ROUTES)]
            ex, _ = await j.create(new(f"{name}{i}", partner, service), owner=name, lease_until=NOW)
            await j.record(ex.id, [], StateChange(state=State.QUEUED), owner=name)
            if i % 2:
                await j.record(ex.id, [], StateChange(state=State.DELIVERING), owner=name)
            if i % 5 == 0:
                await j.tally()

    try:
        folding = asyncio.create_task(fold())
        await asyncio.gather(
            *(write(first, f"a{k}") for k in range(3)), *(write(second, f"b{k}") for k in range(3))
        )
        stop.set()
        await folding
        counted = await truth(pg)
        assert sum(counted.values()) == 240
        assert (await first.tally()).exchanges == counted
        assert (await second.tally()).exchanges == counted
        assert sum(1 for f in folds if f) > 3  # the loop did fold changes in
    finally:
        stop.set()
        await folder.close()
        await first.close()
        await second.close()
