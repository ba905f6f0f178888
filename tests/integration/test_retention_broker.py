"""The broker's own retention job checks each archive it writes against the journal and signs it
with the journal's key: a real broker with ``broker: retention:`` in partners.yaml, on a SQLite
file, PostgreSQL and the in-memory journal alike.

The job's journal is what makes the archive provable (``docs/operations.md``, "Retention");
before it was required, a broker that did not pass it would have left archives checked only on
their own and unsigned, and every retention test passed all the same.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from federation.config.retention import DAY
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from federation.runtime.retention import RetentionJob
from federation.testing import MockAdapter, reply
from replay.archive import check_archive, compare, read_archive
from replay.journal import ArchiveReads, Backend
from tests.conftest import hk_submission
from tests.waiting import wait_for

RETENTION = "broker:\n  retention: {{keep: 1d, every: 1h, archive_dir: {where}}}\n"


def with_retention(root: Path, archive_dir: Path) -> Path:
    """The catalogue at ``root`` with a retention policy of one day, archiving to ``archive_dir``."""
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8") + RETENTION.format(where=archive_dir)
    partners.write_text(text, encoding="utf-8")
    return root


async def delivered(broker: Broker, xid: str) -> None:
    """Wait until the broker has delivered ``xid``."""

    def get() -> Awaitable[Exchange | None]:
        return broker.get(xid)

    await wait_for(get, lambda ex: ex is not None and ex.state is State.DELIVERED, what=xid)


async def test_the_brokers_retention_signs_what_it_archives_against_the_journal(
    make_config: Callable[..., Path], journal_of: Backend, tmp_path: Path
) -> None:
    """Two applications delivered, then two days later the broker's job archives them: the file
    holds both, its signature verifies with the journal's key, and it matches the journal's
    tombstones (what ``tongban journal verify --archive FILE --journal …`` checks)."""
    root = with_retention(make_config(), tmp_path / "archive")
    later = [0.0]  # seconds the broker's clock runs ahead of the wall clock
    partner = MockAdapter(lambda _: reply({"status": "ok", "ref_no": "HK-1"}))
    broker = Broker(
        root=root,
        journal=journal_of,
        clock=lambda: time.time() + later[0],
        adapters={"hk": partner},
        poll_interval=0.05,
    )
    async with broker.open():
        ids = [(await broker.submit(hk_submission(f"kept-{n}")))[0].id for n in range(2)]
        for xid in ids:
            await delivered(broker, xid)
        later[0] = 2 * DAY
        assert broker.retention is not None
        run = await broker.retention.run_once()
        assert run is not None and run.file is not None
        checked = check_archive(run.file, getattr(journal_of, "seal", None))
        assert isinstance(journal_of, ArchiveReads)
        against = await compare(checked, journal_of)
    assert run.exchanges == 2
    assert sorted(r["exchange"]["id"] for r in read_archive(run.file)) == sorted(ids)
    assert (checked.problem, checked.unreadable, against) == (None, None, None)
    assert checked.signed and checked.unsigned is None  # signed, and with this journal's key


def test_the_job_cannot_be_made_without_its_journal() -> None:
    """``journal`` is required (keyword-only, no default): a job that could not check or sign
    its archives cannot be built."""
    kwargs: dict[str, Any] = {"archive": None, "policy": lambda: None, "owner": "host-1"}
    with pytest.raises(TypeError, match="journal"):
        RetentionJob(**kwargs)
