"""An archive proves what it holds: alone (its events' hashes, their links, each row against the
digest the chain recorded), with the journal's key (its signature) and against the journal (the
hashes its tombstones keep, the exchanges archived in the same writes). Run on every journal.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from federation.cli import archives
from federation.cli.main import main
from federation.domain.models import Event, State, StateChange
from federation.runtime.retention import RetentionJob
from replay.archive import (
    ArchiveWriter,
    check_archive,
    compare,
    verify_archive,
)
from replay.chain import link
from replay.factory import open_journal
from replay.journal import Backend
from replay.keys import Keyring
from replay.seal import Seal, from_text
from tests.integration.pg import Store
from tests.integration.test_archive import NOW, application, journal_with
from tests.integration.test_retention import job

Lines = list[dict[str, Any]]


async def interleaved(j: Backend, n: int = 4) -> list[str]:
    """``n`` rejected exchanges whose events are none of them next to another in the chain: an
    open exchange (never archived) gets an event between every two of theirs."""
    base = time.time()

    held, _ = await j.create(
        application(99, base, fixed_id=True), owner="w", lease_until=base + 100
    )
    ids = []
    for i in range(n):
        ex, _ = await j.create(
            application(i, base, fixed_id=True), owner="w", lease_until=base + 100
        )
        await j.append(held.id, [Event(exchange_id=held.id, kind="note", at=base, data={"i": i})])
        await j.record(
            ex.id,
            [Event(exchange_id=ex.id, kind="rejected", at=base + 10 + i, data={"error": {"m": i}})],
            StateChange(state=State.REJECTED, last_error={"m": i}, release_lease=True),
            owner="w",
        )
        await j.append(held.id, [Event(exchange_id=held.id, kind="note", at=base, data={"i": i})])
        ids.append(ex.id)
    return ids


def read(path: Path) -> Lines:
    return [orjson.loads(raw) for raw in gzip.decompress(path.read_bytes()).splitlines()]


def write(path: Path, lines: Lines, *, digest: bool = True) -> Path:
    """``lines`` to ``path``, the end line's digest and counts recomputed (no key needed)."""
    end = next(n for n, line in enumerate(lines) if isinstance(line, dict) and line.get("end"))
    body = [orjson.dumps(line) + b"\n" for line in lines[:end]]
    if digest:
        lines[end]["digest"] = hashlib.sha256(b"".join(body)).hexdigest()
        lines[end]["exchanges"] = end - 1
        lines[end]["events"] = sum(
            len(x.get("events", ())) for x in lines[1:end] if isinstance(x, dict)
        )
    rest = [orjson.dumps(line) + b"\n" for line in lines[end:]]
    path.write_bytes(gzip.compress(b"".join(body + rest)))
    return path


def edited(src: Path, dst: Path, change: Callable[[Lines], None], *, keep_mac: bool) -> Path:
    lines = read(src)
    signature = lines.pop() if lines[-1].get("signed") else None
    change(lines)
    if keep_mac and signature is not None:
        lines.append(signature)
    return write(dst, lines)


def edit_row(lines: Lines) -> None:
    lines[1]["exchange"].update(state="rejected", target="mo", receipt={"ref": "FORGED"})


def drop_one(lines: Lines) -> None:
    del lines[2]


def swap_data(lines: Lines) -> None:
    """Exchange 1's received data replaced by exchange 3's, its hash recomputed."""
    ev, other = lines[1]["events"][0], lines[3]["events"][0]
    ev["data"] = other["data"]
    state = bytes.fromhex(ev["state"]) if ev.get("state") else None
    xid = lines[1]["exchange"]["id"]
    digest = link(
        bytes.fromhex(ev["prev"]),
        ev["seq"],
        xid,
        ev["at"],
        ev["kind"],
        from_text(ev["data"]),
        state,
    )
    ev["hash"] = digest.hex()


async def archived(j: Backend, out: Path) -> Path:
    exchanges, _, problem = await archives.archived(j, time.time() + 60, out)
    assert exchanges == 4 and problem is None
    return out


async def test_a_new_archive_is_signed_and_holds_alone_and_against_the_journal(
    journal: Backend, tmp_path: Path
) -> None:
    await interleaved(journal)
    out = await archived(journal, tmp_path / "a.jsonl.gz")
    with_key = check_archive(out, journal.seal)  # type: ignore[attr-defined]
    alone = check_archive(out)
    assert (with_key.problem, with_key.unreadable, with_key.unsigned) == (None, None, None)
    assert with_key.signed and (with_key.exchanges, with_key.events) == (4, 8)
    assert alone.problem is None and alone.unsigned is not None  # holds, but nothing proves it
    assert await compare(with_key, journal) is None
    assert verify_archive(out) == (4, 8, None)


async def test_an_edited_row_is_found_without_any_key(journal: Backend, tmp_path: Path) -> None:
    await interleaved(journal)
    out = await archived(journal, tmp_path / "a.jsonl.gz")
    forged = edited(out, tmp_path / "row.gz", edit_row, keep_mac=False)
    assert "the row was edited" in str(verify_archive(forged)[2])


async def test_a_removed_exchange_or_swapped_data_is_found_with_the_key_or_the_journal(
    journal: Backend, tmp_path: Path
) -> None:
    await interleaved(journal)
    out = await archived(journal, tmp_path / "a.jsonl.gz")
    seal = journal.seal  # type: ignore[attr-defined]
    for name, change in (("drop", drop_one), ("data", swap_data)):
        signed = edited(out, tmp_path / f"{name}-signed.gz", change, keep_mac=True)
        bare = edited(out, tmp_path / f"{name}-bare.gz", change, keep_mac=False)
        assert check_archive(bare).unsigned is not None  # alone, unproven: never "ok"
        if seal.keyed:
            assert "signature does not verify" in str(check_archive(signed, seal).problem)
        found = check_archive(bare, seal)
        assert found.problem is None
        assert "removed from the file" in str(
            await compare(found, journal)
        ) or "not the event the journal keeps" in str(await compare(found, journal))


