"""What the SQLite writer does before a batch's transaction (replay/dbthread.py, replay/rows.py).

Sealing needs no row, so it runs before the transaction and outside the journal's turn: the turn
is then held for the SQL alone (two workers on one file left 12-14 % of the machine idle instead of
17-21 %). The sealed rows must be what sealing in the transaction gave, a rekey in between must not
leave rows under the old key, and a preparation runs once even when its batch is retried."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange
from replay import rows
from replay.dbthread import DbThread
from replay.keys import Keyring
from replay.seal import Seal
from replay.sqlite import SQLiteJournal
from replay.turn import Turn
from tests.unit.test_turn import free

AT = 1_790_000_000.0
EVENTS = [
    Event(exchange_id="x1", kind="mapped", at=AT, data={"request": {"a": 1}}),
    Event(exchange_id="x1", kind="attempt_started", at=AT + 1, data={"attempt": 1}),
]


@pytest.mark.parametrize("events", [EVENTS, EVENTS[:1], []], ids=["two", "one", "none"])
def test_rows_sealed_ahead_are_the_rows_sealed_in_the_write(events: list[Event]) -> None:
    """Unkeyed sealing is deterministic: the same rows, the state on the last one, and a hidden
    STATE event (at the write's time) for a write with no event of its own."""
    seal = Seal(None)
    sealing = rows.Sealing(lambda: seal, "x1", events, AT + 2)
    sealing.prepare()
    assert sealing.rows(b"digest") == rows.stored_events(seal, "x1", events, b"digest", now=AT + 2)


def test_a_seal_changed_since_preparing_seals_the_rows_again() -> None:
    """A rekey between preparing and writing: the rows are sealed under the key in force when
    they are written, never the one they were prepared with."""
    old, new = Seal(Keyring.generate()), Seal(Keyring.generate())
    current = [old]
    sealing = rows.Sealing(lambda: current[0], "x1", EVENTS, AT)
    sealing.prepare()
    assert all(old.sealed_with_current(r[3]) for r in sealing.rows(b"s"))
    current[0] = new
    written = sealing.rows(b"s")
    assert all(new.sealed_with_current(r[3]) for r in written)
    assert [r[4] for r in written] == [None, b"s"]


def test_rows_never_prepared_are_sealed_in_the_write() -> None:
    seal = Seal(Keyring.generate())
    written = rows.Sealing(lambda: seal, "x1", EVENTS, AT).rows(b"s")
    assert len(written) == 2 and all(seal.sealed_with_current(r[3]) for r in written)


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[tuple[DbThread, Path]]:
    path = tmp_path / "w.sqlite"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL)")
        return conn

    thread = DbThread(
        connect,
        asyncio.get_running_loop(),
        name="test-writer",
        transactional=True,
        translate=lambda exc: exc,
        turn=lambda: Turn(path.with_name("w.sqlite-turn"), timeout=5.0),
    )
    await asyncio.to_thread(thread.start_and_wait)
    yield thread, path
    thread.stop()
    await asyncio.to_thread(thread.join)


def turn_free(path: Path) -> bool:
    return free(path.with_name(path.name + "-turn"))


async def test_a_preparation_runs_outside_the_turn_once_and_fails_only_its_own_write(
    writer: tuple[DbThread, Path],
) -> None:
    """Preparations run before the turn is taken (another process could write meanwhile), each
    once even when an unexpected error makes the batch run again op by op, and one that fails
    answers its own write with its error and leaves the others be."""
    thread, path = writer
    seen: list[tuple[str, bool]] = []
    hold = asyncio.Event()

    def insert(value: str) -> Any:
        def op(conn: sqlite3.Connection) -> str:
            if value == "bad":
                raise sqlite3.IntegrityError("an unexpected failure: the batch runs again op by op")
            conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
            return value

        return op

    def prepare(value: str) -> Any:
        def run() -> None:
            seen.append((value, turn_free(path)))
            if value == "refused":
                raise ValueError("cannot seal this")

        return run

    # Park the writer on a slow op so that the next writes queue into one batch.
    def slow(conn: sqlite3.Connection) -> None:
        while not hold.is_set():
            conn.execute("SELECT 1")

    parked = thread.submit(slow)
    await asyncio.sleep(0.1)
    futures = {v: thread.submit(insert(v), prepare(v)) for v in ("a", "refused", "bad", "b")}
    hold.set()
    await parked
    results = await asyncio.gather(*futures.values(), return_exceptions=True)
    outcome = dict(zip(futures, results, strict=True))
    assert outcome["a"] == "a" and outcome["b"] == "b"
    assert isinstance(outcome["refused"], ValueError)
    assert isinstance(outcome["bad"], sqlite3.IntegrityError)
    assert sorted(seen) == sorted((v, True) for v in ("a", "refused", "bad", "b"))
    done = thread.submit(lambda conn: [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")])
    assert await done == ["a", "b"]


async def test_a_create_that_is_a_repeat_leaves_no_compression_context(tmp_path: Path) -> None:
    """The received event is sealed ahead, but its plaintext becomes the exchange's compression
    context only once its row is written: a repeat (same key, another id) leaves none behind, so
    retries cannot push live exchanges' contexts out of the cache."""
    j = SQLiteJournal(tmp_path / "j.sqlite")
    await j.open()
    try:
        first, second = (
            NewExchange(
                id=new_id(AT + n),
                direction=Direction.OUTBOUND,
                source="gd-portal",
                target="hk",
                service="TD-VL-RENEW",
                idempotency_key="same",
                request_hash="sha256:x",
                application={"n": 1},
                received_at=AT + n,
            )
            for n in (0, 1)
        )
        _, made = await j.create(first, owner="w", lease_until=AT + 100)
        again, made_again = await j.create(second, owner="w", lease_until=AT + 100)
        assert made and not made_again and again.id == first.id
        assert j.seal.keyed
        assert j.seal.contexts.get(first.id) is not None
        assert j.seal.contexts.get(second.id) is None
    finally:
        await j.close()
