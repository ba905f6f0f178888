"""The broker's background loops outlive an error nobody foresaw: the worker's poll loop and
heartbeat, the instance's presence, the retention job and a worker's metrics refresh each log it
by its type (never its message, which could quote an application) and go on at their next turn;
those that use the journal on SQLite, PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from federation.config.retention import DAY, Retention
from federation.domain.ids import new_id
from federation.domain.models import Direction, Exchange, NewExchange, State
from federation.logging import capture_logs
from federation.runtime import metrics
from federation.runtime.catalogue import load_catalogue
from federation.runtime.metrics import MULTIPROC_ENV
from federation.runtime.presence import Presence
from federation.runtime.retention import RetentionJob
from federation.runtime.worker import Worker
from federation.testing import MockAdapter, reply
from replay.journal import Backend, Journal
from replay.memory import InMemoryJournal
from tests.conftest import HK_APPLICATION
from tests.waiting import wait_for, wait_until

NAME = "陳大文"


def breaking_once(journal: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``journal.<name>`` raises an error no backend is meant to raise (quoting the applicant)
    on its first call, then works again; the count of calls, kept up to date."""
    real = getattr(journal, name)
    calls = [0]

    async def call(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError(f"row of {NAME}")
        return await real(*args, **kw)

    monkeypatch.setattr(journal, name, call)
    return calls


async def due(journal: Journal, key: str) -> Exchange:
    """An exchange from gd-portal to hk whose lease has run out: any worker may claim it."""
    at = time.time()
    new = NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application=HK_APPLICATION,
        received_at=at,
    )
    ex, _ = await journal.create(new, owner="intake", lease_until=at - 1)
    return ex


def logged(logs: Sequence[Mapping[str, Any]], event: str) -> Mapping[str, Any]:
    """The one entry of ``event``; none names the applicant."""
    assert all(NAME not in repr(e) for e in logs)
    [entry] = [e for e in logs if e["event"] == event]
    return entry


async def test_the_worker_polls_and_renews_on_after_an_unforeseen_error(
    make_config: Any, journal: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claiming fails once, then renewing the leases of what is in hand: the exchange due is
    claimed at the next poll, its lease is renewed at the next beat, and it is delivered."""
    catalogue = load_catalogue(make_config())
    release = asyncio.Event()

    async def answer(_: Any) -> Any:
        await release.wait()
        return reply({"status": "ok", "ref": "HK-1"})

    claims = breaking_once(journal, "claim", monkeypatch)
    renewals = breaking_once(journal, "renew", monkeypatch)
    worker = Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": MockAdapter(answer)},
        owner="w1",
        lease=0.3,
        poll_interval=0.05,
    )
    ex = await due(journal, "loops-1")
    with capture_logs() as logs:
        worker.start()
        try:
            await wait_until(lambda: renewals[0] >= 2, what="a renewal after the failed one")
            release.set()
            done = await wait_for(
                lambda: journal.get(ex.id),
                lambda e: e is not None and e.state is State.DELIVERED,
                what="the exchange delivered",
            )
        finally:
            await worker.stop()
    assert done is not None and claims[0] >= 2
    assert logged(logs, "claim_crashed")["error"] == "RuntimeError"
    assert logged(logs, "lease_renewal_crashed")["error"] == "RuntimeError"


async def test_presence_announces_on_after_an_unforeseen_error(
    journal: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first announcement fails in a way nobody foresaw: the instance is announced at the
    next beat all the same."""
    calls = breaking_once(journal, "announce", monkeypatch)
    presence = Presence(journal, owner="host-1:4242:Q7K2ZD", clock=time.time, every=0.05)
    with capture_logs() as logs:
        presence.start()
        try:
            seen = await wait_for(
                lambda: journal.instances(seen_since=time.time() - 60),
                lambda found: len(found) == 1,
                what="the instance announced",
            )
        finally:
            await presence.stop()
    assert seen[0].host == "host-1" and calls[0] >= 2
    assert logged(logs, "instance_announce_crashed")["error"] == "RuntimeError"


async def test_the_retention_job_runs_on_after_an_unforeseen_error(tmp_path: Path) -> None:
    """A run fails in a way nobody foresaw: the job waits its period and runs again."""
    runs: list[float] = []

    async def archive(*, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        runs.append(older_than)
        if len(runs) == 1:
            raise RuntimeError(f"row of {NAME}")
        return 0, 0

    policy = Retention(keep=DAY, every=3_600, archive_dir=tmp_path / "archive")
    job = RetentionJob(
        archive=archive,
        policy=lambda: policy,
        owner="host-1",
        journal=InMemoryJournal(),  # never read: no run archives anything
        sleep=lambda _: asyncio.sleep(0),
    )
    with capture_logs() as logs:
        job.start()
        try:
            await wait_until(lambda: len(runs) >= 2, what="a second run")
        finally:
            await job.stop()
    assert logged(logs, "retention_crashed")["error"] == "RuntimeError"


async def test_a_workers_metrics_refresh_goes_on_after_an_unforeseen_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``serve --workers`` a worker writes its own gauges every REFRESH seconds: a round
    that fails (its file cannot be written) is logged, and the next round refreshes them."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    monkeypatch.setattr(metrics, "REFRESH", 0.01)
    asked = [0]

    class Host:
        journal = None  # no journal yet: it refuses nothing (metrics.refusing)

        def breaker_states(self) -> dict[str, str]:
            asked[0] += 1
            if asked[0] == 1:
                raise OSError(28, "No space left on device")
            return {"hk": "open"}

        def poll_backlog(self) -> int:
            return 3

    m = metrics.Metrics("w1")
    with capture_logs() as logs:
        m.start(Host())  # type: ignore[arg-type] # what refresh reads of a broker
        try:
            await wait_until(lambda: asked[0] >= 2, what="a second refresh")
        finally:
            await m.stop()
    assert logged(logs, "metrics_refresh_failed")["error"] == "OSError"


async def test_an_unforeseen_error_on_one_exchange_is_logged_without_its_message(
    make_config: Any, journal: Backend
) -> None:
    """An adapter fails in a way nobody foresaw, its message quoting the applicant: the delivery
    logs the error's type and a traceback without messages, never the applicant's name."""
    catalogue = load_catalogue(make_config())

    def answer(_: Any) -> Any:
        raise ValueError(f"cannot send {NAME}")

    worker = Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": MockAdapter(answer)},
        owner="w1",
        lease=30.0,
        poll_interval=0.05,
    )
    await due(journal, "loops-2")
    with capture_logs() as logs:
        assert await worker.work_once() == 1
    crashed = logged(logs, "adapter_crashed")
    assert crashed["error"] == "ValueError" and "ValueError" in crashed["exception"]
    assert NAME not in repr(logs)
