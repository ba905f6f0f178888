"""One exchange's stored error altered into something that is not UTF-8 JSON (written otherwise
than by a journal): a search that reads the row says the journal is damaged (JournalDamaged,
answered 500 journal-damaged; verify names the row), and so does a search by error, which reads
the stored error's JSON in SQL, on both backends: PostgreSQL said "unavailable, retry later" before
1bb79a7, and SQLite passed over the altered row as if it were not there."""

from __future__ import annotations

import pytest

from federation.domain.errors import JournalDamaged
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State, StateChange
from replay.journal import Query
from tests.integration.pg import Store

NOW = 1_790_000_000.0
ERROR = {"kind": "rejected", "message": "hk refused the request with HTTP 400", "status": 400}


async def two_refused(where: Store) -> list[str]:
    """Two exchanges hk refused, each with its error stored."""
    j = where.journal()
    await j.open()
    ids = []
    try:
        for i in range(2):
            new = NewExchange(
                id=new_id(NOW + i),
                direction=Direction.OUTBOUND,
                source="gd-portal",
                target="hk",
                service="TD-VL-RENEW",
                idempotency_key=f"k{i}",
                request_hash="sha256:x",
                application={"applicant": {"name": "陳大文"}},
                received_at=NOW + i,
            )
            ex, _ = await j.create(new, owner="w", lease_until=NOW + 100)
            change = StateChange(state=State.REJECTED, last_error=ERROR)
            await j.record(ex.id, [], change, owner="w")
            ids.append(ex.id)
    finally:
        await j.close()
    return ids


@pytest.mark.parametrize("stored", [b"{not json", b"\xff\xfe{}"], ids=["not-json", "not-utf8"])
async def test_a_search_by_error_over_an_altered_error(where: Store, stored: bytes) -> None:
    first, second = await two_refused(where)
    await where.execute("UPDATE exchanges SET last_error = ? WHERE id = ?", stored, first)
    j = where.journal()
    await j.open()
    try:
        with pytest.raises(JournalDamaged):
            await j.search(Query(limit=10))
        assert [x.id for x in await j.search(Query(exchange_id=second))] == [second]
        with pytest.raises(JournalDamaged, match="journal verify names it"):
            await j.search(Query(error="HTTP 400", limit=10))
        _, broken = await j.verify()
        assert broken is not None and first in f"{broken.exchange_id} {broken}"
    finally:
        await j.close()
