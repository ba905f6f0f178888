"""Encryption at rest: no ID number or name in clear in the stored bytes; keys outside the journal.

Run on SQLite and PostgreSQL (and the in-memory journal where keys are what is tested): the bytes
of the SQLite files and of the PostgreSQL rows are searched for the fixture's personal data.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import ConfigError, JournalError
from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.journal import AuditEntry, Query, Refusal, TrailQuery
from replay.keys import NONE, Keyring, read_file
from replay.memory import InMemoryJournal
from replay.refs import reference
from replay.sqlite import SQLiteJournal
from tests.integration.pg import SQLiteFile, Store

NOW = 1_790_000_000.0
ID_CN = "350203199208200046"
HKID = "A123456(3)"
NAME = "陳大文"
NEEDLES = [ID_CN.encode(), b"A123456", NAME.encode(), "陳大文".encode("utf-16-le")]
SEARCH_KEY = b"k" * 32


def application(i: int = 0) -> dict[str, Any]:
    """An application carrying the three jurisdictions' personal data."""
    return {"applicant": {"name": NAME, "hkid": HKID, "id_number": ID_CN}, "n": i}


async def write(j: Any, n: int = 2, start: int = 0) -> list[str]:
    """n exchanges with a mapped request and an attempt transcript, and a refused body."""
    ids = []
    for i in range(start, start + n):
        new = NewExchange(
            id=new_id(NOW + i),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=f"k{i}",
            request_hash="sha256:x",
            application=application(i),
            received_at=NOW + i,
            applicant_refs=(reference(SEARCH_KEY, HKID),),
        )
        ex, _ = await j.create(new, owner="w", lease_until=NOW + 100)
        transcript = {"request": {"body": application(i)}, "response": {"body": f"ok {NAME}"}}
        events = [
            Event(exchange_id=ex.id, kind="mapped", at=NOW + i, data={"mapped": application(i)}),
            Event(exchange_id=ex.id, kind="attempt_finished", at=NOW + i + 1, data=transcript),
        ]
        await j.record(ex.id, events, StateChange(state=State.DELIVERING, attempts=1), owner="w")
        ids.append(ex.id)
    body = orjson.dumps(application())
    await j.refuse(
        Refusal(
            at=NOW,
            remote="127.0.0.1",
            method="POST",
            path="/v1/exchanges",
            status=422,
            problem="mapping-failed",
            detail="no such field",
            idempotency_key="r1",
            body=body,
            body_bytes=len(body),
        )
    )
    return ids


async def stored_bytes(where: Store) -> bytes:
    """Every byte the store holds of events and refusals (files, or PostgreSQL rows)."""
    if isinstance(where, SQLiteFile):
        files = [where.path, *where.path.parent.glob(where.path.name + "-*")]
        return b"".join(f.read_bytes() for f in files)
    rows = await where.fetch("SELECT data FROM events")
    rows += await where.fetch("SELECT body, detail, path FROM refusals")
    return b"".join(v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row)


async def test_no_personal_data_in_clear_at_rest(where: Store) -> None:
    """Applications, mapped requests, transcripts and refused bodies are stored sealed only;
    reading them back gives them whole."""
    j = where.journal()
    await j.open()
    try:
        ids = await write(j)
        while_open = await stored_bytes(where)
        got = await j.get(ids[0])
        refused = await j.refusals()
    finally:
        await j.close()
    after = await stored_bytes(where)
    for needle in NEEDLES:
        assert needle not in while_open and needle not in after, needle
    assert got is not None and got.application == application(0)
    assert got.mapped == application(0)
    assert refused[0].body == orjson.dumps(application())


async def test_search_by_applicant_works_on_sealed_journals(where: Store) -> None:
    """The keyed applicant references still find exchanges whose applications are sealed."""
    j = where.journal()
    await j.open()
    try:
        ids = await write(j)
        found = await j.search(Query(applicant_ref=reference(SEARCH_KEY, "a123456 (3)")))
    finally:
        await j.close()
    assert [ex.id for ex in found] == ids[::-1]


async def test_a_value_moved_to_another_row_does_not_open(where: Store) -> None:
    """Sealed values are bound to their exchange: swapped between two, neither opens."""
    j = where.journal()
    await j.open()
    ids = await write(j)
    await j.close()
    sql = "SELECT data FROM events WHERE exchange_id = ? AND kind = 'received'"
    first, second = [await where.fetchval(sql, xid) for xid in ids]
    await where.execute(
        "UPDATE events SET data = ? WHERE exchange_id = ? AND kind = 'received'", second, ids[0]
    )
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalError, match="does not open"):
            await j.get(ids[0])
        _, broken = await j.verify()
    finally:
        await j.close()
    assert broken is not None and first != second


