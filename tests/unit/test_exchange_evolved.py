"""``Exchange.evolved`` is ``dataclasses.replace`` for an exchange, without its cost."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from federation.domain.models import Direction, Event, Exchange, State


def exchange() -> Exchange:
    return Exchange(
        id="01J0000000000000000000000X",
        direction=Direction.OUTBOUND,
        source="gd",
        target="fj",
        service="S",
        idempotency_key="k-1",
        request_hash="h",
        state=State.QUEUED,
        application={"applicant": {"name": "陈大文"}},
        created_at=1.0,
        updated_at=2.0,
        events=(Event(exchange_id="01J0000000000000000000000X", kind="received", at=1.0, data={}),),
    )


def test_evolved_equals_replace_and_leaves_the_original() -> None:
    """The same fields as replace gives; the exchange it came from is unchanged."""
    old = exchange()
    new = old.evolved(state=State.DELIVERING, attempts=3, mapped={"a": 1})
    assert new == replace(old, state=State.DELIVERING, attempts=3, mapped={"a": 1})
    assert (old.state, old.attempts, old.mapped) == (State.QUEUED, 0, None)
    assert [
        getattr(new, f.name)
        for f in fields(Exchange)
        if f.name not in {"state", "attempts", "mapped"}
    ] == [
        getattr(old, f.name)
        for f in fields(Exchange)
        if f.name not in {"state", "attempts", "mapped"}
    ]


def test_evolved_stays_frozen_and_refuses_unknown_names() -> None:
    """The copy is as frozen as the original, and a misspelt field is an error, as in replace."""
    new = exchange().evolved(attempts=1)
    with pytest.raises(AttributeError):
        new.attempts = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="attempt"):
        exchange().evolved(attempt=1)
