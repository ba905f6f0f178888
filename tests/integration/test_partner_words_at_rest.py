"""The partner's words in an exchange's last error are sealed at rest, as its events are.

A refusal can quote the application (an ID number, a name): those words never reach the
``exchanges`` row in clear, on SQLite (the file and its -wal) or PostgreSQL (the row), nor an
archive file; read back through the journal, the exchange shows them to a reader who may reveal
and the mask to one who may not, as before. Rows written before (the words in clear) still read
and verify, and a rekey seals them; verify still catches an edited last error.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.domain.errors import JournalError
from federation.domain.ids import new_id
from federation.domain.models import Direction, Exchange, NewExchange, State, StateChange
from federation.domain.words import shown_error
from federation.logging import MASK
from replay import lasterror
from replay.journal import Backend, Query
from tests.conftest import hk_submission
from tests.integration.pg import SQLiteFile, Store
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_partner_words import answer, refusing_partner
from tests.integration.test_roles import with_principals

NOW = 1_790_000_000.0
OURS = "hk refused the request with HTTP 400"
WORDS = "证件号码 A123456(3) 陳大文 不合法"
NEEDLES = (b"A123456(3)", "陳大文".encode(), "不合法".encode())
NEW = {  # as a delivery journals it (federation/runtime/delivery.py)
    "kind": "permanent_error",
    "message": OURS,
    "status": 400,
    "partner_message": WORDS,
    "form": 2,
}


async def refused(journal: Any, key: str, error: dict[str, Any] = NEW) -> str:
    """An exchange rejected with ``error`` as its last error; its id."""
    ex, _ = await journal.create(
        NewExchange(
            id=new_id(NOW),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=key,
            request_hash=f"sha256:{key}",
            application={"applicant": {"name": "陳大文", "hkid": "A123456(3)"}},
            received_at=NOW,
        ),
        owner="w1",
        lease_until=time.time() + 30,
    )
    change = StateChange(state=State.REJECTED, last_error=error, release_lease=True)
    await journal.record(ex.id, [], change, owner="w1")
    return str(ex.id)


async def row_bytes(where: Store) -> bytes:
    """What the store holds of its exchanges: the SQLite file and its -wal (after the journal
    closed, which checkpoints), or every PostgreSQL row in binary and as text."""
    if isinstance(where, SQLiteFile):
        files = [where.path, *where.path.parent.glob(where.path.name + "-*")]
        return b"".join(f.read_bytes() for f in files)
    values = await where.fetch("SELECT * FROM exchanges")
    texts = await where.fetch("SELECT x::text, last_error::text FROM exchanges AS x")
    every = [*(v for row in values for v in row), *(v for row in texts for v in row)]
    return b"".join(v if isinstance(v, bytes) else str(v).encode() for v in every)


def clear_in(stored: bytes) -> list[bytes]:
    """The needles found in ``stored``, as bytes or as the hex a bytea's text spells."""
    return [n for n in NEEDLES if n in stored or n.hex().encode() in stored]


def assert_shown_as_before(ex: Exchange | None) -> None:
    """The exchange's last error is the one journalled: whole to who reveals, masked else."""
    assert ex is not None and ex.last_error == NEW and list(ex.last_error) == list(NEW)
    clear = shown_error(ex.last_error, clear=True, mask=MASK)
    masked = shown_error(ex.last_error, clear=False, mask=MASK)
    assert clear is not None and clear["message"] == f"{OURS}: {WORDS}"
    assert clear["partner_message"] == WORDS
    assert masked is not None and masked["message"] == f"{OURS}: {MASK}"
    assert masked["partner_message"] == MASK and WORDS not in str(masked)


