"""`tongban journal prune-rekeyed` keeps a rekey's records while an instance that stopped cleanly
before it has not opened the journal since.

Rekey refuses while brokers run, so operators stop them first, and a broker that stops cleanly
withdraws from ``instances``: before, the prune saw none of the instances that still needed the
records and deleted them, and such an instance refused the journal for good at its next start.
The journal now keeps every instance that opened it, by the id of its checkpoints file (table
``opened``, replay/rekeyed.py), until an operator forgets it. The CLI runs as instance ``a``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from replay.checkpoints import Checkpoints
from replay.instances import Instance
from replay.postgres import PostgresJournal
from replay.seal import Seal
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_rekey_instances import instance, rekeyed, two_instances
from tests.integration.test_rekey_records import cli, rekey_times
from tests.unit.test_cli_help import LOCALES


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    """A fresh schema (fails rather than skips when CI is set)."""
    async with fresh_schema() as schema:
        yield schema


def ident(pg: PgSchema, name: str) -> str:
    """The id of instance ``name``'s checkpoints file, as the journal knows it."""
    assert pg.keydir is not None
    found = Checkpoints(pg.keydir / f"{name}.checkpoints", Seal(None)).identity()
    assert found is not None
    return found


async def stopped_cleanly(pg: PgSchema, name: str) -> None:
    """Instance ``name`` ran as a broker: it opened, announced itself, withdrew and closed."""
    j = instance(pg, name)
    await j.open()
    try:
        me = Instance(
            id=f"gz-02:77:{name}",
            host="gz-02",
            pid=77,
            config_version="sha256:1",
            started_at=time.time() - 3600,
            seen_at=time.time(),
        )
        await j.announce(me)
        await j.withdraw(me.id)
    finally:
        await j.close()


async def opens(pg: PgSchema, name: str) -> None:
    """Instance ``name`` opens the journal and takes writes."""
    j = instance(pg, name)
    await j.open()
    try:
        await j.ping()
    finally:
        await j.close()


async def stopped_for_a_rekey(pg: PgSchema) -> float:
    """a and b wrote, b stopped cleanly, a rekeyed: a time after the rekey."""
    await two_instances(pg)
    await stopped_cleanly(pg, "b")
    await rekeyed(pg, "a")
    [at] = await rekey_times(pg)
    return at + 1


async def test_an_instance_stopped_cleanly_before_the_rekey_holds_the_prune_back(
    pg: PgSchema,
) -> None:
    """b stopped cleanly before a's rekey: the prune refuses naming b until b has opened again."""
    after = await stopped_for_a_rekey(pg)
    kept = await pg.fetchval("SELECT count(*) FROM rekeyed")
    refused = await cli(pg, "prune-rekeyed", "--before", repr(after))
    assert refused.exit_code == 2, refused.output
    assert ident(pg, "b") in refused.stderr and ident(pg, "a") not in refused.stderr
    assert "last opened this journal before the rekey of" in refused.stderr
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == kept
    await opens(pg, "b")
    await opens(pg, "b")  # a restart: the same instance, known once
    assert await pg.fetchval("SELECT count(*) FROM opened WHERE id = ?", ident(pg, "b")) == 1
    done = await cli(pg, "prune-rekeyed", "--before", repr(after))
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"pruned {kept} records of 1 rekeys made before ")
    await opens(pg, "b")


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
async def test_the_refusal_names_the_instance_in_the_readers_language(
    pg: PgSchema, locale: str, language: str
) -> None:
    """The instance that has not opened since is named in 繁體, 简体 or English."""
    after = await stopped_for_a_rekey(pg)
    refused = await cli(pg, "prune-rekeyed", "--before", repr(after), lang=locale)
    assert refused.exit_code == 2, refused.output
    expected = {
        "zh_Hant": "這些實例最後一次開啟此日誌庫是在",
        "zh_Hans": "这些实例最后一次打开此日志库是在",
        "en": "instances last opened this journal before the rekey of",
    }[language]
    assert expected in refused.stderr and ident(pg, "b") in refused.stderr


async def test_an_instance_gone_for_good_is_forgotten_and_no_longer_holds_the_prune_back(
    pg: PgSchema,
) -> None:
    """forget-instance drops b (an unknown id is refused, naming those known); then it prunes."""
    after = await stopped_for_a_rekey(pg)
    unknown = await cli(pg, "forget-instance", "0123456789abcdef")
    assert unknown.exit_code == 2, unknown.output
    assert "knows no instance 0123456789abcdef" in unknown.stderr
    assert ident(pg, "b") in unknown.stderr
    forgot = await cli(pg, "forget-instance", ident(pg, "b"))
    assert forgot.exit_code == 0, forgot.output
    assert f"forgot instance {ident(pg, 'b')} (" in forgot.stdout
    assert await pg.fetchval("SELECT count(*) FROM opened WHERE id = ?", ident(pg, "b")) == 0
    done = await cli(pg, "prune-rekeyed", "--before", repr(after))
    assert done.exit_code == 0, done.output
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == 0


async def test_force_prunes_past_an_instance_that_has_not_opened_since(pg: PgSchema) -> None:
    """--force prunes past b, which stays known: the next rekey's prune names it again."""
    after = await stopped_for_a_rekey(pg)
    forced = await cli(pg, "prune-rekeyed", "--before", repr(after), "--force")
    assert forced.exit_code == 0, forced.output
    assert await pg.fetchval("SELECT count(*) FROM rekeyed") == 0
    await rekeyed(pg, "a")
    [at] = await rekey_times(pg)
    refused = await cli(pg, "prune-rekeyed", "--before", repr(at + 1))
    assert refused.exit_code == 2, refused.output
    assert ident(pg, "b") in refused.stderr


async def test_an_instance_on_a_read_only_connection_still_opens(pg: PgSchema) -> None:
    """A journal opened read-only (a standby) opens and verifies; its open is not recorded."""
    await two_instances(pg)
    last = "SELECT opened_at FROM opened WHERE id = ?"
    before = await pg.fetchval(last, ident(pg, "b"))
    assert pg.keydir is not None
    keys = replace(pg.keys, checkpoints=pg.keydir / "b.checkpoints")
    j = PostgresJournal(
        f"{pg.dsn}?default_transaction_read_only=on", schema=pg.schema, keys=keys, pool_size=2
    )
    await j.open()
    try:
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert await pg.fetchval(last, ident(pg, "b")) == before
