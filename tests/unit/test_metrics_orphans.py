"""A parent of `serve --workers N` killed outright leaves its metrics directory behind; the next
parent to start removes it, and nothing that is still somebody's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from federation.cli.workers import METRICS_PREFIX, _namespace, remove_orphaned_metrics


def a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_directories_of_parents_that_are_gone_are_removed(tmp_path: Path) -> None:
    """Of this pid namespace, a dead parent's directory goes; a live one's, another namespace's
    (its pids mean other processes), an older unnamed one, another name, a link (dangling or
    not) stay, and none of them stops the parent from starting."""
    ns = _namespace()
    dead_pid = a_dead_pid()
    dead = tmp_path / f"{METRICS_PREFIX}{ns}-{dead_pid}-k3j9"
    live = tmp_path / f"{METRICS_PREFIX}{ns}-{os.getpid()}-x81q"  # this process: alive
    elsewhere = tmp_path / f"{METRICS_PREFIX}{ns + 1}-{dead_pid}-p0w2"
    older = tmp_path / f"{METRICS_PREFIX}q7zk2"  # named before pids were in the name
    other = tmp_path / "tongban-other-1-x"
    for path in (dead, live, elsewhere, older, other):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"\0" * 16)
    dangling = tmp_path / f"{METRICS_PREFIX}{ns}-{dead_pid}-lnk1"
    dangling.symlink_to(tmp_path / "nowhere")
    linked = tmp_path / f"{METRICS_PREFIX}{ns}-{dead_pid}-lnk2"
    linked.symlink_to(live)
    assert remove_orphaned_metrics(tmp_path) == [dead]
    assert not dead.exists()
    for kept in (live, elsewhere, older, other):
        assert (kept / "counter_1.db").exists()
    assert dangling.is_symlink() and linked.is_symlink()
