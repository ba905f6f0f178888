"""Journal.release on every backend: a draining instance gives up its leases, and only its own."""

from __future__ import annotations

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.journal import Backend

NOW = 1_790_000_000.0
LEASE = NOW + 300  # far beyond every claim below: only a release makes the work claimable


def new(key: str) -> NewExchange:
    """A new outbound exchange."""
    return NewExchange(
        id=new_id(NOW),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"applicant": {"name": "陳大文"}},
        received_at=NOW,
    )


async def test_released_work_is_claimed_at_once_by_another_instance(journal: Backend) -> None:
    """After release, work leased until far in the future is claimable now, without a reclaim."""
    a, _ = await journal.create(new("a"), owner="draining", lease_until=LEASE)
    b, _ = await journal.create(new("b"), owner="draining", lease_until=LEASE)
    await journal.record(
        b.id,
        [Event(exchange_id=b.id, kind="attempt_started", at=NOW + 1, data={"attempt": 1})],
        StateChange(state=State.DELIVERING, attempts=1),
        owner="draining",
    )
    before = await journal.claim(owner="other", now=NOW + 2, lease_until=NOW + 32, limit=10)
    released = await journal.release(owner="draining")
    after = await journal.claim(owner="other", now=NOW + 2, lease_until=NOW + 32, limit=10)
    assert before == []
    assert released == 2
    assert sorted(ex.id for ex in after) == sorted([a.id, b.id])
    # a released lease is no one's: the new holder records no reclaim from the drained instance
    assert all(e.kind != "lease_reclaimed" for ex in after for e in ex.events)


async def test_release_leaves_other_instances_leases_and_ended_work(journal: Backend) -> None:
    """Only the draining owner's open leases go; another instance's lease and ended work stay."""
    mine, _ = await journal.create(new("mine"), owner="draining", lease_until=LEASE)
    theirs, _ = await journal.create(new("theirs"), owner="busy", lease_until=LEASE)
    done, _ = await journal.create(new("done"), owner="draining", lease_until=LEASE)
    await journal.record(
        done.id,
        [Event(exchange_id=done.id, kind="rejected", at=NOW + 1, data={"why": "test"})],
        StateChange(state=State.REJECTED, notify=False),
        owner="draining",
    )
    assert await journal.release(owner="draining") == 1
    assert await journal.release(owner="draining") == 0  # nothing left to give up
    claimed = await journal.claim(owner="other", now=NOW + 2, lease_until=NOW + 32, limit=10)
    assert [ex.id for ex in claimed] == [mine.id]
    assert await journal.renew(owner="busy", ids=[theirs.id], lease_until=LEASE + 1) == 1
