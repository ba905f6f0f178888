"""A parent of `serve --workers N` killed outright leaves its metrics directory behind; the next
parent to start removes it, and nothing that is still somebody's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from federation.cli.workers import METRICS_PREFIX, remove_orphaned_metrics


def a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_directories_of_parents_that_are_gone_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f"{METRICS_PREFIX}{a_dead_pid()}-k3j9"
    live = tmp_path / f"{METRICS_PREFIX}{os.getpid()}-x81q"  # this process: alive
    older = tmp_path / f"{METRICS_PREFIX}q7zk2"  # named before pids were in the name
    other = tmp_path / "tongban-other-1-x"
    for path in (dead, live, older, other):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"\0" * 16)
    assert remove_orphaned_metrics(tmp_path) == [dead]
    assert not dead.exists()
    assert live.exists() and older.exists() and other.exists()