async def test_the_partners_words_are_nowhere_in_clear_at_rest(where: Store) -> None:
    """Neither the ID number nor the name the partner quoted is in the SQLite file or the
    PostgreSQL row; read back (a fresh journal too), the error is the one journalled, the journal
    verifies and a search by error finds our words, never theirs."""
    j = where.journal()
    await j.open()
    try:
        xid = await refused(j, "at-rest-1")
        while_open = await row_bytes(where) if not isinstance(where, SQLiteFile) else b""
    finally:
        await j.close()
    assert clear_in(while_open + await row_bytes(where)) == []
    j = where.journal()
    await j.open()
    try:
        got = await j.get(xid)
        _, broken = await j.verify()
        by_ours = [ex.id for ex in await j.search(Query(error="HTTP 400"))]
        by_theirs = await j.search(Query(error="A123456"))
    finally:
        await j.close()
    assert_shown_as_before(got)
    assert broken is None and by_ours == [xid] and by_theirs == []


UNMAPPED = {  # an application that does not map (federation/runtime/mapping.py), or a reply
    "kind": "mapping",
    "message": "1 field(s) cannot be taken; nothing was passed on",
    "problems": [
        {
            "message": "'陳大文 A123456(3) 不合法' is not a whole number",
            "path": "applicant.name",
            "file": "mappings/hk/td-vehicle-licence-renewal.yaml",
            "line": 32,
            "severity": "error",
        }
    ],
}


async def test_a_mappings_problems_are_nowhere_in_clear_at_rest(where: Store) -> None:
    """A mapping's problems can quote the value they are about: sealed in the row as the
    partner's words are, read back as written, masked (their places kept) unless revealed."""
    j = where.journal()
    await j.open()
    try:
        xid = await refused(j, "unmapped-1", UNMAPPED)
    finally:
        await j.close()
    assert clear_in(await row_bytes(where)) == []
    j = where.journal()
    await j.open()
    try:
        got = await j.get(xid)
        _, broken = await j.verify()
        found = await j.search(Query(error="cannot be taken"))
    finally:
        await j.close()
    assert got is not None and got.last_error == UNMAPPED and broken is None
    assert [x.id for x in found] == [xid] and found[0].last_error == UNMAPPED
    masked = shown_error(got.last_error, clear=False, mask=MASK)
    assert masked is not None and masked["problems"] == [
        {**UNMAPPED["problems"][0], "message": MASK}
    ]
    assert shown_error(got.last_error, clear=True, mask=MASK) == UNMAPPED


async def test_every_journal_reads_a_mappings_problems_back(journal: Any) -> None:
    xid = await refused(journal, "unmapped-2", UNMAPPED)
    got = await journal.get(xid)
    assert got is not None and got.last_error == UNMAPPED


async def test_every_journal_reads_it_back_and_archives_it_sealed(
    journal: Backend, tmp_path: Path
) -> None:
    """On every backend (memory too): the error reads as journalled, the journal verifies, and
    an archive file holds the partner's words sealed, as it holds the events."""
    xid = await refused(journal, "at-rest-2")
    assert_shown_as_before(await journal.get(xid))
    assert (await journal.verify())[1] is None
    out = tmp_path / "archive.jsonl.gz"
    assert await journal.archive(older_than=time.time() + 3600, out=out) == (1, 2)
    archived = gzip.decompress(out.read_bytes())
    assert clear_in(archived) == []
    [line] = [orjson.loads(raw) for raw in archived.splitlines() if b'"exchange"' in raw]
    assert line["exchange"]["last_error"][lasterror.SEALED].startswith("~tb3.")


