"""The CLI and the guards of part 1 and 2 of issue #14: `tongban serve` refuses a non-loopback
host while some part of the API has no key; `journal show` and `audit search` are audited by the
OS user."""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
from pathlib import Path

from replay.factory import open_journal
from tests.acceptance.conftest import TONGBAN
from tests.integration.test_journal_contract import new


def tongban(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end."""
    return subprocess.run([*TONGBAN, *args], capture_output=True, text=True, timeout=120)


def test_serve_refuses_an_open_host_while_unguarded(make_config, tmp_path: Path) -> None:
    """`serve --host 0.0.0.0` on a catalogue without keys exits 2 naming what is unguarded."""
    root = make_config()
    done = tongban(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(tmp_path / "j.sqlite"),
        "--host",
        "0.0.0.0",
        "--port",
        "0",
    )
    assert done.returncode == 2, done.stderr
    assert "refusing --host 0.0.0.0" in done.stderr
    assert "source gd-portal (no key)" in done.stderr and "reload (no principal may)" in done.stderr


async def _filled(path: Path) -> str:
    """A journal at ``path`` with one exchange; its id."""
    j = open_journal(path)
    await j.open()
    try:
        ex, _ = await j.create(new("cli-1"), owner="t", lease_until=0)
    finally:
        await j.close()
    return ex.id


def test_journal_show_and_audit_search_are_audited_by_the_os_user(make_config, tmp_path) -> None:
    """A CLI read of an exchange leaves an entry with the OS user and the reason given, which
    `tongban audit search` finds (and its own search is an entry too)."""
    journal = tmp_path / "j.sqlite"
    xid = asyncio.run(_filled(journal))
    shown = tongban(
        "journal",
        "show",
        xid,
        "--journal",
        str(journal),
        "--config",
        str(make_config()),
        "--reason",
        "ticket 4711",
    )
    found = tongban("audit", "search", "--journal", str(journal), "--format", "json")
    again = tongban(
        "audit", "search", "--journal", str(journal), "--action", "audit", "--format", "json"
    )
    assert shown.returncode == 0, shown.stderr
    assert found.returncode == 0, found.stderr
    [entry] = json.loads(found.stdout)
    assert (entry["who"], entry["action"], entry["target"], entry["reason"]) == (
        getpass.getuser(),
        "journal-show",
        xid,
        "ticket 4711",
    )
    assert [e["who"] for e in json.loads(again.stdout)] == [getpass.getuser()]


def test_journal_show_masks_unless_revealed_with_a_reason(make_config, tmp_path) -> None:
    """Without --reveal no payload value is printed (its shape is); --reveal needs --reason
    (exit 2), and a reveal is its own audit entry, journal-reveal, with the reason."""
    journal = tmp_path / "j.sqlite"
    xid = asyncio.run(_filled(journal))
    base = ["journal", "show", xid, "--journal", str(journal), "--config", str(make_config())]
    masked = tongban(*base)
    masked_json = tongban(*base, "--format", "json")
    no_reason = tongban(*base, "--reveal")
    revealed = tongban(*base, "--reveal", "--reason", "ticket 4712")
    found = tongban("audit", "search", "--journal", str(journal), "--format", "json")
    assert masked.returncode == 0, masked.stderr
    assert "陳大文" not in masked.stdout and "‹redacted›" in masked.stdout
    assert "陳大文" not in masked_json.stdout
    assert no_reason.returncode == 2 and "--reveal needs --reason" in no_reason.stderr
    assert revealed.returncode == 0 and "陳大文" in revealed.stdout
    actions = [(e["action"], e["reason"]) for e in json.loads(found.stdout)]
    assert ("journal-reveal", "ticket 4712") in actions
    assert actions.count(("journal-show", "")) == 2
