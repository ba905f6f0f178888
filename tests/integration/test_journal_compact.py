"""How the journal keeps its rows small, and that nothing a reader or an auditor relies on moved:
request hashes as 32 bytes in SQLite (text elsewhere, and as written before), row digests of 16
bytes in the chain (32 as written before), the key-first unique index that replaced exchanges_key
(migration 0013, tested on a journal that holds rows), 8 KiB pages for a new SQLite file, receipts
packed in their row (JSON as written before), and applicant references of 16 bytes (found with
those of 32 written before)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sqlite3
from pathlib import Path

import pytest

from federation.domain.errors import IdempotencyConflict, JournalDamaged, JournalError
from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay import refs, rows, sqlitesql
from replay.compress import COLUMNS_1, compress
from replay.journal import Backend, Query
from replay.sqlite import PAGE_SIZE, SQLiteJournal
from tests.integration.pg import JOURNALS, open_journal_of

NOW = 1_790_000_000.0
HASH = "sha256:" + "5e" * 32


def new(n: int, *, key: str | None = None, request_hash: str = HASH) -> NewExchange:
    return NewExchange(
        id=new_id(NOW + n),
        direction=Direction.OUTBOUND,
        source="gd-zwfw",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key or f"k{n}",
        request_hash=request_hash,
        application={"applicant": {"name": "陳大文"}},
        received_at=NOW + n,
    )


async def delivered(j: Backend, n: int) -> str:
    """An exchange taken through queued and delivering to delivered, with a receipt."""
    ex, _ = await j.create(new(n), owner="w", lease_until=NOW + 100)
    for state in (State.QUEUED, State.DELIVERING):
        await j.record(ex.id, [], StateChange(state=state), owner="w")
    done = StateChange(
        state=State.DELIVERED, receipt={"receipt_number": f"HK{n:06d}", "status": "accepted"}
    )
    await j.record(ex.id, [Event(exchange_id=ex.id, kind="delivered", at=NOW + n + 1)], done)
    return ex.id


# -- request hashes ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", JOURNALS)
async def test_request_hash_reads_back_as_written_and_still_guards_its_key(
    backend: str, tmp_path: Path
) -> None:
    async with open_journal_of(backend, tmp_path) as j:
        ex, created = await j.create(new(1), owner="w", lease_until=NOW + 100)
        assert created
        got = await j.get(ex.id)
        assert got is not None and got.request_hash == HASH
        again, created = await j.create(new(2, key="k1"), owner="w", lease_until=NOW + 100)
        assert not created and again.id == ex.id and again.request_hash == HASH
        with pytest.raises(IdempotencyConflict):
            await j.create(
                new(3, key="k1", request_hash="sha256:" + "00" * 32),
                owner="w",
                lease_until=NOW + 100,
            )
        odd, _ = await j.create(new(4, request_hash="md5:abc"), owner="w", lease_until=NOW + 100)
        found = await j.get(odd.id)
        assert found is not None and found.request_hash == "md5:abc"


async def test_sqlite_keeps_the_hash_as_32_bytes_and_reads_rows_written_as_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path)
    await j.open()
    try:
        ex, _ = await j.create(new(1), owner="w", lease_until=NOW + 100)
        old, _ = await j.create(new(2), owner="w", lease_until=NOW + 100)
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            kept = conn.execute("SELECT request_hash FROM exchanges WHERE id = ?", (ex.id,))
            assert kept.fetchone()[0] == bytes.fromhex("5e" * 32)
            # as a journal written before this change holds it
            conn.execute("UPDATE exchanges SET request_hash = ? WHERE id = ?", (HASH, old.id))
        got = await j.get(old.id)
        assert got is not None and got.request_hash == HASH
        with pytest.raises(IdempotencyConflict):
            await j.create(
                new(3, key="k2", request_hash="sha256:" + "00" * 32),
                owner="w",
                lease_until=NOW + 100,
            )
        assert (await j.verify())[1] is None
    finally:
        await j.close()


def test_hash_column_keeps_what_is_not_a_sha256_as_text() -> None:
    assert rows.hash_column(HASH) == bytes.fromhex("5e" * 32)
    assert rows.hash_text(rows.hash_column(HASH)) == HASH
    for other in (
        "sha256:" + "zz" * 32,
        "sha256:" + "5E" * 32,
        "sha256:abc",
        "md5:" + "5e" * 32,
        "",
    ):
        assert rows.hash_column(other) == other


# -- row digests in the chain --------------------------------------------------------------------


@pytest.mark.parametrize("backend", JOURNALS)
async def test_a_changed_row_is_found_by_its_16_byte_digest(backend: str, tmp_path: Path) -> None:
    async with open_journal_of(backend, tmp_path) as j:
        xid = await delivered(j, 1)
        assert (await j.verify())[1] is None
        if backend == "memory":
            return  # no rows to edit behind the journal's back
        await _edit_receipt(j, xid)
        problem = (await j.verify())[1]
        assert problem is not None and problem.where == f"exchange {xid}"
        assert "its row" in problem.reason


async def _edit_receipt(j: Backend, xid: str) -> None:
    forged = b'{"receipt_number":"HK999999","status":"accepted"}'
    if isinstance(j, SQLiteJournal):
        with contextlib.closing(sqlite3.connect(j.path)) as conn, conn:
            conn.execute("UPDATE exchanges SET receipt = ? WHERE id = ?", (forged, xid))
    else:
        pool = j._pool  # type: ignore[attr-defined]
        await pool.execute("UPDATE exchanges SET receipt = $1 WHERE id = $2", forged, xid)


async def test_sqlite_chain_holds_16_bytes_and_still_checks_32_written_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path)
    await j.open()
    try:
        monkeypatch.setattr(rows, "shown_digest", _first_digest)  # as the journal wrote before
        before = await delivered(j, 1)
        monkeypatch.undo()
        after = await delivered(j, 2)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            lengths = dict(
                conn.execute(
                    "SELECT exchange_id, max(length(state)) FROM events GROUP BY exchange_id"
                ).fetchall()
            )
        assert lengths == {before: 32, after: 1 + 16}
        assert (await j.verify())[1] is None
        await _edit_receipt(j, before)
        problem = (await j.verify())[1]
        assert problem is not None and problem.where == f"exchange {before}"
    finally:
        await j.close()


def _first_digest(row: rows.Row) -> bytes:
    """A row digest as the first releases recorded it: all 32 bytes, of fewer columns."""
    return rows._digest(b"tongban/shown/1", (row[k] for k in rows.SHOWN_1))


def test_a_digest_of_another_length_matches_nothing() -> None:
    row = rows.created(new(1))
    digest = rows.shown_digest(row)
    assert len(digest) == 1 + rows.SHOWN_BYTES == 17
    assert rows.shown_matches(row, digest)
    assert not rows.shown_matches(row, digest[:8])  # a prefix shorter than 16 bytes holds nothing
    assert not rows.shown_matches(row, digest[:-1])
    assert not rows.shown_matches(row, b"")
    assert not rows.shown_matches({**row, "state": "delivered"}, digest)


# -- the key-first unique index (migration 0013) -------------------------------------------------


def _migrated_to(path: Path, last: int) -> None:
    """A SQLite file with the migrations up to ``last`` applied, as an earlier release left it."""
    folder = Path(sqlitesql.__file__).parent / "sql" / "sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.isolation_level = None
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        for f in sorted(folder.glob("*.sql")):
            if int(f.name.split("_", 1)[0]) <= last:
                for statement in sqlitesql._statements(f.read_text(encoding="utf-8")):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {last}")


def _row(xid: str, source: str, key: str) -> tuple[object, ...]:
    receipt = b'{"receipt_number":"HK1"}'
    head = (xid, "outbound", source, "hk", "TD-VL-RENEW", key, HASH, "delivered", 1)
    return (*head, None, None, None, None, receipt, None, NOW, NOW + 1, None, 0, None, "submitted")


async def test_migration_0013_keeps_every_row_and_the_uniqueness_of_keys(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _migrated_to(path, 12)
    first, second = new_id(NOW), new_id(NOW + 1)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            f"INSERT INTO exchanges VALUES ({', '.join('?' * 21)})",
            [_row(first, "gd-zwfw", "same-key"), _row(second, "mo-portal", "same-key")],
        )
    j = SQLiteJournal(path)
    await j.open()
    try:
        for xid, source in ((first, "gd-zwfw"), (second, "mo-portal")):
            got = await j.get(xid)
            assert got is not None
            assert (got.source, got.idempotency_key, got.request_hash, got.receipt) == (
                source,
                "same-key",
                HASH,
                {"receipt_number": "HK1"},
            )
            assert got.lifecycle_state == "submitted" and got.state is State.DELIVERED
        with pytest.raises(IdempotencyConflict):  # the key is still unique within its source
            await j.create(
                new(5, key="same-key", request_hash="sha256:" + "00" * 32),
                owner="w",
                lease_until=NOW + 100,
            )
        found = await j.search(Query(idempotency_key="same-key"))
        assert sorted(e.id for e in found) == sorted([first, second])
    finally:
        await j.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM exchanges WHERE idempotency_key = ?", ("k",)
            )
        )
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 13
    assert "exchanges_key" not in indexes
    assert {"exchanges_state", "exchanges_closed", "exchanges_lifecycle"} <= indexes
    assert "USING INDEX sqlite_autoindex_exchanges_2 (idempotency_key=?)" in plan, plan


# -- pages ---------------------------------------------------------------------------------------


async def test_a_new_file_has_8k_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    _migrated_to(old, 12)
    for path, size in ((tmp_path / "new.sqlite", PAGE_SIZE), (old, 4096)):
        j = SQLiteJournal(path)
        await j.open()
        try:
            await delivered(j, 1)
            assert (await j.verify())[1] is None
        finally:
            await j.close()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == size


# -- receipts packed in their row ----------------------------------------------------------------


async def _raw(j: Backend, sql_lite: str, sql_pg: str, *args: object) -> list[tuple[object, ...]]:
    """Rows read behind the journal's back (SQLite or PostgreSQL)."""
    if isinstance(j, SQLiteJournal):
        with contextlib.closing(sqlite3.connect(j.path)) as conn, conn:
            return [tuple(r) for r in conn.execute(sql_lite, args).fetchall()]
    pool = j._pool  # type: ignore[attr-defined]
    return [tuple(r) for r in await pool.fetch(sql_pg, *args)]