async def test_an_archive_of_another_journal_is_refused(where: Store, tmp_path: Path) -> None:
    first, second = where.journal(), open_journal(tmp_path / "other.sqlite")
    await first.open()
    await second.open()
    try:
        await interleaved(first)
        await interleaved(second)
        out = await archived(first, tmp_path / "a.jsonl.gz")
        assert "another journal" in str(check_archive(out, second.seal).problem)  # type: ignore[attr-defined]
        bare = edited(out, tmp_path / "bare.gz", lambda _: None, keep_mac=False)
        found = check_archive(bare)
        assert "another journal" in str(await compare(found, second))
    finally:
        await first.close()
        await second.close()


async def test_an_archive_written_before_signing_is_checked_against_the_journal(
    where: Store, tmp_path: Path
) -> None:
    """Format 1 (no signature): alone it is unproven; against the journal it holds, and what
    that cannot tell is said."""
    j = where.journal()
    await j.open()
    try:
        await interleaved(j)
        out = await archived(j, tmp_path / "a.jsonl.gz")
        lines = read(out)[:-1]
        lines[0]["tongban_archive"] = 1
        old = write(tmp_path / "old.gz", lines)
        found = check_archive(old, j.seal)
        assert found.format == 1 and found.problem is None and found.unsigned is not None
        assert await compare(found, j) is None
        dropped = edited(old, tmp_path / "old-drop.gz", drop_one, keep_mac=False)
        problem = await compare(check_archive(dropped), j)
        assert "removed from the file" in str(problem)
    finally:
        await j.close()


async def test_retention_signs_what_holds(where: Store, tmp_path: Path) -> None:
    j, _ = await journal_with(where, closed=3, open_=1)
    try:
        retention: RetentionJob = job(j, tmp_path / "archive", at=NOW + 2 * 86400)
        run = await retention.run_once()
        assert run is not None and run.file is not None
        found = check_archive(run.file, j.seal)
        assert found.signed and found.unsigned is None and found.problem is None
        assert await compare(found, j) is None
    finally:
        await j.close()


MALFORMED: list[tuple[str, Callable[[Lines], None]]] = [
    ("noprev", lambda x: x[1]["events"][0].pop("prev")),
    ("badhex", lambda x: x[1]["events"][0].update(prev="zz<script>")),
    ("seqstr", lambda x: x[1]["events"][0].update(seq="one<script>")),
    ("noid", lambda x: x[1]["exchange"].pop("id")),
    ("list", lambda x: x.__setitem__(1, [1, 2])),  # type: ignore[call-overload]
    ("hugeseq", lambda x: x[1]["events"][0].update(seq=2**63)),
    ("attime", lambda x: x[1]["events"][0].update(at="<script>")),
    ("events", lambda x: x[1].update(events="<script>")),
]


@pytest.mark.parametrize(("name", "change"), MALFORMED)
def test_a_malformed_archive_names_the_line_never_its_value(
    tmp_path: Path, name: str, change: Callable[[Lines], None]
) -> None:
    out = tmp_path / "a.jsonl.gz"
    writer = ArchiveWriter(out, created_at=NOW, older_than=NOW)
    writer.close()
    lines = read(out)
    good = {"seq": 1, "at": NOW, "kind": "received", "data": "{}", "hash": "00" * 32}
    lines.insert(1, {"exchange": {"id": "01KZ"}, "events": [{**good, "prev": "00" * 32}]})
    change(lines)
    write(out, lines)
    found = check_archive(out)
    assert found.unreadable is not None and "line 2" in found.unreadable
    assert "script" not in found.unreadable and "one" not in found.unreadable.split()
    result = CliRunner().invoke(main, ["journal", "verify", "--archive", str(out)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "script" not in result.output


def test_a_signature_line_not_of_its_form_is_named(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl.gz"
    ArchiveWriter(out, created_at=NOW, older_than=NOW).close()
    lines = read(out)
    lines.append({"signed": "hmac-sha256", "mac": "é<script>"})
    write(out, lines)
    found = check_archive(out, Seal(Keyring.generate()))
    assert found.unreadable == "line 3: not a signature line"


def test_the_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0 proven, 1 broken, 2 unreadable, 3 holds together but unproven."""
    monkeypatch.delenv("TONGBAN_JOURNAL", raising=False)
    path = tmp_path / "j.sqlite"

    async def fill() -> None:
        j = open_journal(path)
        await j.open()
        try:
            await interleaved(j)
        finally:
            await j.close()

    asyncio.run(fill())
    out = tmp_path / "a.jsonl.gz"
    cli = CliRunner()
    made = cli.invoke(
        main, ["journal", "archive", "--older-than", "0s", str(out), "--journal", str(path)]
    )
    assert made.exit_code == 0, made.output
    verify = ["journal", "verify", "--archive"]
    assert cli.invoke(main, [*verify, str(out)]).exit_code == 3
    assert cli.invoke(main, [*verify, str(out), "--journal", str(path)]).exit_code == 0
    key = ["--key-file", str(path.with_name("j.sqlite.keys"))]
    assert cli.invoke(main, [*verify, str(out), *key]).exit_code == 0
    forged = edited(out, tmp_path / "f.gz", edit_row, keep_mac=True)
    assert cli.invoke(main, [*verify, str(forged), *key]).exit_code == 1
    (tmp_path / "x.gz").write_bytes(b"not gzip")
    assert cli.invoke(main, [*verify, str(tmp_path / "x.gz")]).exit_code == 2
