"""Tamper evidence that holds: what someone with write access to the database (not the key) does,
``verify`` names. Run on SQLite and PostgreSQL with the same SQL; on the in-memory journal by
reaching into its structures where that means the same thing.

Each case was passed by the unkeyed chain alone: the tail cut, rows and refusals outside the
chain, an edited event marked archived (and then served by ``journal show``), a chain recomputed
after an edit, an exchange removed and the seqs closed up, an event appended with a good link.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from federation.domain.errors import JournalError
from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.chain import GENESIS, link
from replay.journal import Refusal
from replay.memory import InMemoryJournal
from tests.integration.pg import Store

NOW = 1_790_000_000.0
EDITED = {"application": {"applicant": {"name": "EDITED"}}, "request_hash": "sha256:x"}


def new(i: int) -> NewExchange:
    """The i-th application (its idempotency key follows i)."""
    return NewExchange(
        id=new_id(NOW + i),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=f"k{i}",
        request_hash="sha256:x",
        application={"applicant": {"name": "陳大文", "hkid": "A123456(3)"}, "n": i},
        received_at=NOW + i,
    )


def refused(at: float) -> Refusal:
    """A request refused at ``at`` (400 invalid-request), its body (an ID number) kept."""
    return Refusal(
        at=at,
        remote="127.0.0.1",
        method="POST",
        path="/v1/exchanges",
        status=400,
        problem="invalid-request",
        detail="bad",
        idempotency_key=None,
        body=b'{"hkid": "A123456(3)"}',
        body_bytes=22,
    )


async def write(j: Any, start: int, n: int, refusals: int) -> list[str]:
    """n exchanges (received, mapped, attempt_started: 3 events each) and some refusals."""
    ids = []
    for i in range(start, start + n):
        ex, _ = await j.create(new(i), owner="w", lease_until=NOW + 100)
        events = [
            Event(exchange_id=ex.id, kind="mapped", at=NOW + i + 0.5, data={"mapped": {"n": i}}),
            Event(exchange_id=ex.id, kind="attempt_started", at=NOW + i + 0.6, data={}),
        ]
        await j.record(ex.id, events, StateChange(state=State.DELIVERING, attempts=1), owner="w")
        ids.append(ex.id)
    for i in range(refusals):
        await j.refuse(refused(NOW + start + i))
    return ids


async def filled(where: Store, n: int = 20, *, start: int = 0, refusals: int = 3) -> list[str]:
    """A closed journal of n exchanges (3n events) and some refusals."""
    j = where.journal()
    await j.open()
    try:
        return await write(j, start, n, refusals)
    finally:
        await j.close()


async def verify(where: Store) -> str | None:
    """What `tongban journal verify` says is broken (None: it holds)."""
    j = where.journal()
    await j.open()
    try:
        _, broken = await j.verify()
    finally:
        await j.close()
    return None if broken is None else str(broken)


async def events(where: Store) -> list[tuple[Any, ...]]:
    """(seq, exchange_id, at, kind, data, state) of every event, in order."""
    return await where.fetch(
        "SELECT seq, exchange_id, at, kind, data, state FROM events ORDER BY seq"
    )


async def relink(where: Store, rows: list[tuple[Any, ...]], *, head: bool) -> None:
    """What an attacker without the key can do: recompute every hash from the first event (and
    move the head row's seq and hash, though not its MAC)."""
    prev = GENESIS
    for seq, xid, at, kind, data, state in rows:
        prev = link(prev, seq, xid, at, kind, bytes(data), None if state is None else bytes(state))
        await where.execute("UPDATE events SET hash = ? WHERE seq = ?", prev, seq)
    if head:
        await where.execute("UPDATE chain_head SET seq = ?, hash = ?", rows[-1][0], prev)


async def test_an_untouched_journal_verifies(where: Store) -> None:
    """Everything written by tongban holds: chain, signed head, checkpoints, rows, refusals."""
    await filled(where)
    assert await verify(where) is None


async def test_the_last_50_events_deleted(where: Store) -> None:
    """Cutting the tail leaves a chain that links; the signed head says where it ended."""
    await filled(where)  # 60 exchange events and 3 refusals: 63
    await where.execute("DELETE FROM events WHERE seq > 13")
    broken = await verify(where)
    assert broken is not None and broken.startswith("the chain head: ")
    assert "records event 63, but the last event is 13" in broken


async def test_a_cut_behind_an_older_signed_head_put_back(where: Store) -> None:
    """Cutting the tail and putting back a head row copied earlier: the checkpoints outside the
    database still remember the end."""
    await filled(where, 5, refusals=0)
    old = (await where.fetch("SELECT seq, hash, mac FROM chain_head"))[0]
    await filled(where, 5, start=5, refusals=0)
    await where.execute("DELETE FROM events WHERE seq > ?", old[0])
    await where.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ?", *old)
    broken = await verify(where)
    assert broken is not None and broken.startswith("the checkpoint of ")
    assert f"records event 30, but the journal ends at event {old[0]}" in broken


@pytest.mark.parametrize(
    ("column", "value"),
    [("state", "delivered"), ("receipt", b'{"reference":"FORGED"}'), ("attempts", 0)],
)
async def test_an_exchange_state_or_receipt_edited(where: Store, column: str, value: Any) -> None:
    """The row a reader is shown must be what the chain recorded at its last write."""
    ids = await filled(where, 3)
    await where.execute(f"UPDATE exchanges SET {column} = ? WHERE id = ?", value, ids[1])
    broken = await verify(where)
    assert broken == (
        f"exchange {ids[1]}: its row (partner, service, source, key, direction, request hash, "
        "state, receipt, attempts, lifecycle, errors, times) is not what the chain recorded at "
        "event 6: the row was edited"
    )


async def test_refusals_deleted(where: Store) -> None:
    """Each refusal is recorded in the chain: one deleted from its table is named."""
    await filled(where, 2, refusals=3)
    first = await where.fetchval("SELECT min(seq) FROM refusals")
    await where.execute("DELETE FROM refusals WHERE seq = ?", first)
    broken = await verify(where)
    assert broken is not None and broken.startswith(f"refusal {first}: was recorded in the chain")
    assert "deleted" in broken


async def test_an_edited_event_marked_archived_is_found_and_not_served(where: Store) -> None:
    """An edit hidden behind archived=1: verify names it, and `journal show` (get) no longer
    serves the edited application (a tombstone is never read as history)."""
    ids = await filled(where, 3)
    seq = await where.fetchval(
        "SELECT seq FROM events WHERE exchange_id = ? AND kind = 'received'", ids[1]
    )
    await where.execute(
        "UPDATE events SET data = ?, archived = true WHERE seq = ?", orjson.dumps(EDITED), seq
    )
    j = where.journal()
    await j.open()
    try:
        shown = await j.get(ids[1])
        _, broken = await j.verify()
    finally:
        await j.close()
    assert shown is not None and "EDITED" not in orjson.dumps(shown.application).decode()
    assert str(broken).startswith(f"event {seq} (received of exchange {ids[1]}): ")
    assert "marked archived but keeps content" in str(broken)


async def test_a_clean_tombstone_without_archiving_is_found(where: Store) -> None:
    """Emptying an event and marking it archived while its exchange stays: not an archive."""
    ids = await filled(where, 3)
    await where.execute(
        "UPDATE events SET data = ?, state = NULL, archived = true"
        " WHERE exchange_id = ? AND kind = 'mapped'",
        b"",
        ids[0],
    )
    broken = await verify(where)
    assert (
        broken
        == f"exchange {ids[0]}: is archived (its events are tombstones) but its row is still here"
    )


@pytest.mark.parametrize("head", [False, True], ids=["head-left", "head-moved"])
async def test_an_edit_with_the_chain_recomputed(where: Store, head: bool) -> None:
    """An exchange's last sealed event replaced by an edited one in clear, every hash recomputed
    after it: the chain links again, but the signed head does not."""
    ids = await filled(where, 3)
    rows = await events(where)
    at = max(n for n, r in enumerate(rows) if r[1] == ids[1])
    rows[at] = (*rows[at][:4], orjson.dumps(EDITED), rows[at][5])
    await where.execute("UPDATE events SET data = ? WHERE seq = ?", rows[at][4], rows[at][0])
    await relink(where, rows, head=head)
    broken = await verify(where)
    assert broken is not None and broken.startswith("the chain head: ")
    assert ("signature does not verify" if head else "another hash") in broken


async def test_an_edited_application_with_the_chain_recomputed_breaks_its_later_events(
    where: Store,
) -> None:
    """A sealed application replaced in clear, every hash recomputed: the exchange's later events,
    compressed with the application as their context, no longer open, and verify says which."""
    ids = await filled(where, 3)
    rows = await events(where)
    at = next(n for n, r in enumerate(rows) if r[1] == ids[1] and r[3] == "received")
    rows[at] = (*rows[at][:4], orjson.dumps(EDITED), rows[at][5])
    await where.execute("UPDATE events SET data = ? WHERE seq = ?", rows[at][4], rows[at][0])
    await relink(where, rows, head=True)
    broken = await verify(where)
    assert broken is not None and f"of exchange {ids[1]}" in broken
    assert "sealed with another context than its received event" in broken


async def test_a_whole_exchange_deleted_and_seqs_renumbered(where: Store) -> None:
    """An exchange removed with its events, later seqs closed up, the chain and head recomputed:
    only the head's signature is missing, and that is enough."""
    ids = await filled(where, 4)
    await where.execute("DELETE FROM exchanges WHERE id = ?", ids[1])
    await where.execute("DELETE FROM events WHERE exchange_id = ?", ids[1])
    rows = await events(where)
    for n, row in enumerate(rows, start=1):
        if row[0] != n:
            await where.execute("UPDATE events SET seq = ? WHERE seq = ?", n, row[0])
    await relink(where, [(n, *row[1:]) for n, row in enumerate(rows, start=1)], head=True)
    broken = await verify(where)
    assert broken is not None and "signature does not verify" in broken


@pytest.mark.parametrize("head", [False, True], ids=["head-left", "head-moved"])
async def test_a_forged_event_appended(where: Store, head: bool) -> None:
    """An event with a correct link after the last one: not under the signed head."""
    ids = await filled(where, 2)
    rows = await events(where)
    seq, prev = rows[-1][0] + 1, await where.fetchval("SELECT hash FROM chain_head")
    data = orjson.dumps({"lifecycle": "accepted"})
    digest = link(bytes(prev), seq, ids[0], NOW + 99, "lifecycle", data)
    await where.execute(
        "INSERT INTO events (seq, exchange_id, at, kind, data, hash) VALUES (?, ?, ?, ?, ?, ?)",
        seq,
        ids[0],
        NOW + 99,
        "lifecycle",
        data,
        digest,
    )
    if head:
        await where.execute("UPDATE chain_head SET seq = ?, hash = ?", seq, digest)
    broken = await verify(where)
    assert broken is not None and broken.startswith("the chain head: ")
    assert ("signature does not verify" if head else f"last event is {seq}") in broken


async def test_a_journal_whose_head_does_not_hold_takes_no_more_events(where: Store) -> None:
    """Writers never extend a cut or forged chain (and so never sign it): they fail closed."""
    await filled(where, 2)
    await where.execute("DELETE FROM events WHERE seq > 3")
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalError, match="run `tongban journal verify`"):
            await j.create(new(50), owner="w", lease_until=NOW + 100)
        assert await j.get(new(50).id) is None
    finally:
        await j.close()


# -- the in-memory journal ------------------------------------------------------------------------


async def memory() -> tuple[InMemoryJournal, list[str]]:
    """An open in-memory journal of 20 exchanges and 3 refusals."""
    j = InMemoryJournal()
    await j.open()
    return j, await write(j, 0, 20, 3)


async def test_memory_tail_cut_state_edit_refusal_deleted_and_forgery() -> None:
    """The in-memory journal is held to the same checks as the stores."""
    j, ids = await memory()
    assert (await j.verify())[1] is None
    del j._chain[-50:]
    assert "the chain head" in str((await j.verify())[1])

    j, ids = await memory()
    j.exchanges[ids[0]] = replace(j.exchanges[ids[0]], state=State.DELIVERED)
    assert "the row was edited" in str((await j.verify())[1])

    j, ids = await memory()
    j.refusal_rows.pop(0)
    assert "deleted" in str((await j.verify())[1])

    j, ids = await memory()
    last = j._chain[-1]
    forged = replace(last, event=replace(last.event, seq=last.event.seq + 1))
    j._chain.append(forged)
    assert "the chain head" in str((await j.verify())[1]) or "altered" in str((await j.verify())[1])