async def test_a_wrong_key_is_a_clear_error(where: Store) -> None:
    """Another keyring: reading says which key is missing, writing refuses, verify names the
    head; never a traceback from the cipher."""
    j = where.journal()
    await j.open()
    ids = await write(j)
    await j.close()
    place = where.keys
    assert place.file is not None
    place.file.write_bytes(Keyring.generate().dumps())
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalError, match=r"sealed with key \w+, and .* has no such key"):
            await j.get(ids[0])
        _, broken = await j.verify()
        with pytest.raises(JournalError, match="signature does not verify"):
            await write(j, 1, start=10)
    finally:
        await j.close()
    assert str(broken).startswith("event 1 (received of exchange ")
    assert "its sealed data does not open" in str(broken) and "has no such key" in str(broken)


async def test_rekey_keeps_the_chain_whole_and_search_working(where: Store) -> None:
    """After rekey: one data key (a new one), every value sealed under it, verify holds, the
    history and refused bodies read the same, search by applicant finds the same."""
    j = where.journal()
    await j.open()
    try:
        ids = await write(j)
        before = [await j.get(xid) for xid in ids]
        old = j.seal.ring
        resealed = await j.rekey()
        count, broken = await j.verify()
        after = [await j.get(xid) for xid in ids]
        found = await j.search(Query(applicant_ref=reference(SEARCH_KEY, HKID)))
        refused = await j.refusals()
        new = j.seal.ring
    finally:
        await j.close()
    assert broken is None and count > 0 and resealed >= len(ids) * 3 + 2
    assert [ex.events if ex else None for ex in after] == [
        ex.events if ex else None for ex in before
    ]
    assert [ex.id for ex in found] == ids[::-1]
    assert refused[0].body == orjson.dumps(application())
    assert old is not None and new is not None and new.current not in old.data
    assert place_ring(where).data.keys() == {new.current}
    marker = b"~tb3." + new.current.encode()
    stored = await where.fetch("SELECT data FROM events WHERE archived = false")
    assert all(bytes(row[0]).startswith(marker) for row in stored)
    j = where.journal()
    await j.open()
    try:
        assert (await j.verify())[1] is None  # a fresh process with the key file as left
    finally:
        await j.close()


async def rekey_with_a_write_after_the_reseal(j: Any) -> str:
    """Rekey ``j`` with one exchange written after its reseal transaction and before rekey
    takes the final seal (a broker writing during a rekey in the same process); its id."""
    reseal, written = j.reseal, []

    async def reseal_then_write(new: Any, staged: Any) -> Any:
        done = await reseal(new, staged)
        written.extend(await write(j, 1, start=20))
        return done

    j.reseal = reseal_then_write
    await j.rekey()
    return written[0]


async def test_a_write_landing_during_rekey_is_sealed_under_the_new_key(where: Store) -> None:
    """A write that commits after rekey's reseal is sealed under the new key: it still opens
    once the old key is gone from the key file, in a fresh process too, and verify holds."""
    j = where.journal()
    await j.open()
    try:
        await write(j)
        late = await rekey_with_a_write_after_the_reseal(j)
        got = await j.get(late)
    finally:
        await j.close()
    assert got is not None and got.application == application(20)
    j = where.journal()
    await j.open()
    try:
        again = await j.get(late)
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert again is not None and again.application == application(20)


async def test_memory_a_write_landing_during_rekey_is_sealed_under_the_new_key() -> None:
    """The same on the in-memory journal: the late write opens with the final key alone."""
    j = InMemoryJournal()
    await j.open()
    await write(j)
    late = await rekey_with_a_write_after_the_reseal(j)
    got = await j.get(late)
    assert got is not None and got.application == application(20)
    assert (await j.verify())[1] is None


async def test_a_create_queued_behind_the_reseal_is_sealed_under_the_new_key(
    where: Store,
) -> None:
    """A create sealed while rekey's reseal waits in the writer's queue is written after it:
    sealed again under the new key, so it opens once the old key is dropped, and verify holds."""
    j = where.journal()
    await j.open()
    try:
        await write(j)
        reseal, late = j.reseal, []

        async def reseal_with_a_create_behind(new: Any, staged: Any) -> Any:
            queued = asyncio.ensure_future(reseal(new, staged))
            await asyncio.sleep(0)  # the reseal is queued
            late.append(asyncio.ensure_future(write(j, 1, start=30)))
            await asyncio.sleep(0)  # the create is sealed and queued behind it
            return await queued

        j.reseal = reseal_with_a_create_behind
        await j.rekey()
        written = await late[0]
    finally:
        await j.close()
    j = where.journal()
    await j.open()
    try:
        got = await j.get(written[0])
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert got is not None and got.application == application(30)


