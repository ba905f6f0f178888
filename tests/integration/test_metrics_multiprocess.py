"""prometheus-client's multiprocess mode as `serve --workers` uses it: real processes, one directory.

Each "worker" here is a Python process that makes a Metrics with PROMETHEUS_MULTIPROC_DIR set (the
variable must be there before prometheus-client is imported, as in a worker), records, and exits;
a last one renders the exposition a scrape would get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO

WORKER = """
import asyncio, json, os, sys
from federation.runtime.metrics import Metrics

class Host:
    journal = None
    catalogue = None
    owner = "h:" + str(os.getpid())
    def __init__(self, breakers, backlog):
        self.breakers, self.backlog = breakers, backlog
    def breaker_states(self):
        return self.breakers
    def poll_backlog(self):
        return self.backlog

spec = json.loads(sys.argv[1])
m = Metrics("h:" + str(os.getpid()))
assert m.multiprocess
for version in spec["versions"]:
    m.configured(version)
for _ in range(spec["attempts"]):
    m.attempted("hk", "delivered", 0.01)
m.refresh(Host(spec["breakers"], spec["backlog"]))
if spec.get("render"):
    sys.stdout.write(__import__("prometheus_client").generate_latest(m._exposed).decode())
print(os.getpid(), file=sys.stderr)
"""


def worker(directory: Path, **spec: object) -> tuple[int, str]:
    """Run one worker process; its pid and what it rendered (if asked)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(spec)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stderr.split()[-1]), done.stdout


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_workers_add_up_and_a_dead_worker_keeps_its_counts_but_not_its_gauges(
    tmp_path: Path,
) -> None:
    """Two workers' attempts are summed; breaker shows the worst live one, backlog the live
    sum, config_info one series per live worker (a reloaded worker's old version at 0); once a
    worker is marked dead its attempts still count and its gauges are gone."""
    one, _ = worker(tmp_path, versions=["v0", "v1"], attempts=3, breakers={"hk": "open"}, backlog=2)
    spec = {"versions": ["v1"], "attempts": 4, "breakers": {"hk": "closed"}, "backlog": 5}
    _, text = worker(tmp_path, **spec, render=True)
    both = samples(text)
    assert both["tongban_attempts_total"] == {(("outcome", "delivered"), ("partner", "hk")): 7.0}
    assert both["tongban_breaker_state"] == {(("partner", "hk"),): 2.0}
    assert both["tongban_status_poll_backlog"] == {(): 7.0}
    mine = {k: v for k, v in both["tongban_config_info"].items() if ("pid", str(one)) in k}
    assert sorted((dict(k)["version"], v) for k, v in mine.items()) == [("v0", 0.0), ("v1", 1.0)]

    mark_process_dead(one, str(tmp_path))
    _, text = worker(tmp_path, versions=["v1"], attempts=0, breakers={}, backlog=0, render=True)
    after = samples(text)
    assert after["tongban_attempts_total"] == {(("outcome", "delivered"), ("partner", "hk")): 7.0}
    assert all(("pid", str(one)) not in k for k in after["tongban_config_info"])
    # the open breaker and the backlog of 2 went with the first worker; the second's remain
    assert after["tongban_breaker_state"] == {(("partner", "hk"),): 0.0}
    assert after["tongban_status_poll_backlog"] == {(): 5.0}
