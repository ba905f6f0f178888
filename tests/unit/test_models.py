"""Exchange values, states and canonical JSON (federation.domain.models)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from federation.domain.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    Direction,
    Event,
    Exchange,
    Outcome,
    State,
    canonical_json,
    content_hash,
    iso,
)

EXCHANGE_ID = "01JDX4Y6Z8A0B2C4D6E8F0G2H4"


def event(kind: str, at: float, **data: Any) -> Event:
    return Event(exchange_id=EXCHANGE_ID, kind=kind, at=at, data=data)


def exchange(*events: Event, state: State = State.DELIVERING) -> Exchange:
    """An outbound exchange to hk carrying ``events``."""
    return Exchange(
        id=EXCHANGE_ID,
        direction=Direction.OUTBOUND,
        source="gd-window",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key="k-1",
        request_hash="sha256:00",
        state=state,
        application={},
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        events=events,
    )


# --- attempt history -----------------------------------------------------------------------------


def test_attempt_history_pairs_start_and_finish() -> None:
    """Each attempt's start and finish events become one attempt with outcome and timings."""
    ex = exchange(
        event("received", 0.0),
        event("attempt_started", 10.0, attempt=1, request={"url": "https://hk/1"}),
        event(
            "attempt_finished",
            10.5,
            attempt=1,
            outcome="transient_error",
            duration_ms=500.0,
            error={"message": "hk answered HTTP 503"},
            response={"status": 503},
        ),
        event("attempt_started", 20.0, attempt=2, request={"url": "https://hk/1"}),
        event("attempt_finished", 20.2, attempt=2, outcome="delivered", duration_ms=200.0),
    )
    first, second = ex.attempt_history()
    assert (first.number, first.started_at, first.finished_at) == (1, 10.0, 10.5)
    assert first.outcome is Outcome.TRANSIENT_ERROR
    assert first.duration_ms == 500.0
    assert first.error == {"message": "hk answered HTTP 503"}
    assert first.response == {"status": 503}
    assert first.request == {"url": "https://hk/1"}
    assert (second.number, second.outcome, second.error) == (2, Outcome.DELIVERED, None)


def test_attempt_in_flight_has_no_finish() -> None:
    """A started attempt without its finish is in flight: no outcome, no end time."""
    ex = exchange(event("attempt_started", 10.0, attempt=1, request={"url": "https://hk/1"}))
    (attempt,) = ex.attempt_history()
    assert attempt.finished_at is None
    assert attempt.outcome is None
    assert attempt.duration_ms is None
    assert attempt.request == {"url": "https://hk/1"}
    assert attempt.to_dict()["outcome"] == "in_flight"
    assert attempt.to_dict()["finished_at"] is None


def test_finish_event_request_wins_over_start() -> None:
    """The request recorded at finish (with what was really sent) replaces the one at start."""
    ex = exchange(
        event("attempt_started", 1.0, attempt=1, request={"url": "planned"}),
        event("attempt_finished", 2.0, attempt=1, outcome="delivered", request={"url": "sent"}),
    )
    assert ex.attempt_history()[0].request == {"url": "sent"}


def test_attempts_are_ordered_by_number_not_by_event_order() -> None:
    """Events recorded out of order still give attempts 1, 2, 3."""
    ex = exchange(
        event("attempt_started", 3.0, attempt=3),
        event("attempt_started", 1.0, attempt=1),
        event("attempt_finished", 1.5, attempt=1, outcome="unknown_outcome"),
        event("attempt_started", 2.0, attempt=2),
    )
    assert [a.number for a in ex.attempt_history()] == [1, 2, 3]
    assert [a.outcome for a in ex.attempt_history()] == [Outcome.UNKNOWN_OUTCOME, None, None]


def test_no_attempts_without_attempt_events() -> None:
    """An exchange rejected at mapping has an empty attempt history."""
    ex = exchange(event("received", 0.0), event("rejected", 0.1), state=State.REJECTED)
    assert ex.attempt_history() == []


