"""What sealing and signing cost the journal: create + record of N exchanges, with and without keys.

Two SQLite journals in a temporary directory, the same work on each, in the same run: one opened
with no keys (payloads in clear, head unsigned: ``replay.keys.NONE``, the baseline) and one with
the default keys beside it (payloads sealed with AES-256-GCM, the head signed with HMAC-SHA256 in
every transaction, checkpoints after commits). Each exchange is what the broker journals for a
delivery: ``create`` (a ~1 KB application with an ID number, an HKID and a name) and one
``record`` with a ``mapped`` event (the mapped request) and an ``attempt_finished`` transcript.
``--concurrency`` submissions run at once, as intake does, so the writer group-commits them.
The rounds alternate (clear, sealed, clear, sealed …) on fresh files; the median round counts.

    .venv/bin/python bench/journal_crypto.py [--exchanges 2000] [--rounds 5] [--concurrency 64]

Last line: ``RESULT name=journal_crypto ratio=<plain_per_s / sealed_per_s> plain_per_s=<exchanges
per second without keys> sealed_per_s=<with keys>``; ratio 1.00 means sealing costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay.keys import NONE
from replay.sqlite import SQLiteJournal

NOW = 1_790_000_000.0


def application(i: int) -> dict[str, Any]:
    """About 1 KB of application, with personal data of the three jurisdictions."""
    return {
        "applicant": {
            "name": "陳大文",
            "hkid": "A123456(3)",
            "id_number": "350203199208200046",
            "address": "香港九龍彌敦道 " + str(i) + " 號 " + "某大廈 " * 20,
        },
        "vehicle": {"registration_mark": f"AB{i:04d}", "class": "private car"},
        "declarations": [f"declaration {n}: " + "x" * 40 for n in range(10)],
        "n": i,
    }


async def one(journal: SQLiteJournal, i: int) -> None:
    """What the broker journals for one application taken to its attempt."""
    new = NewExchange(
        id=new_id(NOW + i / 1000),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=f"k{i}",
        request_hash="sha256:x",
        application=application(i),
        received_at=NOW + i / 1000,
    )
    ex, _ = await journal.create(new, owner="w", lease_until=NOW + 600)
    events = [
        Event(exchange_id=ex.id, kind="mapped", at=NOW + i, data={"mapped": application(i)}),
        Event(
            exchange_id=ex.id,
            kind="attempt_finished",
            at=NOW + i + 1,
            data={"status": 200, "response": {"body": {"reference": f"R{i}"}}},
        ),
    ]
    await journal.record(ex.id, events, StateChange(state=State.DELIVERING, attempts=1), owner="w")


async def round_(path: Path, *, sealed: bool, n: int, concurrency: int) -> float:
    """Exchanges per second for n exchanges on a fresh journal at ``path``."""
    journal = SQLiteJournal(path) if sealed else SQLiteJournal(path, keys=NONE)
    await journal.open()
    gate = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with gate:
            await one(journal, i)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(limited(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        _, broken = await journal.verify()
        if broken is not None:
            raise SystemExit(f"the benchmark journal does not verify: {broken}")
    finally:
        await journal.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="journal-crypto-") as tmp:
        for r in range(args.rounds):
            for sealed in (False, True):
                path = Path(tmp) / f"{'sealed' if sealed else 'plain'}-{r}.sqlite"
                rate = asyncio.run(
                    round_(path, sealed=sealed, n=args.exchanges, concurrency=args.concurrency)
                )
                rates[sealed].append(rate)
                print(f"round {r + 1}: {'sealed' if sealed else 'plain '} {rate:8.0f} exchanges/s")
    plain, sealed_rate = statistics.median(rates[False]), statistics.median(rates[True])
    print(
        f"RESULT name=journal_crypto ratio={plain / sealed_rate:.3f} "
        f"plain_per_s={plain:.0f} sealed_per_s={sealed_rate:.0f}"
    )


if __name__ == "__main__":
    main()