@pytest.mark.parametrize("backend", JOURNALS)
async def test_a_receipt_is_packed_in_its_row_and_reads_back_whole(
    backend: str, tmp_path: Path
) -> None:
    """The receipt reads back as given, the chain still proves the row, and the stored column is
    packed (smaller than its JSON); last_error stays JSON, since a search looks inside it."""
    async with open_journal_of(backend, tmp_path) as j:
        xid = await delivered(j, 7)
        failed, _ = await j.create(new(8), owner="w", lease_until=NOW + 100)
        error = {"kind": "permanent_error", "message": "partner refused: 證件號碼格式錯誤"}
        for state in (State.QUEUED, State.DELIVERING):
            await j.record(failed.id, [], StateChange(state=state), owner="w")
        await j.record(failed.id, [], StateChange(state=State.FAILED, last_error=error))
        got = await j.get(xid)
        assert got is not None and got.receipt == {
            "receipt_number": "HK000007",
            "status": "accepted",
        }
        assert (await j.verify())[1] is None
        found = await j.search(Query(error="格式錯誤"))
        assert [ex.id for ex in found] == [failed.id]
        if backend == "memory":
            return
        [(receipt,)] = await _raw(
            j,
            "SELECT receipt FROM exchanges WHERE id = ?",
            "SELECT receipt FROM exchanges WHERE id = $1",
            xid,
        )
        assert isinstance(receipt, bytes) and receipt[:1] == rows.PACKED
        assert len(receipt) < len(rows.dumps(got.receipt))
        [(stored_error,)] = await _raw(
            j,
            "SELECT last_error FROM exchanges WHERE id = ?",
            "SELECT last_error FROM exchanges WHERE id = $1",
            failed.id,
        )
        assert isinstance(stored_error, bytes) and stored_error[:1] == b"{"
        assert rows.loads(stored_error) == error


