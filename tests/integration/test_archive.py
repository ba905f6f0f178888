"""Retention: closed exchanges leave for a self-verifying archive; open ones stay; chains still hold.

Run on SQLite and on PostgreSQL (tests/integration/pg.py): both write the same archive format.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.archive import read_archive, verify_archive
from replay.journal import Query
from replay.keys import NONE
from tests.integration.pg import PgSchema, SQLiteFile, Store

NOW = 1_790_000_000.0


def application(i: int, base: float = NOW, *, fixed_id: bool = False) -> NewExchange:
    """The i-th application, received at ``base + i``; its id follows i when ``fixed_id``."""
    return NewExchange(
        id=f"01KZZZZZZZ{i:016d}" if fixed_id else new_id(base + i),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=f"k{i}",
        request_hash="sha256:x",
        application={"applicant": {"name": "陳大文"}, "n": i},
        received_at=base + i,
    )


async def journal_with(
    where: Store, closed: int, open_: int, *, fixed_ids: bool = False, **kw: Any
) -> tuple[Any, list[str]]:
    """A journal with some rejected (closed) and some received (open) exchanges."""
    j = where.journal(clock=lambda: NOW, **kw)
    await j.open()
    ids = []
    for i in range(closed + open_):
        ex, _ = await j.create(application(i, fixed_id=fixed_ids), owner="w", lease_until=NOW)
        if i < closed:
            await j.record(
                ex.id,
                [Event(exchange_id=ex.id, kind="rejected", at=NOW + i, data={"error": {"m": i}})],
                StateChange(state=State.REJECTED, last_error={"m": i}),
            )
        ids.append(ex.id)
    return j, ids


async def test_archive_moves_closed_exchanges_only(where: Store, tmp_path: Path) -> None:
    """Closed exchanges go to the archive and leave the journal; open ones stay; both verify."""
    j, ids = await journal_with(where, closed=7, open_=3)
    out = tmp_path / "2026-11.jsonl.gz"
    exchanges, events = await j.archive(older_than=NOW + 10, out=out, chunk=3)
    left = await j.search(Query(limit=100))
    count, broken = await j.verify()
    await j.close()
    assert (exchanges, events) == (7, 14)
    assert {ex.id for ex in left} == set(ids[7:])
    assert broken is None and count == 24  # tombstones keep the chain whole; 7 ~archived records
    assert verify_archive(out) == (7, 14, None)
    archived = list(read_archive(out))
    assert archived[0]["exchange"]["state"] == "rejected"
    # the archive keeps the events as the journal held them: sealed
    assert archived[0]["events"][0]["data"].startswith("~tb3.")
    assert "陳大文" not in gzip.decompress(out.read_bytes()).decode()


async def test_a_tampered_archive_is_detected(where: Store, tmp_path: Path) -> None:
    """A changed byte or a removed line in the archive file is found by verifying it alone."""
    j, _ = await journal_with(where, closed=4, open_=0)
    out = tmp_path / "a.jsonl.gz"
    await j.archive(older_than=NOW + 10, out=out)
    await j.close()
    lines = gzip.decompress(out.read_bytes()).splitlines(keepends=True)
    changed = tmp_path / "changed.jsonl.gz"
    changed.write_bytes(
        gzip.compress(b"".join([*lines[:2], lines[2].replace(b'"k1"', b'"k9"'), *lines[3:]]))
    )
    edited = tmp_path / "edited.jsonl.gz"
    sealed = lines[1].index(b"~tb3.") + 30  # a character inside a sealed application
    flipped = bytes([lines[1][sealed] ^ 0x01])
    line = lines[1][:sealed] + flipped + lines[1][sealed + 1 :]
    edited.write_bytes(gzip.compress(b"".join([*lines[:1], line, *lines[2:]])))
    removed = tmp_path / "removed.jsonl.gz"
    removed.write_bytes(gzip.compress(b"".join([*lines[:2], *lines[3:]])))
    assert verify_archive(changed)[2] is not None
    assert "altered" in str(verify_archive(edited)[2])
    assert "digest" in str(verify_archive(removed)[2])


async def test_archive_never_overwrites(where: Store, tmp_path: Path) -> None:
    """Archiving into an existing file is refused rather than losing the earlier archive."""
    j, _ = await journal_with(where, closed=1, open_=0)
    out = tmp_path / "a.jsonl.gz"
    out.write_bytes(b"earlier")
    try:
        await j.archive(older_than=NOW + 10, out=out)
    except FileExistsError:
        pass
    else:
        raise AssertionError("an existing archive was overwritten")
    finally:
        await j.close()
    assert out.read_bytes() == b"earlier"


async def test_both_backends_write_the_same_archive(postgres: PgSchema, tmp_path: Path) -> None:
    """The same history archived from SQLite and from PostgreSQL gives the same file content
    (unkeyed: sealed payloads differ by their random nonces, by design)."""
    contents = []
    for backend in (SQLiteFile(tmp_path / "j.sqlite"), postgres):
        j, _ = await journal_with(backend, closed=3, open_=1, fixed_ids=True, keys=NONE)
        out = tmp_path / f"{backend.name}.jsonl.gz"
        await j.archive(older_than=NOW + 10, out=out)
        await j.close()
        contents.append(gzip.decompress(out.read_bytes()))
    assert contents[0] == contents[1]
    assert verify_archive(tmp_path / "postgresql.jsonl.gz") == (3, 6, None)
