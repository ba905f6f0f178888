"""How much of the broker's CPU is its journal: the same load through `tongban serve` on a durable
SQLite journal and on the in-memory one (no SQL, no seals, no writer thread, no fsync), in turns.

    python bench/journal_share.py [--n 2000] [--rounds 2]

The in-memory journal still chains and digests its events; what it saves is everything durable.
If the broker on it is still far above the target ``overhead``, no journal, however fast, closes
the gap: the rest of the broker's work is the larger part. Deliveries are awaited by polling
``GET /v1/stats`` every 0.2 s (the memory journal has no file to read), the same for both.
Last line: ``RESULT name=journal_share sqlite_cpu_ms=… memory_cpu_ms=… share=… ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import e2e  # bench/e2e.py, beside this script: its partner, simulator and client

from federation.runtime.catalogue import load_catalogue


async def delivered(base: str, count: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(3000):
            async with http.get(f"{base}/v1/stats") as r:
                if (await r.json())["exchanges"].get("delivered", 0) >= count:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("the broker did not deliver everything in 10 minutes")


async def measure(s: e2e.Setup, sim: e2e.Child, journal: str, label: str) -> tuple[float, float]:
    """(broker, client + simulator) CPU ms per application, after 100 applications of warm-up."""
    args = ["serve", "--config", s.root, "--journal", journal, "--port", "0"]
    args += ["--endpoint", f"{s.partner}={s.sim_url}", "--log-level", "warning", "--workers", "1"]
    broker = e2e.Child(args, s.tmp / f"{label}.log")
    base = broker.line.rsplit(" ", 1)[1]
    url = f"{base}/v1/exchanges"
    try:
        warm = [f"{label}-w{i}" for i in range(100)]
        await e2e.blast(url, [s.body] * 100, s.concurrency, warm, {202})
        await delivered(base, 100)
        before = broker.cpu_seconds(), sim.cpu_seconds() + time.process_time()
        keys = [f"{label}-{i}" for i in range(s.n)]
        await e2e.blast(url, [s.body] * s.n, s.concurrency, keys, {202})
        await delivered(base, 100 + s.n)
        after = broker.cpu_seconds(), sim.cpu_seconds() + time.process_time()
    finally:
        broker.stop()
    return (after[0] - before[0]) * 1000 / s.n, (after[1] - before[1]) * 1000 / s.n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    # the memory journal keeps no key file: applicant search needs its key from the environment
    os.environ.setdefault("TONGBAN_SEARCH_KEY", os.urandom(32).hex())
    partner, service, application, _ = e2e.pick_partner(e2e.REPO, None)
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-share-"))
    root = str(e2e.same_concurrency(e2e.REPO, tmp, partner, 64))
    sim = e2e.Child(["simulate", "--config", root, "--partner", partner], tmp / "sim.log")
    source = next(iter(load_catalogue(e2e.REPO).config.sources))
    body = {"source": source, "partner": partner, "service": service, "application": application}
    s = e2e.Setup(partner, json.loads(sim.line)[partner], root, tmp, body, args.n, 64)
    found: dict[str, list[tuple[float, float]]] = {"sqlite": [], "memory": []}
    try:
        for r in range(args.rounds):
            for kind, journal in (("sqlite", str(tmp / f"j{r}.sqlite")), ("memory", "memory:")):
                broker_ms, hops_ms = await measure(s, sim, journal, f"{kind}{r}")
                found[kind].append((broker_ms, hops_ms))
                print(f"{kind:>6}: broker {broker_ms:.3f} ms, client + partner {hops_ms:.3f} ms")
    finally:
        sim.stop()
    sq, mem = (statistics.median(b for b, _ in found[k]) for k in ("sqlite", "memory"))
    hops = statistics.median(h for k in found for _, h in found[k])
    print(
        f"RESULT name=journal_share sqlite_cpu_ms={sq:.3f} memory_cpu_ms={mem:.3f} "
        f"share={(sq - mem) / sq:.2f} overhead_sqlite={sq / hops:.2f} "
        f"overhead_memory={mem / hops:.2f} n={args.n} rounds={args.rounds}"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
