"""What a scrape costs the journal: the tally is read once per cache window, shared by scrapes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.metrics import CACHE_ENV, CACHE_SECONDS, Metrics
from replay.tally import Tally


@dataclass
class Counting:
    """A journal whose tally() calls are counted (and may be held until ``release`` is set);
    each call tallies one more exchange, so a reused tally shows."""

    calls: int = 0
    release: asyncio.Event | None = None
    writes_refused: bool = False

    async def tally(self) -> Tally:
        self.calls += 1
        if self.release is not None:
            await self.release.wait()
        return Tally(exchanges={("delivered", "hk", "TD-VL-RENEW"): self.calls})


@dataclass
class Host:
    journal: Counting
    catalogue: Catalogue
    owner: str = "test:1"
    breakers: dict[str, str] = field(default_factory=dict)

    def breaker_states(self) -> dict[str, str]:
        return self.breakers

    def poll_backlog(self) -> int:
        return 0


async def make_host(make_config: Callable[..., Path]) -> Host:
    return Host(journal=Counting(), catalogue=load_catalogue(make_config()))


def exchanges(text: bytes) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == "tongban_exchanges"
    )


async def test_two_scrapes_within_the_window_read_the_journal_once(
    make_config: Callable[..., Path],
) -> None:
    """With a 5 s window, two scrapes one after the other make one tally() call and show the
    same journal counts."""
    host = await make_host(make_config)
    metrics = Metrics("test:1", cache_seconds=5.0)
    first = await metrics.exposition(host)
    second = await metrics.exposition(host)
    assert host.journal.calls == 1
    assert exchanges(first) == exchanges(second) == 1.0


async def test_without_a_window_every_scrape_reads_the_journal(
    make_config: Callable[..., Path],
) -> None:
    """A window of 0 seconds turns the cache off: each scrape makes its own tally() call."""
    host = await make_host(make_config)
    metrics = Metrics("test:1", cache_seconds=0.0)
    first = await metrics.exposition(host)
    second = await metrics.exposition(host)
    assert host.journal.calls == 2
    assert (exchanges(first), exchanges(second)) == (1.0, 2.0)


async def test_scrapes_at_the_same_moment_share_one_journal_read(
    make_config: Callable[..., Path],
) -> None:
    """Three scrapes arriving while the journal is still counting wait for that one read, and
    the event loop keeps running meanwhile (the read does not block it)."""
    host = await make_host(make_config)
    host.journal.release = asyncio.Event()
    metrics = Metrics("test:1", cache_seconds=5.0)
    scrapes = [asyncio.create_task(metrics.exposition(host)) for _ in range(3)]
    while host.journal.calls == 0:
        await asyncio.sleep(0)  # the loop runs other tasks while a scrape reads
    host.journal.release.set()
    texts = await asyncio.gather(*scrapes)
    assert host.journal.calls == 1
    assert [exchanges(t) for t in texts] == [1.0, 1.0, 1.0]


def test_the_window_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TONGBAN_METRICS_CACHE_SECONDS sets the window; a value that is not a number keeps 5 s."""
    monkeypatch.setenv(CACHE_ENV, "2.5")
    assert Metrics().cache_seconds == 2.5
    monkeypatch.setenv(CACHE_ENV, "soon")
    assert Metrics().cache_seconds == CACHE_SECONDS == 5.0


async def test_breaker_state_is_read_at_every_scrape_even_within_the_window(
    make_config: Callable[..., Path],
) -> None:
    """The cache holds only the journal's tally: a breaker that opened since the last scrape
    shows open at once, and a partner gone after a reload leaves the breaker series."""
    host = await make_host(make_config)
    metrics = Metrics("test:1", cache_seconds=5.0)
    host.breakers = {"hk": "closed", "gd": "closed"}
    await metrics.exposition(host)
    host.breakers = {"hk": "open"}
    text = (await metrics.exposition(host)).decode()
    breakers = {
        s.labels["partner"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tongban_breaker_state"
    }
    assert breakers == {"hk": 2.0}


def test_answers_are_counted_per_route_and_only_intake_is_timed() -> None:
    """Each answer adds one to its (route, method, status) counter, reused across calls; only
    the ones marked intake reach the intake histogram."""
    metrics = Metrics("test:1")
    for _ in range(3):
        metrics.answered("/v1/exchanges", "POST", 202, 0.01, True)
    metrics.answered("/v1/exchanges/{id}", "GET", 200, 0.01, False)
    assert metrics.requests.labels("/v1/exchanges", "POST", "202")._value.get() == 3.0
    assert metrics.requests.labels("/v1/exchanges/{id}", "GET", "200")._value.get() == 1.0
    [count] = [
        s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "tongban_intake_seconds_count"
    ]
    assert count == 3.0
