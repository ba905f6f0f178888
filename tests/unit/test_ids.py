"""Time-sortable exchange ids (federation.domain.ids)."""

from __future__ import annotations

import re
import time

from federation.domain.ids import IdGenerator, id_time, new_id

CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")

# new_id keeps process-wide state so that ids never go backwards, and other tests feed it fixed
# clocks; the order and time tests below use a generator of their own, as the broker does.


def wait_until_past(t: float) -> None:
    while time.time() <= t + 0.001:
        time.sleep(0.001)


def test_id_is_26_crockford_characters() -> None:
    """An id is 26 characters of Crockford base32: no I, L, O or U, no lower case."""
    for _ in range(200):
        assert CROCKFORD.fullmatch(new_id())


def test_ids_are_unique() -> None:
    """Ten thousand ids made in a tight loop are all different."""
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_ids_sort_by_creation_time() -> None:
    """An id made at a later millisecond sorts after one made earlier."""
    gen = IdGenerator()
    now = time.time()
    early, late = gen.new(now=now), gen.new(now=now + 0.002)
    wait_until_past(now + 0.002)
    assert early < late
    assert id_time(early) < id_time(late)


def test_ids_in_the_same_millisecond_stay_in_order() -> None:
    """Many ids in one millisecond are strictly increasing in the order they were made."""
    gen = IdGenerator()
    now = time.time()
    ids = [gen.new(now=now) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {i[:10] for i in ids} == {ids[0][:10]}


def test_ids_keep_order_when_the_clock_steps_back() -> None:
    """An id made after the clock went back still sorts after the previous one."""
    gen = IdGenerator()
    now = time.time()
    first = gen.new(now=now)
    second = gen.new(now=now - 5)
    assert first < second


def test_id_time_round_trip() -> None:
    """id_time gives back the creation time to the millisecond."""
    gen = IdGenerator()
    before = time.time()
    identifier = gen.new()
    after = time.time()
    assert int(before * 1000) / 1000 <= id_time(identifier) <= after


def test_id_time_of_a_given_time() -> None:
    """An id made at a chosen (current) time decodes to that time, truncated to milliseconds."""
    gen = IdGenerator()
    now = time.time() + 0.005
    identifier = gen.new(now=now)
    wait_until_past(now)
    assert id_time(identifier) == int(now * 1000) / 1000


def test_a_generator_on_a_fake_clock_leaves_the_others_alone() -> None:
    """Ids made on a clock weeks ahead (a test's, a broker's) do not drag a fresh generator there."""
    ahead = IdGenerator()
    ahead.new(now=time.time() + 30 * 86400)
    fresh = IdGenerator().new()
    assert id_time(fresh) <= time.time()
