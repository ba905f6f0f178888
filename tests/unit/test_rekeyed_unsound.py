"""What ``journal verify`` accepts of a rekey's signed records at one event (``replay.rekeyed.unsound``)."""

from __future__ import annotations

import os

from replay.keys import Keyring
from replay.rekeyed import NO_EVENT, NOWHERE, UNSIGNED, Statement, signed, unsound
from replay.seal import Seal

SEAL = Seal(Keyring.generate())


def made(seq: int, old: bytes, new: bytes, at: float) -> Statement:
    """A statement signed as a rekey signs it."""
    mac = SEAL.sign(b"tongban/rekeyed", (seq.to_bytes(8, "big"), old, new, repr(at).encode()))
    statement = (seq, old, new, at, mac or b"")
    assert signed(SEAL, statement)
    return statement


def test_records_of_rekeys_one_after_another_hold() -> None:
    """Three rekeys of event 5, the last leading to the hash the journal holds: all accepted."""
    h0, h1, h2, h3 = (os.urandom(32) for _ in range(4))
    chain = [made(5, h0, h1, 10.0), made(5, h1, h2, 20.0), made(5, h2, h3, 30.0)]
    assert unsound(h3, chain, SEAL) is None


def test_a_signed_record_of_an_event_the_journal_does_not_hold_is_named() -> None:
    """A record whose event is gone: NO_EVENT, at its seq and time."""
    found = unsound(None, [made(7, os.urandom(32), os.urandom(32), 10.0)], SEAL)
    assert found is not None and (found.seq, found.at, found.why) == (7, 10.0, NO_EVENT)


def test_signed_records_that_go_round_in_a_circle_lead_nowhere() -> None:
    """Two signed records leading to each other, never to the hash held: NOWHERE, not a hang."""
    a, b = os.urandom(32), os.urandom(32)
    found = unsound(os.urandom(32), [made(3, a, b, 10.0), made(3, b, a, 20.0)], SEAL)
    assert found is not None and (found.seq, found.why) == (3, NOWHERE)


def test_an_unsigned_record_is_named_before_anything_else() -> None:
    """A record with a wrong MAC beside a good one: UNSIGNED, naming the bad one's time."""
    h0, h1 = os.urandom(32), os.urandom(32)
    bad = (4, os.urandom(32), h0, 5.0, os.urandom(32))
    found = unsound(h1, [made(4, h0, h1, 10.0), bad], SEAL)
    assert found is not None and (found.at, found.why) == (5.0, UNSIGNED)
