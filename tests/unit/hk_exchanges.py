"""An application hk filed, as the unit tests of what is owed and sent on it build it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.domain.models import Direction, Event, Exchange, State

XID = "01KB0Z6Q4Y7M2N8P3R5T9V1W3X"


def hk_exchange(
    state: State,
    key: str,
    events: tuple[Event, ...],
    *,
    updated_at: float,
    receipt: Mapping[str, Any] | None = None,
) -> Exchange:
    """hk's application (``XID``, filed under ``key`` at 1.0), now ``state``, with ``events``."""
    return Exchange(
        id=XID,
        direction=Direction.INBOUND,
        source="hk",
        target="local",
        service="GD-GA-RP-HK",
        idempotency_key=key,
        request_hash="sha256:x",
        state=state,
        application={"reference": "HKGOV-2026-000123"},
        created_at=1.0,
        updated_at=updated_at,
        receipt=receipt,
        events=events,
    )
