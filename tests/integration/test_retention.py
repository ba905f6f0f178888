"""Retention by policy: the broker's scheduled job archives ended exchanges, then prunes them.

Run on SQLite and PostgreSQL (the journals of tests/integration/test_archive.py); the policy is
read from partners.yaml's ``broker: retention:``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import protocols
from federation.config import load_config
from federation.config.retention import DAY, Retention
from federation.domain.errors import ConfigError
from federation.runtime.retention import RetentionJob
from replay.archive import read_archive, verify_archive
from replay.journal import Query
from tests.integration.pg import Store
from tests.integration.test_archive import NOW, journal_with


def job(j: Any, directory: Path, *, at: float, **kw: Any) -> RetentionJob:
    """A retention job keeping one day, on a clock fixed at ``at``."""
    policy = Retention(keep=DAY, every=3_600, archive_dir=directory)
    return RetentionJob(
        archive=j.archive,
        policy=lambda: policy,
        owner="host-1:4242:Q7K2ZD",
        clock=lambda: at,
        journal=j,
        **kw,
    )


async def test_a_run_archives_then_prunes_what_is_due(where: Store, tmp_path: Path) -> None:
    """Ended exchanges older than keep go to one verified file and leave the journal; open work
    stays; the chain still verifies; a second run finds nothing and leaves no file."""
    j, ids = await journal_with(where, closed=5, open_=2)
    try:
        retention = job(j, tmp_path / "archive", at=NOW + 2 * DAY)
        first = await retention.run_once()
        again = await retention.run_once()
        left = await j.search(Query(limit=50))
        count, broken = await j.verify()
    finally:
        await j.close()
    assert first is not None and first.file is not None
    assert (first.exchanges, first.events) == (5, 10)
    assert verify_archive(first.file) == (5, 10, None)
    assert sorted(r["exchange"]["id"] for r in read_archive(first.file)) == sorted(ids[:5])
    assert sorted(ex.id for ex in left) == sorted(ids[5:])
    assert broken is None and count > 0
    assert again is not None and (again.exchanges, again.file) == (0, None)
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [first.file.name]


async def test_nothing_younger_than_the_policy_is_touched(where: Store, tmp_path: Path) -> None:
    """Ended exchanges changed less than keep ago stay in the journal, and no file is left."""
    j, ids = await journal_with(where, closed=3, open_=0)
    try:
        run = await job(j, tmp_path / "archive", at=NOW + DAY / 2).run_once()
        left = await j.search(Query(limit=50))
    finally:
        await j.close()
    assert run is not None and run.exchanges == 0
    assert sorted(ex.id for ex in left) == sorted(ids)
    assert list((tmp_path / "archive").iterdir()) == []


async def test_the_job_runs_on_its_schedule(tmp_path: Path) -> None:
    """The first run waits a random part of the period (instances spread out), later ones the
    whole period; each run archives what is due by then."""
    from tests.integration.pg import SQLiteFile

    j, _ = await journal_with(SQLiteFile(tmp_path / "j.sqlite"), closed=2, open_=1)
    waits: list[float] = []
    held = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 2:
            await held.wait()  # the third wait: stay here until the job is stopped

    retention = job(j, tmp_path / "archive", at=NOW + 2 * DAY, sleep=sleep)
    try:
        retention.start()
        while len(waits) < 3:  # two runs done
            await asyncio.sleep(0.01)
        await retention.stop()
    finally:
        await j.close()
    assert 0 <= waits[0] < 3_600 and waits[1:] == [3_600, 3_600]
    assert len(list((tmp_path / "archive").iterdir())) == 1  # the second run found nothing


def test_the_policy_is_read_from_partners_yaml(make_config) -> None:
    """broker.retention: keep, every and archive_dir; a keep under a day is refused at its line."""
    root = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    good = "broker:\n  retention: {keep: 90d, every: 30m, archive_dir: /srv/tongban/archive}\n"
    (root / "partners.yaml").write_text(text + good, encoding="utf-8")
    policy = load_config(root, protocols()).broker.retention
    assert policy == Retention(keep=90 * DAY, every=1_800, archive_dir=Path("/srv/tongban/archive"))
    (root / "partners.yaml").write_text(text + "broker:\n  retention: {keep: 2h}\n", "utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(root, protocols())
    [problem] = [str(p) for p in refused.value.problems]
    assert "broker.retention.keep" in problem and "partners.yaml:" in problem
