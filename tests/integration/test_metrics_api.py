"""GET /metrics over a real socket: who may read it, a refused reload, an unreadable journal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from federation.domain.errors import JournalUnavailable
from federation.logging import capture_logs
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.metrics import Metrics

VIEWER_KEY = "viewer-key-for-metrics-0123456789"


def samples(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def with_viewer(root: Path) -> Path:
    sha = hashlib.sha256(VIEWER_KEY.encode()).hexdigest()
    with (root / "partners.yaml").open("a", encoding="utf-8") as f:
        f.write(f"\nprincipals:\n  - {{id: prometheus, role: viewer, key_sha256: {sha}}}\n")
    return root


async def test_metrics_ask_for_a_viewer_key_once_a_viewer_exists(
    make_config, simulators, broker_at
) -> None:
    """With a viewer principal configured, /metrics without a key is 401 (journalled as a
    refusal) and with the viewer's key 200 in Prometheus' text format."""
    root = with_viewer(make_config())
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(url) as http:
        async with http.get("/metrics") as r:
            assert r.status == 401
            assert r.content_type == "application/problem+json"
        headers = {"Authorization": f"Bearer {VIEWER_KEY}"}
        async with http.get("/metrics", headers=headers) as r:
            assert r.status == 200
            text = await r.text()
        refusals = await broker.journal.refusals()
    assert [(x.path, x.status) for x in refusals] == [("/metrics", 401)]
    found = samples(text)
    assert found["tongban_journal_up"] == {frozenset(): 1.0}
    assert (
        found["tongban_http_requests_total"][
            frozenset({("route", "/metrics"), ("method", "GET"), ("status", "401")})
        ]
        == 1.0
    )


async def test_a_refused_reload_is_counted_and_logged_as_a_warning(
    make_config, simulators, broker_at
) -> None:
    """A reload of a broken partners.yaml answers 422, counts as refused, logs reload_refused at
    warning level, and the configuration version stays the one in force."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(url) as http:
        async with http.get("/metrics") as r:
            before = samples(await r.text())["tongban_config_info"]
        (root / "partners.yaml").write_text("partners: [", encoding="utf-8")
        with capture_logs() as logs:
            async with http.post("/v1/admin/reload") as r:
                assert r.status == 422
        async with http.get("/metrics") as r:
            after = samples(await r.text())
    assert after["tongban_config_reloads_total"] == {frozenset({("outcome", "refused")}): 1.0}
    assert after["tongban_config_info"] == before
    [line] = [x for x in logs if x["event"] == "reload_refused"]
    assert line["log_level"] == "warning" and line["problems"] >= 1


@dataclass
class _Down:
    writes_refused: bool = False  # down, not full: the tally is what fails

    async def tally(self) -> Any:
        raise JournalUnavailable("database is down")


@dataclass
class _Host:
    journal: Any
    catalogue: Catalogue
    owner: str = "test:1"

    def breaker_states(self) -> dict[str, str]:
        return {"hk": "open", "sc": "closed"}

    def poll_backlog(self) -> int:
        return 0


async def test_an_unreadable_journal_is_journal_up_zero_not_an_error(make_config) -> None:
    """When the journal cannot be read the scrape still answers: tongban_journal_up is 0, the
    journal's counts are absent (not zero), the instance's own metrics remain."""
    metrics = Metrics("test:1")
    with capture_logs() as logs:
        text = (await metrics.exposition(_Host(_Down(), load_catalogue(make_config())))).decode()
    found = samples(text)
    assert found["tongban_journal_up"] == {frozenset(): 0.0}
    assert "tongban_exchanges" not in found
    assert found["tongban_breaker_state"] == {
        frozenset({("partner", "hk")}): 2.0,
        frozenset({("partner", "sc")}): 0.0,
    }
    assert [x["event"] for x in logs] == ["metrics_journal_unreadable"]
