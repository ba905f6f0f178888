"""Console page times at scale: the same pages on journals of 10,000 and 1,000,000 exchanges.

The journals are built as ``bench/journal.py`` builds them (the real schema by ``migrate()``, then
bulk inserts with ``sqlite3.executemany``: 11 partners over 90 days, ~10 % failed, chained events).
A broker is opened on each (in this process, on loopback, the shipped configuration) and the
console is asked for each page through real HTTP after signing in, median of ``--runs`` runs after
a warm-up: the overview, the exchanges page unfiltered and with filters, one exchange, the audit
trail and the refusals. The smaller journal is the baseline of the same run.

    .venv/bin/python bench/console.py [--sizes 10000,1000000] [--runs 20] [--keep DIR]

Last line: ``RESULT name=console_pages worst_ms=<slowest page's median at the largest size>
growth=<worst growth largest/smallest> size=<largest>``; target worst_ms < 200.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import journal as journal_bench  # bench/journal.py: the bulk builder

from federation.api.server import running_broker
from federation.domain.ids import IdGenerator

PAGES = {
    "overview": "/console/",
    "exchanges": "/console/exchanges",
    "failed": "/console/exchanges?state=failed",
    "failed mo": "/console/exchanges?state=failed&partner=mo",
    "error text": "/console/exchanges?error=503&partner=hk",
    "exchange": "/console/exchanges/{failed_id}",
    "audit": "/console/audit",
    "refusals": "/console/refusals",
}


def a_failed_id(path: Path) -> str:
    """The newest failed exchange of the journal (its page is timed)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT id FROM exchanges WHERE state = 'failed' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return str(row[0])


async def sign_in(http: aiohttp.ClientSession) -> None:
    """Sign in as this machine's staff (the shipped configuration declares no principal)."""
    async with http.get("/console/sign-in") as r:
        pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert pre is not None, "no sign-in form"
    form = {"pre": pre.group(1), "next": "/console/", "loopback": "1"}
    async with http.post("/console/sign-in", data=form) as r:
        signed = r.status == 200 and "loopback" in await r.text()
    if not signed:
        raise SystemExit("could not sign in to the console")


async def time_pages(path: Path, runs: int) -> dict[str, float]:
    """Median milliseconds per page on the journal at ``path``."""
    failed_id = a_failed_id(path)
    out: dict[str, float] = {}
    jar = aiohttp.CookieJar(unsafe=True)  # the console's cookie, from 127.0.0.1
    async with (
        running_broker(root=REPO, journal_path=path, port=0) as (_broker, url),
        aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http,
    ):
        await sign_in(http)
        for name, page in PAGES.items():
            target = page.format(failed_id=failed_id)
            samples = []
            for i in range(runs + 2):
                t0 = time.perf_counter()
                async with http.get(target) as r:
                    await r.read()
                    assert r.status == 200, (name, r.status)
                if i >= 2:  # two warm-up requests
                    samples.append((time.perf_counter() - t0) * 1000)
            out[name] = statistics.median(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated exchange counts")
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page")
    parser.add_argument("--keep", type=Path, help="build the journals here and keep them")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="tongban-bench-console-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, float]] = {}
    paths = {n: work / f"console-{n}.sqlite" for n in sizes}
    try:
        for n, path in paths.items():
            if not path.exists():
                # A generator of its own: ids carry the 90 days of the fill, not this process's now.
                journal_bench.new_id = IdGenerator().new
                seconds = journal_bench.fill(path, n)
                print(f"{n:>9,} exchanges: built in {seconds:.1f} s", flush=True)
        for n, path in paths.items():
            results[n] = asyncio.run(time_pages(path, args.runs))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    small, large = sizes[0], sizes[-1]
    print(f"\nmedian ms per page ({small:,} / {large:,} exchanges)")
    for name in PAGES:
        a, b = results[small][name], results[large][name]
        print(f"  {name:<12} {a:8.1f} {b:8.1f}  growth {b / a:5.2f}")
    worst = max(results[large].values())
    growth = max(results[large][p] / results[small][p] for p in PAGES)
    print(f"RESULT name=console_pages worst_ms={worst:.1f} growth={growth:.2f} size={large}")


if __name__ == "__main__":
    main()
