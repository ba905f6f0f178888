"""``broker: refusal_budget:`` in partners.yaml: how many refused requests the journal keeps one by
one, per client address and in all, and how many of their bodies (docs/security.md).

::

    broker:
      refusal_budget:
        per_second: 10                        # refusals kept one by one per address, sustained
        burst: 300                            # …and at once
        body_bytes_per_minute: 4194304        # refused bodies kept per address (4 MiB)
        total_per_second: 50                  # the same across all addresses
        total_burst: 1000
        total_body_bytes_per_minute: 16777216 # (16 MiB)
        addresses: 10000                      # addresses remembered (least recently seen go)
        summary_every: 1m                     # one summary row per address per such window

Every key is optional (the defaults above); ``refusal_budget: false`` keeps every
refusal in full, as before. The answer to the client is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.config.reader import Reader

MIB = 1024 * 1024
PATH = ("broker", "refusal_budget")


@dataclass(frozen=True, kw_only=True)
class RefusalBudgetSettings:
    """How many refusals are journalled one by one, and how many bytes of their bodies kept."""

    per_second: float = 10.0
    burst: int = 300
    body_bytes_per_minute: int = 4 * MIB
    total_per_second: float = 50.0
    total_burst: int = 1000
    total_body_bytes_per_minute: int = 16 * MIB
    addresses: int = 10_000
    summary_every: float = 60.0


_RATES = ("per_second", "total_per_second")
_COUNTS = ("burst", "total_burst")
_BYTES = ("body_bytes_per_minute", "total_body_bytes_per_minute")


def parse_refusal_budget(r: Reader, raw: Any) -> RefusalBudgetSettings | None:
    """The budget at ``broker.refusal_budget``: None when it is turned off (``false``); the
    defaults where it is wrong (the problems reported, with their lines)."""
    if isinstance(raw, bool):
        return RefusalBudgetSettings() if raw else None
    m = r.mapping(PATH, raw, optional=(*_RATES, *_COUNTS, *_BYTES, "addresses", "summary_every"))
    if m is None:
        return RefusalBudgetSettings()
    values: dict[str, Any] = {}
    for key in _RATES:
        if key in m:
            values[key] = r.number((*PATH, key), m[key], low=0.01, high=100_000)
    for key in _COUNTS:
        if key in m:
            values[key] = r.integer((*PATH, key), m[key], low=1, high=1_000_000)
    for key in _BYTES:
        if key in m:
            values[key] = r.integer((*PATH, key), m[key], low=0, high=1024 * MIB)
    if "addresses" in m:
        values["addresses"] = r.integer(
            (*PATH, "addresses"), m["addresses"], low=16, high=1_000_000
        )
    if "summary_every" in m:
        values["summary_every"] = r.duration(
            (*PATH, "summary_every"), m["summary_every"], low=10, high=3600
        )
    return RefusalBudgetSettings(**{k: v for k, v in values.items() if v is not None})
