"""Retry decisions: when a failed delivery or notice is tried again, and when it has had enough."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long a transiently failing delivery is tried again.

    The first ``short_attempts`` attempts are retried in process, ``short_backoff`` apart (doubling),
    for blips; after that the journal schedules each next attempt (``retry_wait``) with exponential
    backoff from ``backoff_base`` up to ``backoff_cap``, so retries survive restarts. The exchange
    fails for good after ``max_attempts`` attempts or ``max_elapsed`` since it was received.
    """

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    jitter: float = 0.2
    max_elapsed: float = 86400.0
    short_attempts: int = 4
    short_backoff: float = 0.05

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before journal-scheduled retry number ``attempt`` (1-based)."""
        raw = min(self.backoff_cap, self.backoff_base * (2.0 ** max(0, attempt - 1)))
        spread = raw * self.jitter
        draw = rng.random() if rng is not None else random.random()
        return max(0.0, raw - spread + draw * 2 * spread)