def test_a_receipt_written_as_json_before_reads_as_it_was() -> None:
    """Rows written before packing hold the JSON itself: it reads unchanged. A packed column
    that does not inflate is a journal error naming the column, not a crash."""
    assert rows.loads(b'{"receipt_number":"HK1"}') == {"receipt_number": "HK1"}
    assert rows.loads(rows.receipt_column({"receipt_number": "HK1"})) == {"receipt_number": "HK1"}
    with pytest.raises(JournalError, match="packed row column"):
        rows.loads(rows.PACKED + b"\xff\xfe")


def test_a_packed_receipt_as_stored_reads_and_its_dictionary_never_changes() -> None:
    """Bytes a journal stores for a packed receipt read back whatever this code does to pack:
    the dictionary they need is pinned (a change to it is a new marker byte, not an edit). A
    packed column that inflates to something that is not JSON is a damaged journal."""
    stored = bytes.fromhex("01c3a2dfc3db0004ccb19a530b00")
    assert rows.loads(stored) == {"receipt_number": "HK000007", "status": "accepted"}
    assert hashlib.sha256(COLUMNS_1).hexdigest()[:16] == "b8677028f88bc4b4"
    with pytest.raises(JournalDamaged, match="does not parse"):
        rows.loads(rows.PACKED + compress(b"{not json", b"", COLUMNS_1))


