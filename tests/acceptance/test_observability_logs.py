"""Log lines an SRE collects: journal actions of the CLI, and `tongban serve --log-format`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from federation.domain.models import Direction, NewExchange, State, StateChange
from replay.factory import open_journal
from tests.acceptance.conftest import TONGBAN, Proc, http
from tests.conftest import HK_APPLICATION, REPO

HKID = "K802133(3)"  # in the application below: it must never reach a log line


def tongban(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TONGBAN, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (other lines are the command's own messages)."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


async def _one_rejected(path: Path) -> str:
    """A journal holding one rejected hk exchange; its id."""
    journal = open_journal(str(path))
    await journal.open()
    try:
        now = time.time()
        new = NewExchange(
            id="01JAAAAAAAAAAAAAAAAAAAAAAA",
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key="log-1",
            request_hash="sha256:" + "0" * 64,
            application={**HK_APPLICATION, "hkid": HKID},
            received_at=now,
        )
        exchange, _ = await journal.create(new, owner="test", lease_until=now + 30)
        await journal.record(
            exchange.id,
            [],
            StateChange(state=State.REJECTED, last_error={"kind": "mapping", "message": "x"}),
            owner="test",
        )
        return exchange.id
    finally:
        await journal.close()


def test_cli_journal_actions_leave_one_log_line_each(tmp_path: Path) -> None:
    """migrate and replay each write one JSON line to stderr (event, who, counts), without the
    journal's location, the reason typed or anything of the application."""
    journal = tmp_path / "j.sqlite"
    migrated = tongban("journal", "migrate", "--journal", str(journal))
    assert migrated.returncode == 0, migrated.stderr
    [line] = [x for x in json_lines(migrated.stderr) if x.get("component") == "cli"]
    assert line["event"] == "journal_migrated" and line["applied"]
    assert line["level"] == "info" and line["os_user"] and line["host"]

    xid = asyncio.run(_one_rejected(journal))
    reason = f"applicant {HKID} called"
    replayed = tongban(
        "replay", xid, "--mode", "remap", "--reason", reason, "--journal", str(journal)
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    [line] = [x for x in json_lines(replayed.stderr) if x.get("component") == "cli"]
    assert {k: line[k] for k in ("event", "mode", "exchanges", "skipped")} == {
        "event": "journal_replayed",
        "mode": "remap",
        "exchanges": 1,
        "skipped": 0,
    }
    for text in (migrated.stderr, replayed.stderr):
        assert str(journal) not in text and HKID not in text and "called" not in text


def test_serve_writes_the_access_log_as_json_or_for_people(tmp_path: Path) -> None:
    """`--log-format json` gives one JSON access line per request (method, route template,
    status, duration; never the path's id or the body); `--log-format console` gives text."""
    for fmt in ("json", "console"):
        log = tmp_path / f"{fmt}.log"
        proc = Proc(
            "serve",
            "--journal",
            str(tmp_path / f"{fmt}.sqlite"),
            "--port",
            "0",
            "--log-format",
            fmt,
            "--endpoint",
            "hk=http://127.0.0.1:9/",
            log=log,
        )
        try:
            assert proc.first_line.startswith("tongban listening on "), log.read_text()
            url = proc.first_line.removeprefix("tongban listening on ")
            status, _ = http("GET", url + "/v1/exchanges/01JNOSUCHEXCHANGEAAAAAAAAA")
            assert status == 404
        finally:
            assert proc.stop() == 0
            proc.close()
        text = log.read_text(encoding="utf-8")
        assert "01JNOSUCHEXCHANGEAAAAAAAAA" not in text
        if fmt == "json":
            access = [x for x in json_lines(text) if x.get("event") == "http_request"]
            assert [(a["method"], a["route"], a["status"]) for a in access] == [
                ("GET", "/v1/exchanges/{id}", 404)
            ]
            assert isinstance(access[0]["duration_ms"], float)
        else:
            assert not json_lines(text)
            assert "http_request" in text and "route=/v1/exchanges/{id}" in text
