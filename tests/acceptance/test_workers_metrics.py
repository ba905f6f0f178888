"""/metrics of `tongban serve --workers 2`: whichever worker a scrape reaches, the totals add up."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import Proc
from tests.acceptance.test_workers import delivered, start, submit, workers_of
from tests.waiting import wait_for_sync

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
# counters (and histogram counts) that must equal the journal and never go backwards
COUNTERS = (
    "tongban_attempts_total",
    "tongban_partner_call_seconds_count",
    "tongban_submit_to_delivered_seconds_count",
    "tongban_intake_seconds_count",
)


def scrape(url: str) -> Samples:
    """One scrape on a new connection (so the kernel picks a worker for it)."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def total(samples: Samples, name: str) -> float:
    return sum(samples.get(name, {}).values())


def journal_counts(path: Path) -> tuple[int, int, int]:
    """Exchanges, attempts and deliveries, read from the journal file itself."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows, attempts, done = conn.execute(
            "SELECT count(*), coalesce(sum(attempts), 0),"
            " coalesce(sum(state = 'delivered'), 0) FROM exchanges"
        ).fetchone()
    return int(rows), int(attempts), int(done)


def assert_adds_up(samples: Samples, journal: Path) -> None:
    """The counters of one scrape equal what the journal holds."""
    rows, attempts, done = journal_counts(journal)
    assert total(samples, "tongban_attempts_total") == attempts
    assert total(samples, "tongban_partner_call_seconds_count") == attempts
    assert total(samples, "tongban_submit_to_delivered_seconds_count") == done
    accepted = samples["tongban_intake_seconds_count"][(("status", "202"),)]
    assert accepted == rows  # every application was accepted once, by one worker or the other


def assert_never_backwards(scrapes: list[Samples]) -> None:
    for name in COUNTERS:
        seen = [total(s, name) for s in scrapes]
        assert seen == sorted(seen), f"{name} went backwards between scrapes: {seen}"


def metrics_dir(worker: int) -> Path:
    """The multiprocess directory a worker was given (read from its environment)."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    [entry] = [e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(entry.split(b"=", 1)[1].decode())


def kill_one(parent: Proc, url: str) -> Samples:
    """SIGKILL a worker; once replaced, a scrape showing config_info of the live workers only."""
    victim = workers_of(parent)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for_sync(
        lambda: workers_of(parent),
        lambda now: len(now) == 2 and victim not in now,
        timeout=60,
        what="the killed worker replaced",
    )
    return wait_for_sync(
        lambda: scrape(url),
        lambda s: (
            {dict(k)["pid"] for k in s["tongban_config_info"]}
            == {str(w) for w in workers_of(parent)}
        ),
        timeout=30,
        what="the new worker's config_info",
    )


@pytest.mark.slow
def test_every_scrape_of_two_workers_adds_up_to_the_journal(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """Scrapes during and after traffic to two workers: counters never go backwards, and once
    the traffic is delivered every scrape equals the journal, also after one worker was killed
    and replaced (its counts stay, its live gauges go); the workers' metrics directory is
    private (0700) and is removed when the parent stops."""
    parent, url, journal = start(tmp_path, make_config(), procs)
    directory = metrics_dir(workers_of(parent)[0])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {metrics_dir(w) for w in workers_of(parent)} == {directory}

    traffic = threading.Thread(target=submit, args=(url, range(40), "m"))
    traffic.start()
    scrapes = []
    while traffic.is_alive():
        scrapes.append(scrape(url))
    traffic.join()
    wait_for_sync(lambda: delivered(url), lambda n: n == 40, timeout=60, what="40 delivered")
    for _ in range(8):
        scrapes.append(scrape(url))
        assert_adds_up(scrapes[-1], journal)
    # journal gauges: the same from any worker once its cached tally is renewed
    wait_for_sync(
        lambda: scrape(url).get("tongban_exchanges", {}),
        lambda found: (
            found == {(("partner", "hk"), ("service", "TD-VL-RENEW"), ("state", "delivered")): 40.0}
        ),
        timeout=30,
        what="tongban_exchanges to show 40 delivered",
    )
    pids = {dict(k)["pid"] for k in scrapes[-1]["tongban_config_info"]}
    assert pids == {str(w) for w in workers_of(parent)}  # one series per live worker
    assert all("pid" not in dict(k) for k in scrapes[-1]["tongban_breaker_state"])

    scrapes.append(kill_one(parent, url))
    for _ in range(4):
        scrapes.append(scrape(url))
        assert_adds_up(scrapes[-1], journal)
    assert_never_backwards(scrapes)

    assert parent.stop(signal.SIGTERM) == 0
    assert not directory.exists()
