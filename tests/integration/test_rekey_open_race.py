"""Another process opens the journal while a rekey has staged its checkpoint but not committed
(a `journal show`, a broker started by its supervisor, another PostgreSQL instance), then the
rekey commits and dies before its own settle. The open reads the old chain: it must leave the
pending checkpoint alone, since the rekey may still commit. Before, it settled the file the old
chain's way, and the rekey's crash after its commit left the journal refused as rolled back for
good, the failure the staged checkpoint exists to prevent. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from tests.integration.pg import Store
from tests.integration.test_rekey_crash import (
    CRASHED,
    ROOT,
    described,
    journal_of,
    reopened,
    written,
)


def open_elsewhere(doc: str) -> int:
    """Another process opens and closes the journal; its exit code."""
    code = (
        "import asyncio, json, sys\n"
        "from tests.integration.test_rekey_crash import journal_of\n"
        "async def main():\n"
        "    j = journal_of(json.loads(sys.argv[1]))\n"
        "    await j.open()\n"
        "    await j.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, doc], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.returncode


def child() -> None:
    """Rekey; while it is staged, another process opens the journal; crash after the commit."""

    async def run() -> None:
        doc = sys.argv[1]
        j = journal_of(json.loads(doc))
        await j.open()
        reseal = j.reseal

        async def racing(new: Any, staged: Any) -> Any:
            def stage(seq: int, head: bytes) -> None:
                staged(seq, head)
                print("other open:", open_elsewhere(doc), flush=True)
                print("still pending:", j.checkpoints.pending() is not None, flush=True)

            await reseal(new, stage)
            os._exit(CRASHED)

        j.reseal = racing
        await j.rekey()

    asyncio.run(run())


async def test_an_open_during_a_rekey_leaves_its_checkpoint_pending(where: Store) -> None:
    ids = {xid: n for n, xid in enumerate(await written(where))}
    code = "from tests.integration.test_rekey_open_race import child; child()"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        described(where),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    said = out.decode()
    assert proc.returncode == CRASHED, said + err.decode()[-1500:]
    assert "other open: 0" in said and "still pending: True" in said, said
    await reopened(where, ids, start=10)
