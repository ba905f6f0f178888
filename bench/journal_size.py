"""Journal bytes per exchange for the demo catalogue's applications, written by the real broker.

Every golden example marked ``"demo": true`` that goes out to a partner is submitted ``--rounds``
times (each with its own idempotency key) through the HTTP API of a broker on a fresh SQLite
journal, with keys (as ``tongban serve`` makes them), and delivered to the partner simulators on
loopback. Once every exchange has ended the broker is stopped, the WAL checkpointed, and the file's
growth over the empty (migrated) journal divided by the number of exchanges.

The baseline, measured on the same exchanges in the same run, is the clear JSON the journal has to
keep of each (its events' data and its row's JSON columns): ``ratio`` is stored bytes over that.

    .venv/bin/python bench/journal_size.py [--rounds 40]

Last line: ``RESULT name=journal_size bytes_per_exchange=<n> payload_bytes=<n> ratio=<r>``;
target bytes_per_exchange ≤ 2,500.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp
import orjson

from federation.api.server import running_broker
from federation.logging import configure
from federation.runtime.catalogue import load_catalogue
from federation.sim.demo import demo_items
from federation.sim.demo_auth import start_gateways, stop_all
from federation.sim.gateway import Gateway
from federation.sim.rest import simulator_for
from replay.journal import Journal
from replay.sqlite import SQLiteJournal

ENDED = {"delivered", "failed", "rejected", "unconfirmed"}


@dataclass(frozen=True)
class Size:
    exchanges: int
    bytes_per_exchange: float
    payload_bytes: float  # clear JSON kept per exchange (the baseline)
    tables: dict[str, int]  # bytes per table and index, for the report


def checkpointed(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


def per_object(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # an SQLite built without the dbstat table
        return {}
    finally:
        conn.close()
    return {name: size for name, size in rows}


async def _submit_all(url: str, root: Path, rounds: int) -> list[str]:
    catalogue = await asyncio.to_thread(load_catalogue, root)
    items = [i for i in demo_items(catalogue) if i.inbound_from is None]
    default_source = next(iter(catalogue.config.sources), "")
    ids = []
    async with aiohttp.ClientSession(base_url=url) as http:
        for r in range(rounds):
            for n, item in enumerate(items):
                body = {
                    "source": item.example.source or default_source,
                    "partner": item.partner,
                    "service": item.service,
                    "application": item.example.application,
                }
                headers = {"Idempotency-Key": f"bench-size-{r:04d}-{n:03d}"}
                async with http.post("/v1/exchanges", json=body, headers=headers) as resp:
                    if resp.status != 202:
                        raise SystemExit(f"submission refused: {resp.status} {await resp.text()}")
                    ids.append((await resp.json())["id"])
    return ids


async def _until_ended(journal: Journal, count: int) -> None:
    """Poll the journal's counts until ``count`` exchanges have ended (or give up, saying where
    they stand: a partner the benchmark cannot reach would otherwise keep it waiting forever)."""
    for _ in range(1500):  # five minutes
        counts = await journal.counts()
        if sum(n for state, n in counts.items() if state in ENDED) >= count:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"not every exchange ended: {dict(counts)}")


async def measure(root: Path, rounds: int, work: Path) -> Size:
    """Fill a journal at ``work`` with the demo applications, ``rounds`` times each."""
    journal = work / "journal-demo.sqlite"
    await SQLiteJournal(journal).migrate()
    empty = checkpointed(journal)
    catalogue = await asyncio.to_thread(load_catalogue, root)
    sims = {pid: simulator_for(p) for pid, p in catalogue.config.partners.items()}
    gateways: list[Gateway] = []
    try:
        endpoints = {pid: await sim.start() for pid, sim in sims.items()}
        # as the demo: partners that want signed requests or client certificates get a gateway
        broker_root, gateways = await start_gateways(catalogue.config, endpoints, work)
        async with running_broker(
            root=broker_root, journal_path=journal, port=0, endpoints=endpoints, poll_interval=0.2
        ) as (broker, url):
            ids = await _submit_all(url, root, rounds)
            await _until_ended(broker.journal, len(ids))
            payload = 0
            for xid in ids:
                ex = await broker.journal.get(xid)
                assert ex is not None
                payload += sum(len(orjson.dumps(e.data)) for e in ex.events)
                for value in (ex.mapping_versions, ex.receipt, ex.last_error):
                    payload += len(orjson.dumps(value)) if value else 0
    finally:
        for sim in sims.values():
            await sim.stop()
        await stop_all(gateways)
    size = checkpointed(journal)
    return Size(
        exchanges=len(ids),
        bytes_per_exchange=(size - empty) / len(ids),
        payload_bytes=payload / len(ids),
        tables=per_object(journal),
    )


def run(rounds: int, root: Path = REPO) -> Size:
    """Measure in a temporary directory; the broker's logs go nowhere."""
    configure(stream=io.StringIO())
    with tempfile.TemporaryDirectory(prefix="tongban-bench-size-") as tmp:
        return asyncio.run(measure(root, rounds, Path(tmp)))


def report(size: Size) -> None:
    print(
        f"demo catalogue: {size.exchanges:,} exchanges, {size.bytes_per_exchange:,.0f} bytes per "
        f"exchange stored for {size.payload_bytes:,.0f} bytes of clear JSON kept",
        flush=True,
    )
    for name, total in sorted(size.tables.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<30} {total / size.exchanges:8,.0f} bytes per exchange")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="submissions of each application")
    args = parser.parse_args()
    size = run(args.rounds)
    report(size)
    print(
        f"RESULT name=journal_size bytes_per_exchange={size.bytes_per_exchange:.0f} "
        f"payload_bytes={size.payload_bytes:.0f} "
        f"ratio={size.bytes_per_exchange / size.payload_bytes:.2f}"
    )


if __name__ == "__main__":
    main()
