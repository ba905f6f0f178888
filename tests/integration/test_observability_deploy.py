"""The shipped alert rules and Grafana dashboard: checked by promtool and against the real metrics.

promtool (Debian's ``prometheus`` package, installed by ``make promtool``) is required when CI is
set: these tests then fail without it instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from federation.deploy import DASHBOARD, RULES, path
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.metrics import Metrics
from replay.tally import Tally

RULES_FILE = Path(str(path(RULES)))
DASHBOARD_FILE = Path(str(path(DASHBOARD)))
NAME = re.compile(r"\btongban_[a-z_]+\b")
# Labels Prometheus adds itself, and the `le` of histogram buckets.
OWN_LABELS = {"instance", "job", "le"}


@pytest.fixture
def promtool() -> str:
    """The promtool binary; a failure under CI, a skip elsewhere, when it is missing."""
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool not found (make promtool installs Debian's prometheus package)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return [t["expr"] for panel in doc["panels"] for t in panel["targets"]]


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables filled as Grafana would."""
    return expr.replace("$__rate_interval", "5m").replace("$partner", ".*")


# -- promtool -------------------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check(promtool: str) -> None:
    """`promtool check rules` accepts the shipped rules file."""
    result = run(promtool, "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel's query, as Grafana fills it, parses (checked as a recording rule)."""
    queries = dashboard_queries()
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": as_promql(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    file = tmp_path / "dashboard-rules.yml"
    file.write_text(yaml.safe_dump(recording), encoding="utf-8")
    result = run(promtool, "check", "rules", str(file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def _expanded(text: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        text = text.replace("{{ $labels." + key + " }}", value)
    return text


def _expected(name: str, labels: dict[str, str]) -> dict[str, Any]:
    [rule] = [r for r in rules() if r["alert"] == name]
    return {
        "exp_labels": {**rule.get("labels", {}), **labels},
        "exp_annotations": {k: _expanded(v, labels) for k, v in rule["annotations"].items()},
    }


def _config_drift_test() -> dict[str, Any]:
    """Workers of instance a (one reloaded, so its old version stays at 0) and instance b run
    one version: no drift; instance c joins with another version: drift."""
    info = "tongban_config_info"
    series = [
        (f'{info}{{instance="a",instance_owner="h:1",pid="1",version="v0"}}', "0x40"),
        (f'{info}{{instance="a",instance_owner="h:1",pid="1",version="v1"}}', "1x40"),
        (f'{info}{{instance="a",instance_owner="h:2",pid="2",version="v1"}}', "1x40"),
        (f'{info}{{instance="b",instance_owner="h:3",version="v1"}}', "1x40"),
        (f'{info}{{instance="c",instance_owner="h:4",version="v2"}}', "_x20 1x20"),
    ]
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "TongbanConfigDrift", "exp_alerts": []},
            {
                "eval_time": "35m",
                "alertname": "TongbanConfigDrift",
                "exp_alerts": [_expected("TongbanConfigDrift", {})],
            },
        ],
    }


def test_the_alerts_fire_on_the_situations_they_name(promtool: str, tmp_path: Path) -> None:
    """promtool's rule unit tests: a partner that only fails, an exchange older than its retry
    policy, an unreadable journal, a journal that reads but refuses writes for want of room (the
    one TongbanJournalUnavailable misses), a breaker held open, new dead letters and instances on
    two configurations raise their alert; a partner that delivers, a young exchange, a closed
    breaker, a journal with room again and a worker's stale 0 for the version it ran before a
    reload raise none."""
    series = [
        ('tongban_attempts_total{partner="hk",outcome="transient_error",instance="a"}', "0+5x40"),
        ('tongban_attempts_total{partner="gd",outcome="transient_error",instance="a"}', "0+1x40"),
        ('tongban_attempts_total{partner="gd",outcome="delivered",instance="a"}', "0+5x40"),
        # journal gauges: both instances report the same values
        *[
            (f'tongban_oldest_waiting_seconds{{partner="{p}",instance="{i}"}}', v)
            for p, v in (("hk", "100000+60x40"), ("gd", "30+0x40"))
            for i in ("a", "b")
        ],
        *[
            (f'tongban_retry_max_elapsed_seconds{{partner="{p}",instance="{i}"}}', "86400x40")
            for p in ("hk", "gd")
            for i in ("a", "b")
        ],
        ('tongban_journal_up{instance="a"}', "1x40"),
        ('tongban_journal_up{instance="b"}', "1x5 0x35"),
        # instance c reads its journal all along, but from minute 10 it refuses writes for want
        # of room, and finds room again at minute 30
        ('tongban_journal_up{instance="c"}', "1x40"),
        ('tongban_journal_writes_refused{instance="a"}', "0x40"),
        ('tongban_journal_writes_refused{instance="c"}', "0x10 1x20 0x10"),
        ('tongban_breaker_state{partner="hk",instance="a"}', "2x40"),
        ('tongban_breaker_state{partner="gd",instance="a"}', "0x40"),
        *[
            (
                f'tongban_exchanges{{state="failed",partner="hk",service="TD-VL-RENEW",instance="{i}"}}',
                "0x10 3x30",
            )
            for i in ("a", "b")
        ],
    ]
    test = {
        "rule_files": [str(RULES_FILE)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanPartnerDown",
                        "exp_alerts": [_expected("TongbanPartnerDown", {"partner": "hk"})],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanOldestWaitingBeyondRetryPolicy",
                        "exp_alerts": [
                            _expected("TongbanOldestWaitingBeyondRetryPolicy", {"partner": "hk"})
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanJournalUnavailable",
                        "exp_alerts": [_expected("TongbanJournalUnavailable", {"instance": "b"})],
                    },
                    {"eval_time": "5m", "alertname": "TongbanJournalFull", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanJournalFull",
                        "exp_alerts": [_expected("TongbanJournalFull", {"instance": "c"})],
                    },
                    {"eval_time": "35m", "alertname": "TongbanJournalFull", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanBreakerOpenLong",
                        "exp_alerts": [_expected("TongbanBreakerOpenLong", {"partner": "hk"})],
                    },
                    {"eval_time": "5m", "alertname": "TongbanBreakerOpenLong", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "TongbanDeadLetters",
                        "exp_alerts": [_expected("TongbanDeadLetters", {"partner": "hk"})],
                    },
                    {"eval_time": "5m", "alertname": "TongbanDeadLetters", "exp_alerts": []},
                ],
            },
            _config_drift_test(),
        ],
    }
    file = tmp_path / "rules-test.yml"
    file.write_text(yaml.safe_dump(test, allow_unicode=True), encoding="utf-8")
    result = run(promtool, "test", "rules", str(file))
    assert result.returncode == 0, result.stdout + result.stderr


