"""End-to-end throughput: client → broker → REST partner, against client → partner directly.

Both runs use the same partner simulator process, the same N payloads and the same concurrency, in one
invocation (these machines are noisy: only a same-run comparison means anything). The broker runs as
its own `tongban serve` process with its durable SQLite journal (WAL, synchronous=FULL); the broker
run counts until the journal says every exchange is delivered, not merely accepted.

    python bench/e2e.py [--n 2000] [--concurrency 64]

A third run sends the same load through the same broker while 10 % of partner replies fail
transiently: ``RESULT name=e2e_faults ratio=<with faults / without>``, every application delivered.
Last line: ``RESULT name=e2e ratio=<broker/direct> ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation.mapping.examples import load_examples
from federation.runtime.catalogue import load_catalogue


def pick_partner(
    root: Path, partner: str | None
) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A REST partner, one of its services and a demo example (application, mapped request)."""
    catalogue = load_catalogue(root)
    for p in catalogue.config.partners.values():
        if partner and p.id != partner:
            continue
        if p.protocol != "rest":
            continue
        for s in p.services.values():
            for ex in load_examples(s.mapping):
                if ex.demo and ex.expected is not None:
                    return p.id, s.code, ex.application, ex.expected
    raise SystemExit("no REST partner with a demo example in partners.yaml")


