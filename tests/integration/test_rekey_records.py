"""`tongban journal verify` checks the records a rekey leaves in a PostgreSQL journal, and
`tongban journal prune-rekeyed` deletes them once the instances that needed them have opened.

A rekey records, signed with the journal's MAC key, the old and new hash of every event it changed
(table ``rekeyed``, replay/rekeyed.py), so that the other instances carry their checkpoints over.
Before, verify never looked at those records (a forged or dangling one passed as ``ok``), and
nothing ever deleted them. The CLI runs in this process, on a thread, as instance ``a``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import Result

from replay.instances import Instance
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_rekey_instances import (
    instance,
    points,
    rekeyed,
    two_instances,
    wrote,
)
from tests.unit.test_cli_help import LOCALES, sealed_journal, tongban


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh schema (fails rather than skips when CI is set)."""
    async with fresh_schema() as schema:
        yield schema


async def cli(pg: PgSchema, *args: str, lang: str = "C") -> Result:
    """``tongban journal ARGS --journal <pg>`` as instance a would run it, in the locale ``lang``."""
    assert pg.keydir is not None
    env: dict[str, str | None] = {
        "LANG": lang,
        "TONGBAN_JOURNAL_KEY_FILE": str(pg.keydir / "journal.keys"),
        "TONGBAN_JOURNAL_CHECKPOINTS": str(pg.keydir / "a.checkpoints"),
    }
    where = f"{pg.dsn}?schema={pg.schema}"
    return await asyncio.to_thread(tongban, "journal", *args, "--journal", where, env=env)


async def rekey_times(pg: PgSchema) -> list[float]:
    """The time of every rekey that left records, oldest first."""
    return [float(r[0]) for r in await pg.fetch("SELECT DISTINCT at FROM rekeyed ORDER BY at")]


async def twice_rekeyed(pg: PgSchema) -> list[float]:
    """Instances a and b wrote; a rekeyed twice; the times of the two rekeys."""
    await two_instances(pg)
    await rekeyed(pg, "a")
    await rekeyed(pg, "a")
    times = await rekey_times(pg)
    assert len(times) == 2
    return times


async def announced(pg: PgSchema, started_at: float, pid: int) -> str:
    """An instance that started at ``started_at`` and announced itself just now; its id."""
    known = Instance(
        id=f"gz-02:{pid}:cd34",
        host="gz-02",
        pid=pid,
        config_version="sha256:1",
        started_at=started_at,
        seen_at=time.time(),
    )
    j = instance(pg, "a")
    await j.open()
    try:
        await j.announce(known)
    finally:
        await j.close()
    return known.id


@pytest.mark.parametrize("how", ["forged", "altered"])
async def test_a_record_not_signed_with_the_mac_key_is_damage(pg: PgSchema, how: str) -> None:
    """A record made up without the MAC key, or a rekey's record with its time changed: verify
    says broken, naming the event (exit 1; before: ok)."""
    await two_instances(pg)
    await rekeyed(pg, "a")
    seq = int(await pg.fetchval("SELECT max(seq) FROM rekeyed"))
    if how == "forged":
        held = await pg.fetchval("SELECT hash FROM events WHERE seq = ?", seq)
        await pg.execute(
            "INSERT INTO rekeyed (seq, old, new, at, mac) VALUES (?, ?, ?, ?, ?)",
            seq,
            os.urandom(32),
            held,
            time.time(),
            os.urandom(32),
        )
    else:
        await pg.execute("UPDATE rekeyed SET at = at + 1 WHERE seq = ?", seq)
    found = await cli(pg, "verify")
    assert found.exit_code == 1, found.output
    assert f"the rekey record of event {seq} " in found.stderr
    assert "is not signed with the journal's MAC key: forged or altered" in found.stderr


async def test_a_record_left_leading_nowhere_is_damage(pg: PgSchema) -> None:
    """Of two rekeys, the later one's record of an event deleted: the earlier one's leads to a
    hash the journal no longer holds, and verify says so, naming the event (before: ok)."""
    times = await twice_rekeyed(pg)
    seq = int(await pg.fetchval("SELECT min(seq) FROM rekeyed"))
    await pg.execute("DELETE FROM rekeyed WHERE seq = ? AND at = ?", seq, times[1])
    found = await cli(pg, "verify")
    assert found.exit_code == 1, found.output
    assert f"the rekey record of event {seq} " in found.stderr
    assert "leads neither to the event the journal holds nor to a later rekey's record" in (
        found.stderr
    )


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
async def test_a_forged_record_is_named_in_the_readers_language(
    pg: PgSchema, locale: str, language: str
) -> None:
    """The broken record is named in 繁體, 简体 or English, with its event's number."""
    await two_instances(pg)
    await rekeyed(pg, "a")
    seq = int(await pg.fetchval("SELECT max(seq) FROM rekeyed"))
    await pg.execute("UPDATE rekeyed SET mac = ? WHERE seq = ?", os.urandom(32), seq)
    found = await cli(pg, "verify", lang=locale)
    assert found.exit_code == 1, found.output
    expected = {
        "zh_Hant": f"事件 {seq} 的換密鑰記錄",
        "zh_Hans": f"事件 {seq} 的换密钥记录",
        "en": f"the rekey record of event {seq} ",
    }[language]
    assert expected in found.stderr


