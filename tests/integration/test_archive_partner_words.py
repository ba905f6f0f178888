"""An archived exchange whose last error holds a partner's words (sealed in its row) checks the
same on every journal: alone, without any key, its row is what the chain recorded; with the key
and against the journal too. Its archive never holds those words in clear.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from federation.cli import archives
from federation.domain.models import Event, State, StateChange
from federation.domain.words import FORM
from replay.archive import check_archive, verify_archive
from replay.journal import Backend
from replay.memory import InMemoryJournal
from tests.integration.test_archive import application

WORDS = "申请人 陳大文 的身份证号码不符"  # a partner's refusal quoting the application
ERRORS: dict[str, dict[str, Any]] = {
    "words": {
        "kind": "permanent_error",
        "message": "hk refused the request",
        "status": 400,
        "partner_message": WORDS,
        "form": FORM,
    },
    "problems": {
        "kind": "mapping_error",
        "message": "the application does not map",
        "problems": [{"path": "applicant.name", "message": f"'{WORDS}' is too long"}],
    },
}


async def rejected_with(j: Backend, error: dict[str, Any], n: int = 3) -> list[str]:
    """``n`` exchanges rejected with ``error`` as their last error."""
    base = time.time()
    ids = []
    for i in range(n):
        ex, _ = await j.create(
            application(i, base, fixed_id=True), owner="w", lease_until=base + 100
        )
        await j.record(
            ex.id,
            [Event(exchange_id=ex.id, kind="rejected", at=base + 10 + i, data={"error": error})],
            StateChange(state=State.REJECTED, last_error=error, release_lease=True),
            owner="w",
        )
        ids.append(ex.id)
    return ids


@pytest.mark.parametrize("which", sorted(ERRORS))
async def test_an_archived_row_with_a_partners_words_holds_without_a_key(
    journal: Backend, tmp_path: Path, which: str
) -> None:
    """Checked alone (no key), with the key and against the journal: it holds, every time."""
    await rejected_with(journal, ERRORS[which])
    out = tmp_path / "a.jsonl.gz"
    exchanges, events, problem = await archives.archived(journal, time.time() + 60, out)
    assert (exchanges, problem) == (3, None)
    alone = check_archive(out)
    assert (alone.problem, alone.unreadable) == (None, None)
    assert alone.unsigned is not None  # holds together; nothing proves who wrote it
    assert verify_archive(out) == (3, events, None)
    keyed = check_archive(out, journal.seal)  # type: ignore[attr-defined]
    assert (keyed.problem, keyed.unreadable, keyed.unsigned) == (None, None, None)
    assert WORDS.encode() not in gzip.decompress(out.read_bytes())  # sealed, never in clear
    assert (await journal.verify())[1] is None


async def test_memory_a_last_error_changed_in_memory_is_found() -> None:
    """The in-memory journal keeps its last errors as a row does (the partner's words sealed),
    and its exchanges are still held to the digest the chain recorded of them."""
    j = InMemoryJournal()
    await j.open()
    [xid] = await rejected_with(j, ERRORS["words"], n=1)
    assert WORDS.encode() not in j.error_columns[xid]
    assert (await j.verify())[1] is None
    ex = j.exchanges[xid]
    j.exchanges[xid] = replace(ex, last_error={**ERRORS["words"], "partner_message": "forged"})
    assert f"exchange {xid}" in str((await j.verify())[1])
    j.exchanges[xid] = ex
    assert (await j.verify())[1] is None
    assert await j.rekey() > 0 and (await j.verify())[1] is None  # sealed again, still holds
    assert WORDS.encode() not in j.error_columns[xid]
    found = await j.get(xid)
    assert found is not None and found.last_error == ERRORS["words"]