def test_attempt_to_dict_is_json_ready() -> None:
    """to_dict gives RFC 3339 times and the outcome as text."""
    ex = exchange(
        event("attempt_started", 1_700_000_000.0, attempt=1),
        event(
            "attempt_finished",
            1_700_000_000.25,
            attempt=1,
            outcome="permanent_error",
            duration_ms=250,
        ),
    )
    assert ex.attempt_history()[0].to_dict() == {
        "number": 1,
        "started_at": "2023-11-14T22:13:20.000Z",
        "finished_at": "2023-11-14T22:13:20.250Z",
        "outcome": "permanent_error",
        "duration_ms": 250,
        "request": {},
        "response": None,
        "error": None,
    }


# --- states --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
def test_terminal_states(state: State) -> None:
    """Delivered, failed, rejected and unconfirmed are terminal; every other state is not."""
    ended = {State.DELIVERED, State.FAILED, State.REJECTED, State.UNCONFIRMED}
    assert state.terminal == (state in ended)


def test_every_state_has_a_transition_entry() -> None:
    """The transition table covers every state and only moves to known states."""
    assert set(TRANSITIONS) == set(State)
    for targets in TRANSITIONS.values():
        assert targets <= set(State)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_no_exit_from_terminal_states(state: State) -> None:
    """Once delivered, failed or rejected, an exchange moves only by a replay (queued or received)."""
    assert TRANSITIONS[state] == frozenset({State.QUEUED, State.RECEIVED})


def test_every_non_terminal_state_can_reach_a_terminal_one() -> None:
    """No exchange can get stuck: from each state some path ends in a terminal state."""
    for start in State:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & TERMINAL_STATES, start


def test_states_are_their_text() -> None:
    """States compare equal to the text stored in the journal."""
    assert State.RETRY_WAIT == "retry_wait"
    assert State("delivered") is State.DELIVERED


# --- canonical JSON and hashes -------------------------------------------------------------------


def test_canonical_json_is_key_order_independent() -> None:
    """The same object written with keys in another order gives the same bytes."""
    a = {"b": 1, "a": {"y": [1, 2], "x": "甲"}}
    b = {"a": {"x": "甲", "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == '{"a":{"x":"甲","y":[1,2]},"b":1}'.encode()


def test_canonical_json_keeps_list_order() -> None:
    """Lists are data, not sets: their order matters."""
    assert canonical_json([1, 2]) != canonical_json([2, 1])


def test_content_hash_form() -> None:
    """content_hash is 'sha256:' and 64 hex digits, changing with the content."""
    h = content_hash(b"mapping: 1\n")
    assert h.startswith("sha256:")
    assert len(h) == len("sha256:") + 64
    assert h != content_hash(b"mapping: 1\n\n")
    assert content_hash(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


# --- iso -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.0, "2023-11-14T22:13:20.000Z"),
        (1_700_000_000.123456, "2023-11-14T22:13:20.123Z"),
        (None, None),
    ],
)
def test_iso(ts: float | None, text: str | None) -> None:
    """Epoch seconds become RFC 3339 UTC with milliseconds and a Z; None stays None."""
    assert iso(ts) == text


def test_attempts_read_from_their_finished_events_and_the_row() -> None:
    """Each attempt_finished event says when its attempt started; an attempt still on the wire is
    the row's (delivering, its attempt count, the time of its start); old attempt_started events
    still pair."""
    ex = replace(
        exchange(
            event("attempt_started", 1.0, attempt=1, request={"url": "planned"}),
            event("attempt_finished", 2.0, attempt=1, outcome="transient_error"),
            event("attempt_finished", 12.0, attempt=2, started_at=11.0, outcome="transient_error"),
        ),
        attempts=3,
        updated_at=20.0,
    )
    history = ex.attempt_history()
    assert [(a.number, a.started_at, a.finished_at) for a in history] == [
        (1, 1.0, 2.0),
        (2, 11.0, 12.0),
        (3, 20.0, None),
    ]
    assert history[0].request == {"url": "planned"}
    ended = replace(ex, state=State.RETRY_WAIT)
    assert [a.number for a in ended.attempt_history()] == [1, 2]  # nothing on the wire
