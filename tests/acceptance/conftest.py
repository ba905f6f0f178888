"""Helpers for running the `tongban` command as a user would: subprocesses on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

TONGBAN = [sys.executable, "-m", "federation"]


def run(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``tongban ARGS`` to completion."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*TONGBAN, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


class Proc:
    """A long-running ``tongban`` subprocess whose first stdout line is awaited.

    stderr (the JSON log) goes to a file, so a chatty process never blocks on a full pipe.
    """

    def __init__(self, *args: str, log: Path, cwd: Path = REPO) -> None:
        self.log = log
        self._err = log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            [*TONGBAN, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.popen.stdout is not None
        self.first_line = self.popen.stdout.readline().strip()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.popen.send_signal(sig)
        return self.popen.wait(timeout=30)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._err.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes started by a test, killed and closed after it."""
    started: list[Proc] = []
    yield started
    for p in started:
        p.close()


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """A plain urllib request (a client the broker did not write)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def serve(root: Path, journal: Path | str, endpoint: str, log: Path, *extra: str) -> Proc:
    """Start `tongban serve` with short leases and return it once it listens."""
    proc = Proc(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(journal),
        "--port",
        "0",
        "--endpoint",
        f"hk={endpoint}",
        "--lease",
        "2",
        "--poll-interval",
        "0.1",
        "--log-level",
        "warning",
        *extra,
        log=log,
    )
    assert proc.first_line.startswith("tongban listening on "), proc.log.read_text()[-2000:]
    return proc
