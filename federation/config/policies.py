"""The delivery policies of partners.yaml: timeouts, concurrency, retry, breaker, rate limit.

Each parser takes the value under one key and the value it falls back to, so ``defaults:`` and every
partner share one code path: a partner's policy starts from the defaults and overrides key by key.
Problems are recorded on the Reader (file, line, key path); a bad value leaves the fallback in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from federation.config.model import BreakerPolicy, BrokerSettings, RateLimitPolicy, Timeouts
from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.retry import RetryPolicy
from federation.domain.texts import said

_P = TypeVar("_P", RetryPolicy, BreakerPolicy, BrokerSettings)

POLICY_KEYS = ("timeouts", "concurrency", "retry", "breaker", "rate_limit")


@dataclass(frozen=True, kw_only=True)
class Policies:
    """The five delivery policies a partner (or ``defaults:``) may set."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    rate_limit: RateLimitPolicy | None = None


def policies(r: Reader, path: PathKey, m: dict[str, Any], default: Policies) -> Policies:
    """The policies under ``path`` (a parsed mapping), each key falling back to ``default``."""
    return Policies(
        timeouts=timeouts(r, (*path, "timeouts"), m.get("timeouts"), default.timeouts),
        concurrency=concurrency(
            r, (*path, "concurrency"), m.get("concurrency"), default.concurrency
        ),
        retry=retry(r, (*path, "retry"), m.get("retry"), default.retry),
        breaker=breaker(r, (*path, "breaker"), m.get("breaker"), default.breaker),
        rate_limit=rate_limit(r, (*path, "rate_limit"), m.get("rate_limit"), default.rate_limit),
    )


def timeouts(r: Reader, path: PathKey, raw: Any, default: Timeouts) -> Timeouts:
    """Connect, read and total timeouts; total may not be shorter than connect."""
    if raw is None:
        return default
    m = r.mapping(path, raw, optional=("connect", "read", "total"))
    if m is None:
        return default
    values = {}
    for key in ("connect", "read", "total"):
        if key in m:
            v = r.duration((*path, key), m[key], low=0.001, high=3600)
            if v is not None:
                values[key] = v
    t = replace(default, **values)
    if t.total < t.connect:
        r.error((*path, "total"), said("total timeout is shorter than the connect timeout"))
    return t


def concurrency(r: Reader, path: PathKey, raw: Any, default: int) -> int:
    """How many deliveries to one partner may run at once (1–1024)."""
    if raw is None:
        return default
    return r.integer(path, raw, low=1, high=1024) or default


def retry(r: Reader, path: PathKey, raw: Any, default: RetryPolicy) -> RetryPolicy:
    """The retry policy: attempts, backoff, jitter and the give-up horizon."""
    if raw is None:
        return default
    keys = (
        "max_attempts",
        "backoff_base",
        "backoff_cap",
        "jitter",
        "max_elapsed",
        "short_attempts",
        "short_backoff",
    )
    m = r.mapping(path, raw, optional=keys)
    if m is None:
        return default
    values: dict[str, Any] = {}
    if "max_attempts" in m:
        values["max_attempts"] = r.integer(
            (*path, "max_attempts"), m["max_attempts"], low=1, high=1000
        )
    if "short_attempts" in m:
        values["short_attempts"] = r.integer(
            (*path, "short_attempts"), m["short_attempts"], low=1, high=10
        )
    for key in ("backoff_base", "backoff_cap", "max_elapsed", "short_backoff"):
        if key in m:
            values[key] = r.duration((*path, key), m[key], low=0.0, high=90 * 86400)
    if "jitter" in m:
        values["jitter"] = r.number((*path, "jitter"), m["jitter"], low=0.0, high=1.0)
    return override(default, values)


def breaker(r: Reader, path: PathKey, raw: Any, default: BreakerPolicy) -> BreakerPolicy:
    """The circuit breaker: failures to open, cool-down, probes to close."""
    if raw is None:
        return default
    m = r.mapping(path, raw, optional=("failures", "cool_down", "probes"))
    if m is None:
        return default
    values: dict[str, Any] = {}
    if "failures" in m:
        values["failures"] = r.integer((*path, "failures"), m["failures"], low=1, high=1000)
    if "probes" in m:
        values["probes"] = r.integer((*path, "probes"), m["probes"], low=1, high=100)
    if "cool_down" in m:
        values["cool_down"] = r.duration((*path, "cool_down"), m["cool_down"], low=0.01, high=86400)
    return override(default, values)


def rate_limit(
    r: Reader, path: PathKey, raw: Any, default: RateLimitPolicy | None
) -> RateLimitPolicy | None:
    """A token bucket (per second, burst); the burst defaults to one second's worth."""
    if raw is None:
        return default
    m = r.mapping(path, raw, required=("per_second",), optional=("burst",))
    if m is None:
        return default
    rate = r.number((*path, "per_second"), m.get("per_second"), low=0.01, high=100_000)
    burst = r.integer((*path, "burst"), m["burst"], low=1, high=100_000) if "burst" in m else None
    if rate is None:
        return default
    return RateLimitPolicy(per_second=rate, burst=burst or max(1, int(rate)))


def override(default: _P, values: dict[str, Any]) -> _P:
    """``default`` with the parsed ``values`` that are not None (a wrong value keeps the default)."""
    return replace(default, **{k: v for k, v in values.items() if v is not None})