async def test_prune_is_refused_while_a_known_instance_has_not_opened_since(
    pg: PgSchema,
) -> None:
    """An instance that announced itself but started before the rekey: prune-rekeyed refuses,
    naming it (exit 2), and every record stays; --force prunes all the same."""
    times = await twice_rekeyed(pg)
    kept = await pg.fetchval("SELECT count(*) FROM rekeyed")
    waiting = await announced(pg, started_at=times[0] - 60, pid=4343)
    refused = await cli(pg, "prune-rekeyed", "--before", repr(times[1] + 1))
    assert refused.exit_code == 2, refused.output
    assert waiting in refused.stderr and "have not opened it since" in refused.stderr
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == kept
    forced = await cli(pg, "prune-rekeyed", "--before", repr(times[1] + 1), "--force")
    assert forced.exit_code == 0, forced.output
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == 0


async def test_prune_deletes_the_older_rekeys_records_and_the_journal_still_verifies(
    pg: PgSchema,
) -> None:
    """The older of two rekeys of unequal size is pruned, its own count said; verify and b pass."""
    await two_instances(pg)
    await rekeyed(pg, "a")
    await wrote(pg, "b", 3, 20)  # carries b's checkpoints over the first rekey
    await rekeyed(pg, "a")  # changes the events written since too
    times = await rekey_times(pg)
    await announced(pg, started_at=times[1] + 1, pid=4444)
    first = await pg.fetchval("SELECT count(*) FROM rekeyed WHERE at = ?", times[0])
    later = await pg.fetchval("SELECT count(*) FROM rekeyed WHERE at = ?", times[1])
    assert first != later
    done = await cli(pg, "prune-rekeyed", "--before", repr((times[0] + times[1]) / 2))
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"pruned {first} records of 1 rekeys made before ")
    assert await rekey_times(pg) == [times[1]]
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == later
    verified = await cli(pg, "verify")
    assert verified.exit_code == 0, verified.output
    b = instance(pg, "b")
    await b.open()
    try:
        await b.ping()
        assert (await b.verify())[1] is None
    finally:
        await b.close()
    await wrote(pg, "b", 1, 30)


async def test_prune_with_nothing_before_the_time_prunes_nothing(pg: PgSchema) -> None:
    """No rekey before the time given: nothing is deleted, and it says so (exit 0)."""
    times = await twice_rekeyed(pg)
    done = await cli(pg, "prune-rekeyed", "--before", repr(times[0] - 60))
    assert done.exit_code == 0, done.output
    assert "nothing pruned" in done.stdout
    assert await rekey_times(pg) == times


def test_prune_on_a_sqlite_journal_says_it_keeps_no_records(tmp_path: Path) -> None:
    """A SQLite journal keeps no rekey records: prune-rekeyed says so (exit 2, no traceback)."""
    path = sealed_journal(tmp_path)
    said = tongban("journal", "prune-rekeyed", "--before", "2026-12-01", "--journal", path)
    assert said.exit_code == 2, said.output
    assert "only a PostgreSQL journal keeps rekey records" in said.stderr
    assert "Traceback" not in said.output


async def test_a_record_forged_in_the_way_of_a_rekey_gives_way_to_the_rekeys_own(
    pg: PgSchema,
) -> None:
    """A record made up beforehand from the hash b checkpointed last: the rekey's own record of
    that event replaces it, so b still follows the rekey (before: the rekey's was dropped as a
    duplicate, and b refused the journal for good)."""
    await two_instances(pg)
    b = instance(pg, "b")
    last = points(b)[-1]
    await pg.execute(
        "INSERT INTO rekeyed (seq, old, new, at, mac) VALUES (?, ?, ?, ?, ?)",
        last.seq,
        last.head,
        os.urandom(32),
        time.time(),
        os.urandom(32),
    )
    await rekeyed(pg, "a")
    await b.open()
    try:
        await b.ping()
    finally:
        await b.close()
    done = await cli(pg, "verify")
    assert done.exit_code == 0, done.output


async def test_rekey_refuses_while_a_record_is_broken(pg: PgSchema) -> None:
    """A forged record in the journal: `journal rekey` refuses before it changes anything, naming
    the record (exit 2), as it does for any journal that does not verify."""
    await two_instances(pg)
    await rekeyed(pg, "a")
    seq = int(await pg.fetchval("SELECT max(seq) FROM rekeyed"))
    await pg.execute("UPDATE rekeyed SET mac = ? WHERE seq = ?", os.urandom(32), seq)
    assert pg.keydir is not None
    key_file = pg.keydir / "journal.keys"
    before = key_file.read_bytes()
    refused = await cli(pg, "rekey")
    assert refused.exit_code == 2, refused.output
    assert f"the rekey record of event {seq} " in refused.stderr
    assert "rekey would sign what is wrong" in refused.stderr
    assert key_file.read_bytes() == before
