"""A metric that fails after a commit does not take the journal's writer thread down: the
write it measured is answered, and the next write is taken."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from replay.dbthread import DbThread


def _failing_metric(seconds: float, ops: int) -> None:
    raise ValueError("the metric refused the sample")


async def test_a_failing_metric_leaves_the_writer_running(tmp_path: Path) -> None:
    """The batch's metric raises after COMMIT: the write still resolves, and so does the next."""
    path = tmp_path / "w.sqlite"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        return conn

    writer = DbThread(
        connect,
        asyncio.get_running_loop(),
        name="writer",
        transactional=True,
        translate=lambda exc: exc,
        observe=_failing_metric,
    )
    writer.start_and_wait()
    try:
        first = writer.submit(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount)
        assert await asyncio.wait_for(first, 10) == 1
        second = writer.submit(lambda c: c.execute("INSERT INTO t VALUES (2)").rowcount)
        assert await asyncio.wait_for(second, 10) == 1
    finally:
        writer.stop()
        await asyncio.to_thread(writer.join, 10)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (2,)]
    finally:
        conn.close()
