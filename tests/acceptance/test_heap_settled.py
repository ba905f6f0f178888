"""`tongban serve` freezes its startup heap before it listens, and again after each reload
(federation/runtime/heap.py): read from its own log, in a real process."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Proc


def events(log: Path, name: str) -> list[dict[str, Any]]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [e for e in (json.loads(x) for x in lines if x.startswith("{")) if e["event"] == name]


def test_serve_settles_its_heap_at_start_and_after_a_reload(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc = Proc(
        "serve",
        *("--journal", str(tmp_path / "j.sqlite"), "--port", "0"),
        *("--log-format", "json", "--endpoint", "hk=http://127.0.0.1:9/"),
        log=log,
    )
    try:
        assert proc.first_line.startswith("tongban listening on "), log.read_text()
        [listening] = events(log, "broker_listening")
        # the catalogue, compiled mappings and WSDLs: tens of thousands of objects at least
        assert listening["frozen_objects"] > 10_000
        proc.popen.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while not events(log, "heap_settled") and time.monotonic() < deadline:
            time.sleep(0.1)
        [settled] = events(log, "heap_settled")
        # the new catalogue frozen in place of the old: had the old stayed frozen (settle without
        # unfreezing first), the count would be about twice the first
        assert 10_000 < settled["frozen_objects"] < 1.5 * listening["frozen_objects"]
        assert events(log, "catalogue_reloaded")
    finally:
        assert proc.stop() == 0
        proc.close()