# -- names against the real exposition ------------------------------------------------------------


@dataclass
class _Journal:
    writes_refused = False

    async def tally(self) -> Tally:
        return Tally(
            exchanges={("retry_wait", "hk", "TD-VL-RENEW"): 1},
            oldest_waiting={"hk": 0.0},
            callbacks_pending=2,
        )


@dataclass
class _Host:
    journal: Any
    catalogue: Catalogue
    owner: str = "test:1"

    def breaker_states(self) -> dict[str, str]:
        return {pid: "open" for pid in self.catalogue.config.partners}

    def poll_backlog(self) -> int:
        return 3


async def exported(make_config: Callable[..., Path]) -> dict[str, set[str]]:
    """Every sample name the broker's /metrics exposition has, with its label names, once each
    hook has been called."""
    metrics = Metrics("test:1")
    metrics.attempted("hk", "delivered", 0.1)
    metrics.delivered("hk", 1.0)
    metrics.committed(0.001, 4)
    metrics.configured("abc")
    metrics.requests.labels("/v1/exchanges", "POST", "202").inc()
    metrics.intake.labels("202").observe(0.01)
    metrics.reloads.labels("ok").inc()
    host = _Host(journal=_Journal(), catalogue=load_catalogue(make_config()))
    text = (await metrics.exposition(host)).decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _used(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names a query uses (in selectors, by/without/on clauses)."""
    labels: set[str] = set()
    for inside in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([a-z_]+)\s*[=!]~?", inside))
    for clause in re.findall(r"\b(?:by|without|on)\s*\(([^)]*)\)", expr):
        labels.update(x.strip() for x in clause.split(",") if x.strip())
    return set(NAME.findall(expr)), labels


async def test_rules_and_dashboard_name_only_metrics_the_broker_exports(
    make_config: Callable[..., Path],
) -> None:
    """Every tongban_* name and every label in the alert rules and the dashboard's queries is
    one the broker's /metrics really has."""
    names = await exported(make_config)
    all_labels = set().union(*names.values()) | OWN_LABELS
    queries = [r["expr"] for r in rules()] + [as_promql(q) for q in dashboard_queries()]
    used_names: set[str] = set()
    for expr in queries:
        metric_names, labels = _used(expr)
        used_names |= metric_names
        assert metric_names <= names.keys(), (expr, metric_names - names.keys())
        assert labels <= all_labels, (expr, labels - all_labels)
    # the journal's gauges, the latencies and the breaker are all on the dashboard or in a rule
    for name in (
        "tongban_exchanges",
        "tongban_oldest_waiting_seconds",
        "tongban_attempts_total",
        "tongban_breaker_state",
        "tongban_journal_writes_refused",
        "tongban_journal_commit_seconds_bucket",
        "tongban_submit_to_delivered_seconds_bucket",
        "tongban_config_info",
    ):
        assert name in used_names, name


def test_the_files_are_package_data() -> None:
    """The rules and the dashboard are found through the installed package, not the source tree."""
    assert RULES_FILE.is_file() and DASHBOARD_FILE.is_file()
    doc = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    assert doc["uid"] == "tongban-broker" and doc["panels"]