def test_a_receipt_that_packing_would_not_shorten_is_kept_as_json() -> None:
    assert rows.receipt_column({}) == b"{}"
    assert rows.receipt_column(None) is None


# -- applicant references of 16 bytes --------------------------------------------------------------


@pytest.mark.parametrize("backend", JOURNALS)
async def test_applicant_search_finds_16_byte_references_and_32_byte_ones_written_before(
    backend: str, tmp_path: Path
) -> None:
    """New references are stored as their first 16 bytes; a search with the whole keyed hash
    finds those and the whole 32-byte ones that journals wrote before, and no other applicant."""
    key = bytes(range(32))
    mine, other = refs.reference(key, "A123456(3)"), refs.reference(key, "K802133(3)")
    async with open_journal_of(backend, tmp_path) as j:
        now_kept, _ = await j.create(
            dataclasses.replace(new(1), applicant_refs=(mine, other)), owner="w", lease_until=NOW
        )
        before, _ = await j.create(new(2), owner="w", lease_until=NOW)
        if backend == "memory":
            j.refs[before.id] = (mine,)  # type: ignore[attr-defined]
        else:
            await _raw(
                j,
                "INSERT INTO exchange_refs (ref, exchange_id) VALUES (?, ?) RETURNING ref",
                "INSERT INTO exchange_refs (ref, exchange_id) VALUES ($1, $2) RETURNING ref",
                mine,
                before.id,
            )
            stored = await _raw(
                j,
                "SELECT length(ref) FROM exchange_refs WHERE exchange_id = ?",
                "SELECT length(ref) FROM exchange_refs WHERE exchange_id = $1",
                now_kept.id,
            )
            assert sorted(stored) == [(16,), (16,)]
        found = await j.search(Query(applicant_ref=mine))
        assert sorted(ex.id for ex in found) == sorted([now_kept.id, before.id])
        nobody = refs.reference(key, "C6688231")
        assert await j.search(Query(applicant_ref=nobody)) == []
