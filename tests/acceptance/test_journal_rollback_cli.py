"""`tongban serve` on a SQLite journal put back from an older copy, beside the current keys and
checkpoints (the review's steps): it refuses to start, exit 2, saying what happened and where the
runbook is, with no traceback; `journal verify` names the same rollback; the same journal before
the rollback starts as before."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from replay.factory import open_journal
from tests.acceptance.conftest import TONGBAN
from tests.integration.test_journal_contract import new
from tests.waiting import wait_for_sync


def tongban(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end."""
    return subprocess.run([*TONGBAN, *args], capture_output=True, text=True, timeout=timeout)


async def _submit(path: Path, *keys: str) -> None:
    """One application per key into the journal at ``path`` (checkpointed when it closes)."""
    j = open_journal(path)
    await j.open()
    try:
        for key in keys:
            await j.create(new(key), owner="t", lease_until=0)
    finally:
        await j.close()


def test_serve_refuses_a_rolled_back_journal(
    make_config: Callable[..., Path], tmp_path: Path
) -> None:
    """Refused at start, nothing written; verify says the same; the newest copy put back starts."""
    root, journal = make_config(), tmp_path / "j.sqlite"
    asyncio.run(_submit(journal, "before-1", "before-2"))
    with (
        contextlib.closing(sqlite3.connect(journal)) as live,
        contextlib.closing(sqlite3.connect(tmp_path / "old.sqlite")) as old,
    ):
        live.backup(old)
    asyncio.run(_submit(journal, "after-1"))
    os.replace(journal, tmp_path / "newest.sqlite")
    os.replace(tmp_path / "old.sqlite", journal)

    served = tongban("serve", "--config", str(root), "--journal", str(journal), "--port", "0")
    verified = tongban("journal", "verify", "--journal", str(journal))

    assert served.returncode == 2, served.stderr
    assert f"tongban serve: journal {journal}: its checkpoint of " in served.stderr
    assert "records event 3, but the journal ends at event 2: it was rolled back" in served.stderr
    assert '"A rolled-back journal"' in served.stderr and "Traceback" not in served.stderr
    with contextlib.closing(sqlite3.connect(journal)) as db:
        assert db.execute("SELECT max(seq) FROM events").fetchone()[0] == 2
    assert verified.returncode == 1
    assert "records event 3, but the journal ends at event 2" in verified.stderr

    os.replace(tmp_path / "newest.sqlite", journal)  # runbook step 1: the newest copy back
    assert tongban("journal", "verify", "--journal", str(journal)).returncode == 0
    proc = subprocess.Popen(
        [*TONGBAN, "serve", "--config", str(root), "--journal", str(journal), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def started() -> int | None:
            if proc.poll() is not None:
                return -1
            with contextlib.closing(sqlite3.connect(journal)) as db:
                return int(db.execute("SELECT count(*) FROM instances").fetchone()[0])

        assert wait_for_sync(started, bool, what="the broker announced", timeout=60) == 1, (
            proc.communicate()[1]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
