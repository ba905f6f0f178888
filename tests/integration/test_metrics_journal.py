"""What /metrics reads from the journal (Journal.tally) on every backend, instances on one
PostgreSQL database agreeing, and the commit hook of each backend's writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State, StateChange
from replay.factory import open_journal
from replay.journal import Backend
from replay.tally import Tally, observe_commits
from tests.integration.pg import JOURNALS, fresh_schema, open_journal_of

NOW = 1_790_000_000.0


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An open journal of each backend."""
    async with open_journal_of(request.param, tmp_path) as j:
        yield j


def new(key: str, partner: str, service: str, at: float) -> NewExchange:
    return NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target=partner,
        service=service,
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"applicant": {"name": "陳大文"}},
        received_at=at,
    )


async def fill(journal: Backend) -> None:
    """hk: one delivered (callback owed) and one waiting since NOW+10; sc: one waiting since NOW+5."""
    done, _ = await journal.create(new("a", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
    await journal.create(new("b", "hk", "TD-VL-RENEW", NOW + 10), owner="w", lease_until=NOW)
    await journal.create(new("c", "sc", "HF-WITHDRAW", NOW + 5), owner="w", lease_until=NOW)
    await journal.record(done.id, [], StateChange(state=State.DELIVERING, attempts=1), owner="w")
    await journal.record(
        done.id, [], StateChange(state=State.DELIVERED, receipt={}, notify=True), owner="w"
    )


EXPECTED = Tally(
    exchanges={
        ("delivered", "hk", "TD-VL-RENEW"): 1,
        ("received", "hk", "TD-VL-RENEW"): 1,
        ("received", "sc", "HF-WITHDRAW"): 1,
    },
    oldest_waiting={"hk": NOW + 10, "sc": NOW + 5},
    callbacks_pending=1,
)


async def test_the_tally_counts_by_state_partner_and_service(journal: Backend) -> None:
    """Exchanges per (state, partner, service), the oldest exchange not yet ended per partner and
    the callbacks owed, the same on every backend."""
    assert await journal.tally() == Tally()
    await fill(journal)
    assert await journal.tally() == EXPECTED


async def test_instances_on_one_postgresql_database_report_the_same_counts() -> None:
    """Two instances' journals on one schema: what one writes, the other's tally shows too, so
    every instance's /metrics reports the same journal counts."""
    async with fresh_schema() as pg:
        first, second = pg.journal(), pg.journal()
        await first.open()
        await second.open()
        try:
            await fill(first)
            assert await second.tally() == await first.tally() == EXPECTED
        finally:
            await first.close()
            await second.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_each_committed_batch_is_reported_with_its_size(backend: str, tmp_path: Path) -> None:
    """The writer reports every commit (its duration and how many writes it held) to that
    journal's observers only; 40 concurrent creates are all counted, and nothing after stop()."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "postgresql":
            journal: Backend = (await stack.enter_async_context(fresh_schema())).journal()
        else:
            journal = open_journal(tmp_path / "commits.sqlite")
        await journal.open()
        stack.push_async_callback(journal.close)
        other = open_journal(tmp_path / "other.sqlite")  # another journal in the process
        await other.open()
        stack.push_async_callback(other.close)
        seen: list[tuple[float, int]] = []
        elsewhere: list[int] = []
        stop = observe_commits(journal, lambda s, n: seen.append((s, n)))
        stop_other = observe_commits(other, lambda s, n: elsewhere.append(n))
        await asyncio.gather(
            *(
                journal.create(new(f"k{i}", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
                for i in range(40)
            )
        )
        stop()
        stop_other()
        assert sum(n for _, n in seen) >= 40
        assert elsewhere == []  # each journal's commits reach its own observers only
        assert all(s >= 0 and n >= 1 for s, n in seen)
        counted = len(seen)
        await journal.create(new("after", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
        assert len(seen) == counted
