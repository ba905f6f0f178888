"""The systemd unit shipped in the package: notify readiness, a watchdog, a stop that outlasts the
drain, a user of its own, reload by SIGHUP."""

from __future__ import annotations

import configparser
import re
from importlib import resources

import federation
from federation.runtime.shutdown import DRAIN


def unit() -> configparser.ConfigParser:
    """The unit file as systemd reads its sections (the package's copy, not a path in the repo)."""
    text = (resources.files(federation) / "deploy" / "tongban.service").read_text(encoding="utf-8")
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "min" else 1)


def test_the_unit_waits_for_ready_and_feeds_a_watchdog() -> None:
    """Type=notify with the main process allowed to notify, and a watchdog period set."""
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert seconds(service["WatchdogSec"]) > 0


def test_systemd_waits_longer_than_the_drain_before_it_kills() -> None:
    """TimeoutStopSec is above the --drain-timeout in ExecStart (or the default), so a drain is
    never cut by SIGKILL; the stop signal is SIGTERM."""
    service = unit()["Service"]
    given = re.search(r"--drain-timeout (\d+)", service["ExecStart"])
    drain = float(given[1]) if given else DRAIN
    assert seconds(service["TimeoutStopSec"]) > drain
    assert service["KillSignal"] == "SIGTERM"


def test_the_broker_runs_as_its_own_user_and_reloads_on_sighup() -> None:
    """Not root; state in its own 0700 directory; systemctl reload sends SIGHUP."""
    service = unit()["Service"]
    assert service["User"] not in ("", "root", "0")
    assert service["StateDirectoryMode"] == "0700"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "serve" in service["ExecStart"].split()