async def test_words_moved_to_another_row_do_not_open_and_verify_names_it(where: Store) -> None:
    """The sealed words are bound to their exchange: copied to another's row, they do not open
    there, and verify names that row as edited; so does a last error put back in clear."""
    j = where.journal()
    await j.open()
    try:
        first, second = await refused(j, "moved-1"), await refused(j, "moved-2")
    finally:
        await j.close()
    sql = "SELECT last_error FROM exchanges WHERE id = ?"
    await where.execute(
        "UPDATE exchanges SET last_error = ? WHERE id = ?", await where.fetchval(sql, first), second
    )
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalError, match="does not open"):
            await j.get(second)
        _, moved = await j.verify()
        await where.execute(
            "UPDATE exchanges SET last_error = ? WHERE id = ?", orjson.dumps(NEW), second
        )
        _, in_clear = await j.verify()
    finally:
        await j.close()
    for broken in (moved, in_clear):
        assert broken is not None and f"exchange {second}" in str(broken)
        assert "the row was edited" in str(broken)


async def test_clear_words_in_the_sealed_place_do_not_open(where: Store) -> None:
    """Words written in clear where the sealed ones go (``partner_sealed``) are refused as damage,
    never shown as the partner's (the sealing's open passes values without a prefix through)."""
    j = where.journal()
    await j.open()
    try:
        xid = await refused(j, "forged-1")
    finally:
        await j.close()
    stored = orjson.loads(
        await where.fetchval("SELECT last_error FROM exchanges WHERE id = ?", xid)
    )
    forged = {**stored, lasterror.SEALED: orjson.dumps("forged words").decode()}
    await where.execute(
        "UPDATE exchanges SET last_error = ? WHERE id = ?", orjson.dumps(forged), xid
    )
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalError, match="are not sealed"):
            await j.get(xid)
    finally:
        await j.close()


async def test_a_row_written_before_reads_verifies_and_rekey_seals_it(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row the previous release wrote (the partner's words in clear) reads and verifies as
    before and is found by our words only; rekey seals its words, and a fresh journal with the
    new key alone reads it the same and verifies."""
    j = where.journal()
    await j.open()
    try:
        with monkeypatch.context() as before:  # as the previous release wrote last_error
            before.setattr(lasterror, "sealed", lambda _seal, _xid, error: dict(error))
            old = await refused(j, "old-1")
        new = await refused(j, "new-1")
        sql = "SELECT last_error FROM exchanges WHERE id = ?"
        assert clear_in(bytes(await where.fetchval(sql, old))) != []
        got = await j.get(old)
        _, broken = await j.verify()
        found = {ex.id for ex in await j.search(Query(error="HTTP 400"))}
        probed = await j.search(Query(error="A123456"))
        await j.rekey()
        after = [await j.get(old), await j.get(new)]
    finally:
        await j.close()
    assert_shown_as_before(got)
    assert broken is None and found == {old, new} and probed == []
    for xid in (old, new):
        assert clear_in(bytes(await where.fetchval(sql, xid))) == []
    j = where.journal()
    await j.open()
    try:
        again = [await j.get(old), await j.get(new)]
        _, broken = await j.verify()
    finally:
        await j.close()
    for ex in (*after, *again):
        assert_shown_as_before(ex)
    assert broken is None


async def test_the_api_reveals_words_the_journal_file_holds_sealed(
    make_config, broker_at, tmp_path: Path
) -> None:
    """A partner's refusal through the running broker: the journal file holds its words sealed
    only, and the API shows them to support staff who reveal, the mask to a viewer."""
    root = with_principals(make_config())
    journal = tmp_path / "words.sqlite"
    async with (
        refusing_partner() as partner,
        broker_at(root, {"hk": partner}, journal=journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex, _ = await broker.submit(hk_submission("at-rest-api"))
        await settle(broker, ex.id, DONE)
        one = f"/v1/exchanges/{ex.id}"
        _, plain = await answer(http, one, "viewer")
        _, revealed = await answer(http, f"{one}?reveal=true&reason=caller+asked", "support")
    stored = await row_bytes(SQLiteFile(journal))
    assert clear_in(stored) == []
    assert plain["last_error"]["message"] == f"{OURS}: {MASK}"
    assert revealed["last_error"]["message"] == f"{OURS}: {WORDS}"
    assert revealed["last_error"]["partner_message"] == WORDS