def same_concurrency(config: Path, tmp: Path, partner: str, concurrency: int) -> Path:
    """A copy of the catalogue whose partner may take as many parallel requests as the client sends.

    The direct run opens ``concurrency`` connections to the partner; holding the broker to the
    partner's (smaller) production limit would measure the limit, not the broker.
    """
    data = yaml.safe_load((config / "partners.yaml").read_text(encoding="utf-8"))
    for p in data["partners"]:
        if p["id"] == partner:
            p["concurrency"] = concurrency
    root = tmp / "config"
    root.mkdir()
    (root / "partners.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for entry in ("mappings", "partners"):  # mappings, code tables, WSDLs, schemas
        if (config / entry).exists():
            shutil.copytree(config / entry, root / entry)
    return root


class Child:
    """A tongban subprocess that prints one line when ready."""

    def __init__(self, args: list[str], log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "federation", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().strip()
        if not self.line:
            raise SystemExit(f"{args[0]} did not start; see {log}")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used so far."""
        user, system = self.cpu_split()
        return user + system

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


async def blast(
    url: str | list[str],
    bodies: list[dict[str, Any]],
    concurrency: int,
    keys: list[str],
    ok: set[int],
) -> float:
    """POST every body with its key, ``concurrency`` at a time; returns seconds taken."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(bodies)):
            queue.put_nowait(i)

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                target = url if isinstance(url, str) else url[i % len(url)]
                async with http.post(
                    target, json=bodies[i], headers={"Idempotency-Key": keys[i]}
                ) as r:
                    await r.read()
                    if r.status not in ok:
                        raise SystemExit(f"unexpected HTTP {r.status} from {target}")

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def set_behaviour(sim_url: str, behaviour: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim_url}/_sim/behaviour", json=behaviour) as r,
    ):
        r.raise_for_status()


async def sim_failures(sim_url: str) -> int:
    """How many requests the simulator answered with a simulated failure."""
    async with aiohttp.ClientSession() as http, http.get(f"{sim_url}/_sim/requests") as r:
        stats = await r.json()
    return int(stats["requests"]) - sum(k["count"] for k in stats["keys"].values())


async def wait_delivered(base: str, n: int, limit_s: float = 600) -> None:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            async with http.get(f"{base}/v1/stats") as r:
                stats = await r.json()
            states = stats["exchanges"]
            if states.get("delivered", 0) >= n:
                return
            if states.get("failed") or states.get("rejected"):
                raise SystemExit(f"exchanges did not all deliver: {states}")
            await asyncio.sleep(0.05)
    raise SystemExit("timed out waiting for deliveries")


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--partner", default=None)
    ap.add_argument("--config", type=Path, default=REPO, help="directory with partners.yaml")
    ap.add_argument("--fault-ratio", type=float, default=0.1, help="share of failing replies")
    ap.add_argument(
        "--journal",
        default=None,
        help="postgresql://… : instead, compare SQLite with PostgreSQL behind 1 and 2 brokers",
    )
    args = ap.parse_args()
    if args.journal:
        await postgres_comparison(args)
        return

    partner, service, application, mapped = pick_partner(args.config, args.partner)
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-"))
    root = str(same_concurrency(args.config, tmp, partner, args.concurrency))
    sim = Child(["simulate", "--config", root, "--partner", partner], tmp / "sim.log")
    sim_url = json.loads(sim.line)[partner]
    broker = None
    try:
        path = (
            load_catalogue(args.config)
            .config.partners[partner]
            .services[service]
            .options["rest"]
            .path
        )
        direct_url = sim_url + path
        n, c = args.n, args.concurrency
        # Warm both paths up a little, then measure.
        await blast(direct_url, [mapped] * 100, c, [f"warm-d{i}" for i in range(100)], {200})
        direct_s = await blast(direct_url, [mapped] * n, c, [f"d{i}" for i in range(n)], {200})

        broker = Child(
            [
                "serve",
                "--config",
                root,
                "--journal",
                str(tmp / "journal.sqlite"),
                "--port",
                "0",
                "--endpoint",
                f"{partner}={sim_url}",
                "--log-level",
                "warning",
            ],
            tmp / "broker.log",
        )
        base = broker.line.rsplit(" ", 1)[1]
        body = {
            "source": next(iter(load_catalogue(args.config).config.sources)),
            "partner": partner,
            "service": service,
            "application": application,
        }
        await blast(
            f"{base}/v1/exchanges", [body] * 100, c, [f"warm-b{i}" for i in range(100)], {202}
        )
        await wait_delivered(base, 100)
        split0 = broker.cpu_split()
        cpu0 = broker.cpu_seconds(), sim.cpu_seconds(), time.process_time()
        t0 = time.perf_counter()
        intake_s = await blast(
            f"{base}/v1/exchanges", [body] * n, c, [f"b{i}" for i in range(n)], {202}
        )
        await wait_delivered(base, n + 100)
        broker_s = time.perf_counter() - t0
        cpu1 = broker.cpu_seconds(), sim.cpu_seconds(), time.process_time()
        cpu_ms = [(b - a) * 1000 / n for a, b in zip(cpu0, cpu1, strict=True)]
        split = [(b - a) * 1000 / n for a, b in zip(split0, broker.cpu_split(), strict=True)]
        journal_bytes = sum(f.stat().st_size for f in tmp.glob("journal.sqlite*"))
        # Same broker, same partner, 10 % of partner replies failing transiently (503).
        await set_behaviour(sim_url, {"fail_ratio": args.fault_ratio, "fail_status": 503})
        t0 = time.perf_counter()
        await blast(f"{base}/v1/exchanges", [body] * n, c, [f"f{i}" for i in range(n)], {202})
        await wait_delivered(base, 2 * n + 100)
        faults_s = time.perf_counter() - t0
        faults = await sim_failures(sim_url)
        rss = broker.peak_rss_mb()
    finally:
        if broker is not None:
            broker.stop()
        sim.stop()

    direct_rate, broker_rate, intake_rate = n / direct_s, n / broker_s, n / intake_s
    print(
        f"partner {partner}, service {service}, N={n}, concurrency={c} (client and partner limit)"
    )
    print(f"direct  (client → partner, raw aiohttp):        {direct_rate:8.0f} applications/s")
    print(f"broker  (client → broker → partner, delivered): {broker_rate:8.0f} applications/s")
    print(f"broker intake alone (202s):                     {intake_rate:8.0f} applications/s")
    print(
        f"CPU per application in the broker run: broker {cpu_ms[0]:.3f} ms "
        f"({split[0]:.3f} user, {split[1]:.3f} system), "
        f"partner simulator {cpu_ms[1]:.3f} ms, client {cpu_ms[2]:.3f} ms"
    )
    print(f"broker peak RSS: {rss:.1f} MiB; journal {journal_bytes / (n + 100):.0f} bytes/exchange")
    faults_rate = n / faults_s
    print(
        f"broker with {args.fault_ratio:.0%} transient partner failures: {faults_rate:8.0f} "
        f"applications/s ({faults} failed replies, every application delivered)"
    )
    print(
        f"RESULT name=e2e_faults ratio={faults_rate / broker_rate:.3f} "
        f"faults_per_s={faults_rate:.0f} clean_per_s={broker_rate:.0f} failed_replies={faults}"
    )
    print(
        f"RESULT name=e2e ratio={broker_rate / direct_rate:.3f} broker_per_s={broker_rate:.0f} "
        f"direct_per_s={direct_rate:.0f} intake_per_s={intake_rate:.0f} n={n} concurrency={c} "
        f"broker_peak_rss_mib={rss:.1f}"
    )


async def postgres_comparison(args: argparse.Namespace) -> None:
    """SQLite (1 broker) vs PostgreSQL with 1 and 2 broker processes, same partner, same run."""
    import uuid

    import asyncpg

    partner, service, application, _ = pick_partner(args.config, args.partner)
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-pg-"))
    root = str(same_concurrency(args.config, tmp, partner, args.concurrency))
    sim = Child(["simulate", "--config", root, "--partner", partner], tmp / "sim.log")
    sim_url = json.loads(sim.line)[partner]
    body = {
        "source": next(iter(load_catalogue(args.config).config.sources)),
        "partner": partner,
        "service": service,
        "application": application,
    }
    n, c = args.n, args.concurrency
    schemas: list[str] = []
    rates: dict[str, float] = {}
    env_key = {"TONGBAN_SEARCH_KEY": os.environ.get("TONGBAN_SEARCH_KEY", "ab" * 32)}
    os.environ.update(env_key)  # the catalogue searches by applicant: PostgreSQL needs the key
    try:
        for label, brokers in (("sqlite", 1), ("pg1", 1), ("pg2", 2)):
            if label == "sqlite":
                journal = str(tmp / "journal.sqlite")
            else:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                schemas.append(schema)
                journal = f"{args.journal}{'&' if '?' in args.journal else '?'}schema={schema}"
            children = [
                Child(
                    [
                        "serve",
                        "--config",
                        root,
                        "--journal",
                        journal,
                        "--port",
                        "0",
                        "--endpoint",
                        f"{partner}={sim_url}",
                        "--log-level",
                        "warning",
                    ],
                    tmp / f"{label}-{i}.log",
                )
                for i in range(brokers)
            ]
            try:
                bases = [ch.line.rsplit(" ", 1)[1] for ch in children]
                urls = [f"{b}/v1/exchanges" for b in bases]
                warm = [f"{label}-warm-{i}" for i in range(100)]
                await blast(urls, [body] * 100, c, warm, {202})
                await wait_delivered(bases[0], 100)
                t0 = time.perf_counter()
                keys = [f"{label}-{i}" for i in range(n)]
                await blast(urls, [body] * n, c, keys, {202})
                await wait_delivered(bases[0], n + 100)
                rates[label] = n / (time.perf_counter() - t0)
            finally:
                for ch in children:
                    ch.stop()
            print(f"{label:6} ({brokers} broker process(es)): {rates[label]:8.0f} applications/s")
    finally:
        sim.stop()
        if schemas:
            conn = await asyncpg.connect(args.journal.split("?")[0])
            try:
                for schema in schemas:
                    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()
    print(
        f"RESULT name=e2e_pg ratio_vs_sqlite={rates['pg1'] / rates['sqlite']:.3f} "
        f"scale_2_vs_1={rates['pg2'] / rates['pg1']:.3f} sqlite_per_s={rates['sqlite']:.0f} "
        f"pg1_per_s={rates['pg1']:.0f} pg2_per_s={rates['pg2']:.0f} n={n} concurrency={c}"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
