"""Which callback `tongban callback resend` sends again: the mark of the latest callback outcome,
read from an exchange's history."""

from __future__ import annotations

from typing import Any

import pytest

from federation.runtime.callbacks import callback_mark
from tests.unit.test_callback_step_key import history


def mark_of(*events: tuple[str, dict[str, Any]]) -> str | None:
    """callback_mark of a delivered exchange with these events."""
    return callback_mark(history(*events))


@pytest.mark.parametrize(
    ("events", "mark"),
    [
        ((), None),
        ((("callback_delivered", {"state": "delivered"}),), "delivered"),
        ((("callback_abandoned", {"attempts": 12}),), "delivered"),
        (
            (
                ("callback_delivered", {"state": "delivered"}),
                ("lifecycle", {"lifecycle": "accepted"}),
                ("callback_abandoned", {"attempts": 12}),
            ),
            "lifecycle:accepted",
        ),
        (
            (
                ("callback_abandoned", {"state": "lifecycle:approved"}),
                ("callback_replayed", {"state": "lifecycle:approved"}),
                ("callback_failed", {"state": "lifecycle:approved"}),
            ),
            "lifecycle:approved",
        ),
    ],
)
def test_the_mark_resent_is_the_latest_callback_outcomes(events: Any, mark: str | None) -> None:
    """The mark the latest outcome names; an outcome of an older release (naming none) is read
    from the history: the latest lifecycle step before it, else the end state."""
    assert mark_of(*events) == mark
