"""/metrics scraped while `tongban demo` sends its traffic, checked against the journal file."""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import TONGBAN
from tests.conftest import REPO
from tests.waiting import wait_for_sync

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@dataclass
class Demo:
    url: str
    journal: Path
    lines: queue.Queue[str | None]
    popen: subprocess.Popen[str]

    def next_line(self, timeout: float = 180) -> str:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"the demo exited ({self.popen.wait()}) before it was done")
        return line


@pytest.fixture
def demo() -> Iterator[Demo]:
    """`tongban demo --keep-running` as a subprocess, its stdout read line by line."""
    popen = subprocess.Popen(
        [*TONGBAN, "demo", "--keep-running"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while True:
            line = lines.get(timeout=120)
            assert line is not None, "the demo exited before starting its broker"
            found = re.search(r"broker on (\S+), journal (\S+),", line)
            if found:
                break
        yield Demo(found.group(1), Path(found.group(2)), lines, popen)
    finally:
        popen.send_signal(signal.SIGINT)
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        reader.join(timeout=30)
        assert popen.stdout is not None
        popen.stdout.close()


def scrape(url: str) -> Samples:
    """Every sample of /metrics by name and labels."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def exchanges(samples: Samples) -> dict[tuple[str, str, str], int]:
    """tongban_exchanges as {(state, partner, service): count}."""
    found = {}
    for labels, value in samples.get("tongban_exchanges", {}).items():
        d = dict(labels)
        found[(d["state"], d["partner"], d["service"])] = int(value)
    return found


def journal_counts(path: Path) -> tuple[dict[tuple[str, str, str], int], int]:
    """Exchanges per (state, partner, service) and attempts started, read from the file itself."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT state, target, service, count(*) FROM exchanges GROUP BY 1, 2, 3"
        ).fetchall()
        attempts = conn.execute("SELECT coalesce(sum(attempts), 0) FROM exchanges").fetchone()[0]
    finally:
        conn.close()
    return {(s, p, v): n for s, p, v, n in rows}, int(attempts)


def total(samples: Samples, name: str) -> float:
    return sum(samples.get(name, {}).values())


@pytest.mark.slow
def test_metrics_during_the_demo_agree_with_the_journal(demo: Demo) -> None:
    """Scrapes while the demo runs never lose an exchange, and once it is done (and the cached
    tally renewed) the exchanges by state, partner and service, the attempts and the deliveries
    equal what the journal holds."""
    during: list[Samples] = []
    while True:
        during.append(scrape(demo.url))
        try:
            line = demo.lines.get_nowait()
        except queue.Empty:
            time.sleep(0.1)
            continue
        if line is None:
            raise AssertionError("the demo exited before it was done")
        if "still running" in line:
            break
    seen = [sum(exchanges(s).values()) for s in during]
    assert seen == sorted(seen), "an exchange vanished from the journal's counts between scrapes"
    assert all(s["tongban_journal_up"][()] == 1.0 for s in during)

    counts, attempts = journal_counts(demo.journal)
    # the journal gauges come from a tally read at most every 5 s: the next read agrees
    final = wait_for_sync(
        lambda: scrape(demo.url),
        lambda s: exchanges(s) == counts,
        timeout=30,
        what="the journal gauges to show the finished demo",
    )
    assert seen[-1] <= sum(counts.values())
    assert total(final, "tongban_attempts_total") == attempts
    delivered = sum(n for (state, _, _), n in counts.items() if state == "delivered")
    assert total(final, "tongban_submit_to_delivered_seconds_count") == delivered
    assert total(final, "tongban_partner_call_seconds_count") == attempts
    # every intake answer was timed, and the journal committed in batches of at least one write
    assert total(final, "tongban_intake_seconds_count") >= 1
    assert final["tongban_journal_commit_batch_size_count"][()] >= 1
    assert final["tongban_journal_commit_batch_size_sum"][()] >= sum(counts.values())
    # nothing waits any more, so no partner has an oldest waiting exchange
    assert final.get("tongban_oldest_waiting_seconds", {}) == {}
    [(labels, one)] = final["tongban_config_info"].items()
    assert one == 1.0 and re.fullmatch(r"[0-9a-f]{12}", dict(labels)["version"])
    assert set(dict(k)["partner"] for k in final["tongban_breaker_state"]) >= {"hk", "gd", "mo"}