async def test_a_refusal_and_an_audit_entry_queued_behind_the_reseal_open_after_it(
    where: Store,
) -> None:
    """A refused body and an audit entry written while rekey's reseal waits in the writer's
    queue are sealed under the key in force when they are written: both read back, and verify
    holds, in a fresh process with the final key file."""
    j = where.journal()
    await j.open()
    try:
        await write(j)
        reseal, late = j.reseal, []

        async def reseal_with_writes_behind(new: Any, staged: Any) -> Any:
            queued = asyncio.ensure_future(reseal(new, staged))
            await asyncio.sleep(0)  # the reseal is queued
            body = orjson.dumps(application(40))
            refusal = Refusal(
                at=NOW, remote="127.0.0.1", method="POST", path="/v1/exchanges", status=422,
                problem="mapping-failed", detail="late", idempotency_key="r40", body=body,
                body_bytes=len(body),
            )  # fmt: skip
            entry = AuditEntry(at=NOW, who="ops", role="support", action="show", target="late")
            late.extend(
                [asyncio.ensure_future(j.refuse(refusal)), asyncio.ensure_future(j.note(entry))]
            )
            await asyncio.sleep(0)  # both are queued behind it
            return await queued

        j.reseal = reseal_with_writes_behind
        await j.rekey()
        await asyncio.gather(*late)
    finally:
        await j.close()
    j = where.journal()
    await j.open()
    try:
        refused = await j.refusals()
        entries = await j.trail(TrailQuery())
        assert (await j.verify())[1] is None
    finally:
        await j.close()
    assert orjson.dumps(application(40)) in [r.body for r in refused]
    assert [e.target for e in entries] == ["late"]


def place_ring(where: Store) -> Keyring:
    """The keyring in the store's key file."""
    assert where.keys.file is not None
    return read_file(where.keys.file)


async def test_a_journal_from_before_keys_opens_and_rekey_seals_it(where: Store) -> None:
    """A journal written in clear (before this release, or unkeyed) still opens with keys; what
    it held stays readable, new writes are sealed, and rekey seals the rest."""
    j = where.journal(keys=NONE)
    await j.open()
    ids = await write(j)
    await j.close()
    assert ID_CN.encode() in await stored_bytes(where)
    j = where.journal()
    await j.open()
    try:
        assert (await j.get(ids[0])) is not None
        assert (await j.verify())[1] is None
        await j.rekey()
        assert (await j.verify())[1] is None
        got = await j.get(ids[0])
    finally:
        await j.close()
    assert got is not None and got.application == application(0)
    stored = await stored_bytes(where)  # live rows on PostgreSQL: VACUUM drops the dead ones
    for needle in NEEDLES:
        assert needle not in stored, needle


async def test_sqlite_rekey_leaves_no_clear_page_behind(tmp_path: Path) -> None:
    """On SQLite, rekey of a clear journal leaves no old page with the numbers in the file
    (secure_delete: freed pages are zeroed)."""
    path = tmp_path / "old.sqlite"
    j = SQLiteJournal(path, keys=NONE)
    await j.open()
    await write(j)
    await j.close()
    j = SQLiteJournal(path)
    await j.open()
    await j.rekey()
    await j.close()
    files = [path, *path.parent.glob(path.name + "-*")]
    stored = b"".join(f.read_bytes() for f in files)
    for needle in NEEDLES:
        assert needle not in stored, needle


async def test_key_files_open_to_others_are_refused(tmp_path: Path) -> None:
    """A key file group or others may read is refused with the chmod to run."""
    path = tmp_path / "j.sqlite"
    j = SQLiteJournal(path)
    await j.open()
    await j.close()
    keys = path.with_name("j.sqlite.keys")
    keys.chmod(0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {keys}"):
        await SQLiteJournal(path).open()


async def test_a_lost_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    """A journal that has keys, opened without its key file: an error, never a fresh key that
    would open nothing it sealed."""
    path = tmp_path / "j.sqlite"
    j = SQLiteJournal(path)
    await j.open()
    await write(j, 1)
    await j.close()
    path.with_name("j.sqlite.keys").unlink()
    with pytest.raises(ConfigError, match="is missing: restore it"):
        await SQLiteJournal(path).open()
    assert not path.with_name("j.sqlite.keys").exists()


async def test_journal_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """The journal, its -wal, -shm and -turn, its key and checkpoints files: mode 0600."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "j.sqlite"
        j = SQLiteJournal(path)
        await j.open()
        await write(j, 1)
        names = [path.name + s for s in ("", "-wal", "-shm", "-turn", ".keys")]
        open_modes = {n: stat.S_IMODE((tmp_path / n).stat().st_mode) for n in names}
        await j.close()
        closed = stat.S_IMODE(path.with_name("j.sqlite.checkpoints").stat().st_mode)
    finally:
        os.umask(old)
    assert open_modes == dict.fromkeys(names, 0o600)
    assert closed == 0o600


async def test_an_existing_journal_open_to_others_is_narrowed(tmp_path: Path) -> None:
    """A journal file from before, mode 0644, is made 0600 when opened."""
    path = tmp_path / "j.sqlite"
    j = SQLiteJournal(path, keys=NONE)
    await j.open()
    await j.close()
    path.chmod(0o644)
    j = SQLiteJournal(path)
    await j.open()
    await j.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_memory_journals_seal_and_rekey_too() -> None:
    """The in-memory journal seals with keys of its own lifetime and rekeys like the stores."""
    j = InMemoryJournal()
    await j.open()
    ids = await write(j)
    stored = b"".join(s.data for s in j._chain)
    assert all(needle not in stored for needle in NEEDLES)
    await j.rekey()
    assert (await j.verify())[1] is None
    got = await j.get(ids[0])
    assert got is not None and got.application == application(0)
