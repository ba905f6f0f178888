"""End-to-end throughput: client → broker → REST partner, against client → partner directly.

Both runs use the same partner simulator process, the same N payloads and the same concurrency, in one
invocation (these machines are noisy: only a same-run comparison means anything). The broker runs as
its own `tongban serve` process with its durable SQLite journal (WAL, synchronous=FULL); the broker
run counts until the journal says every exchange is delivered, not merely accepted.

    python bench/e2e.py [--n 2000] [--concurrency 64] [--rate 200] [--workers N] [--profile FILE]
                        [--gc FILE]

CPU per application (broker; client + partner simulator: the two hops the broker adds) gives
``overhead = broker_cpu_ms / hops_cpu_ms``. A paced run then submits ``--rate`` applications a
second while the partner answers each in ``--partner-delay-ms`` (10 ms) and reads, from the journal,
when each was delivered: p50 and p99 submit-to-delivered, and by phase from its events' times.
A third run sends the same load while 10 % of partner replies fail transiently (``RESULT
name=e2e_faults``, ending with ``held``, ``waited`` and ``wait_max_s``: applications an open
breaker held before their first attempt, those that waited a second or more between two
attempts, and the longest such wait, from the journal's event times; a breaker's cool-down reads
as its 30 s, a retry the journal scheduled as its jittered backoff). The workers run sends the
same load to ``tongban serve --workers 1`` and ``--workers N`` (fresh journals): ``RESULT
name=e2e_workers``, whose ``balance`` is the least busy worker's CPU over the busiest's and
``idle`` the machine's idle share in the N workers' run.
``--profile FILE`` runs the measured broker under cProfile, timing the CPU of its event loop
thread (``bench/profiled.py``), and writes its stats to FILE (read them with ``python -m pstats
FILE``). ``--gc FILE`` records the measured broker's garbage collections (``bench/gcstats.py``)
and reports those of the throughput run: ``RESULT name=e2e_gc``. Last
line: ``RESULT name=e2e ratio=<broker/direct> broker_cpu_ms=… hops_cpu_ms=… overhead=… p50_ms=…
p99_ms=… ... vs_relay=… paced_core_share=…``, the last the share of one core the broker's work
takes at the paced rate (``--rate`` × ``broker_cpu_ms``): p99 depends on it, so two machines'
p99 compare only at comparable shares, as ``relay_cpu_ms`` (the bare relay's CPU per
application) tells how fast the machine is at the same aiohttp work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import gcstats  # bench/gcstats.py, beside this script

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

    def __init__(
        self,
        args: list[str],
        log: Path,
        *,
        profile: Path | None = None,
        script: str = "",
        gc: Path | None = None,
    ) -> None:
        self._log = log.open("w")
        # the event loop thread's CPU, not the wall clock (bench/profiled.py says why)
        runner = [str(REPO / "bench" / "profiled.py"), str(profile)] if profile else []
        if gc:
            runner = [str(REPO / "bench" / "gcstats.py"), str(gc)]
        what = [script] if script else ["-m", "federation"]
        self.proc = subprocess.Popen(
            [sys.executable, *runner, *what, *args],
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

    def thread_cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each of the process's threads, by thread id."""
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[int, float] = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
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
    retried: list[int] | None = None,
) -> float:
    """POST every body with its key, ``concurrency`` at a time; returns seconds taken.

    With ``retried``, a 503 (journal unavailable) is sent again with the same key, as a client
    does, and counted in ``retried[0]``."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(bodies)):
            queue.put_nowait(i)

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                target = url if isinstance(url, str) else url[i % len(url)]
                while True:
                    async with http.post(
                        target, json=bodies[i], headers={"Idempotency-Key": keys[i]}
                    ) as r:
                        await r.read()
                    if r.status == 503 and retried is not None:
                        retried[0] += 1
                        await asyncio.sleep(0.05)
                        continue
                    if r.status not in ok:
                        raise SystemExit(f"unexpected HTTP {r.status} from {target}")
                    break

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def paced(url: str, body: dict[str, Any], keys: list[str], rate: float) -> dict[str, float]:
    """POST one application every 1/``rate`` seconds (open loop); the wall time each was sent."""
    sent: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post(key: str) -> None:
            sent[key] = time.time()
            async with http.post(url, json=body, headers={"Idempotency-Key": key}) as r:
                await r.read()
                if r.status != 202:
                    raise SystemExit(f"unexpected HTTP {r.status} from {url}")

        tasks = []
        t0 = time.perf_counter()
        for i, key in enumerate(keys):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(key)))
        await asyncio.gather(*tasks)
    return sent


def delivered_at(journal: Path, keys: set[str]) -> dict[str, float]:
    """When the journal recorded each of ``keys`` delivered (the delivering write's time; its
    commit follows within one group commit)."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT idempotency_key, updated_at FROM exchanges WHERE state = 'delivered'"
        ).fetchall()
    finally:
        conn.close()
    return {k: float(at) for k, at in found if k in keys}


PHASES = (
    ("intake", "sent", "received"),
    ("to the attempt", "received", "mapped"),
    ("the attempt", "mapped", "attempt_finished"),
    ("to delivered", "attempt_finished", "done"),
)


def phases(journal: Path, sent: dict[str, float], done: dict[str, float]) -> dict[str, list[float]]:
    """For each of ``sent``'s applications, ms between its send, its ``received``, ``mapped`` and
    ``attempt_finished`` events (their clear ``at`` columns) and its delivered write."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT x.idempotency_key, e.kind, e.at FROM events e"
            " JOIN exchanges x ON x.id = e.exchange_id"
            " WHERE e.kind IN ('received', 'mapped', 'attempt_finished')"
        ).fetchall()
    finally:
        conn.close()
    times: dict[str, dict[str, float]] = {k: {"sent": sent[k], "done": done[k]} for k in done}
    for key, kind, at in rows:
        if key in times:
            times[key][kind] = float(at)
    out: dict[str, list[float]] = {name: [] for name, _, _ in PHASES}
    for t in times.values():
        for name, start, end in PHASES:
            if start in t and end in t:
                out[name].append((t[end] - t[start]) * 1000)
    return out


def fault_waits(journal: Path, prefix: str) -> tuple[int, int, float]:
    """Of the applications keyed ``prefix…``: how many an open breaker held before their first
    attempt (a ``held`` event), how many waited a second or more between two of their attempts
    (a retry the journal scheduled, or a breaker's cool-down), and the longest such wait (s)."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT x.idempotency_key, e.kind, e.at FROM events e"
            " JOIN exchanges x ON x.id = e.exchange_id"
            " WHERE e.kind IN ('mapped', 'held', 'attempt_finished')"
            " AND x.idempotency_key LIKE ? ORDER BY e.seq",
            (f"{prefix}%",),
        ).fetchall()
    finally:
        conn.close()
    held: set[str] = set()
    last: dict[str, float] = {}
    gaps: dict[str, float] = {}
    for key, kind, at in rows:
        if kind == "held":
            held.add(key)
        if key in last:
            gaps[key] = max(gaps.get(key, 0.0), float(at) - last[key])
        last[key] = float(at)
    waits = [g for g in gaps.values() if g >= 1.0]
    return len(held), len(waits), max(waits, default=0.0)


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(p / 100 * len(ranked)) - 1))]


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


def journal_states(journal: Path) -> dict[str, int]:
    """Exchanges per state, read from the journal file itself (costs the broker nothing)."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT state, count(*) FROM exchanges GROUP BY state").fetchall()
    finally:
        conn.close()
    return {state: count for state, count in rows}


async def wait_journal(journal: Path, n: int, limit_s: float = 600) -> None:
    """Wait until ``n`` exchanges in the journal file are delivered."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        states = journal_states(journal)
        if states.get("delivered", 0) >= n:
            return
        if states.get("failed") or states.get("rejected"):
            raise SystemExit(f"exchanges did not all deliver: {states}")
        await asyncio.sleep(0.02)
    raise SystemExit("timed out waiting for deliveries")


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


@dataclass(frozen=True)
class Setup:
    """What every run shares: the partner, its simulator, the catalogue copy and the payloads."""

    partner: str
    sim_url: str
    root: str
    tmp: Path
    body: dict[str, Any]
    n: int
    concurrency: int

    def broker(
        self, label: str, *, workers: int = 1, profile: Path | None = None, gc: Path | None = None
    ) -> tuple[Child, str]:
        """A `tongban serve` on a fresh journal; the child and its base URL."""
        args = ["serve", "--config", self.root, "--journal", str(self.journal(label))]
        args += ["--port", "0", "--endpoint", f"{self.partner}={self.sim_url}"]
        args += ["--log-level", "warning", "--workers", str(workers)]
        child = Child(args, self.tmp / f"{label}.log", profile=profile, gc=gc)
        return child, child.line.rsplit(" ", 1)[1]

    def journal(self, label: str) -> Path:
        return self.tmp / f"{label}.sqlite"

    async def warm(self, base: str, label: str) -> None:
        """100 applications through a new broker, delivered, before anything is measured."""
        keys = [f"{label}-warm-{i}" for i in range(100)]
        url = f"{base}/v1/exchanges"
        await blast(url, [self.body] * 100, self.concurrency, keys, {202}, retried=[0])
        await wait_journal(self.journal(label), 100)

    async def load(
        self, base: str, label: str, prefix: str, before: int, retried: list[int] | None = None
    ) -> tuple[float, float]:
        """Send n applications; (seconds until all delivered, seconds until all accepted)."""
        keys = [f"{prefix}{i}" for i in range(self.n)]
        t0 = time.perf_counter()
        intake = await blast(
            f"{base}/v1/exchanges", [self.body] * self.n, self.concurrency, keys, {202}, retried
        )
        await wait_journal(self.journal(label), before + self.n)
        return time.perf_counter() - t0, intake


@dataclass(frozen=True)
class BrokerRun:
    """What the measured broker run found."""

    rate: float
    intake_rate: float
    cpu_ms: tuple[float, float, float]  # broker, partner simulator, client: per application
    split_ms: tuple[float, float]  # broker user, system
    rss: float
    journal_bytes: float
    latency_ms: list[float]
    faults_rate: float
    faults: int
    # the fault run's applications held by an open breaker, waited 1 s or more; longest wait (s)
    waits: tuple[int, int, float]
    threads: list[float]  # shares of the broker's CPU in the measured run: event loop first
    # per generation, the measured run's collections (with --gc): count, total ms, longest ms
    collections: dict[int, tuple[int, float, float]] | None = None
    phases: dict[str, list[float]] | None = None  # the paced run's, by phase (ms)


def thread_shares(pid: int, before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each thread's share of the CPU used between two readings: the main thread (the event
    loop) first, then the others (journal writer, reader, executor) from the busiest."""
    used = {tid: t - before.get(tid, 0.0) for tid, t in after.items()}
    total = sum(used.values()) or 1.0
    others = sorted((t for tid, t in used.items() if tid != pid), reverse=True)
    return [used.get(pid, 0.0) / total, *(t / total for t in others)]


async def broker_run(s: Setup, sim: Child, args: argparse.Namespace) -> BrokerRun:
    """Throughput and CPU, paced latency with a slow partner, then transient faults: one broker."""
    if args.gc:
        args.gc.unlink(missing_ok=True)  # a stale file must not stand in for this run's
    broker, base = s.broker("broker", profile=args.profile, gc=args.gc)
    try:
        await s.warm(base, "broker")
        split0, threads0 = broker.cpu_split(), broker.thread_cpu()
        cpu0 = broker.cpu_seconds(), sim.cpu_seconds(), time.process_time()
        window = [time.time()]
        broker_s, intake_s = await s.load(base, "broker", "b", 100)
        window.append(time.time())
        cpu1 = broker.cpu_seconds(), sim.cpu_seconds(), time.process_time()
        threads = thread_shares(broker.proc.pid, threads0, broker.thread_cpu())
        cpu = tuple((b - a) * 1000 / s.n for a, b in zip(cpu0, cpu1, strict=True))
        split = tuple((b - a) * 1000 / s.n for a, b in zip(split0, broker.cpu_split(), strict=True))
        journal = s.journal("broker")
        journal_bytes = sum(f.stat().st_size for f in s.tmp.glob("broker.sqlite*")) / (s.n + 100)
        # Paced: a fixed rate, the partner answering each request in --partner-delay-ms.
        await set_behaviour(s.sim_url, {"delay": args.partner_delay_ms / 1000})
        keys = [f"p{i}" for i in range(args.paced_n)]
        sent = await paced(f"{base}/v1/exchanges", s.body, keys, args.rate)
        await wait_journal(journal, s.n + 100 + len(keys))
        done = delivered_at(journal, set(keys))
        latency = [(done[k] - sent[k]) * 1000 for k in keys]
        paced_phases = phases(journal, sent, done)
        # Same broker, 10 % of partner replies failing transiently (503), no delay.
        await set_behaviour(s.sim_url, {"fail_ratio": args.fault_ratio, "fail_status": 503})
        faults_s, _ = await s.load(base, "broker", "f", s.n + 100 + len(keys))
        faults = await sim_failures(s.sim_url)
        waits = fault_waits(journal, "f")
        await set_behaviour(s.sim_url, {})
        rss = broker.peak_rss_mb()
    finally:
        broker.stop()
    collections = gcstats.summary(args.gc, window[0], window[1]) if args.gc else None
    return BrokerRun(
        rate=s.n / broker_s,
        intake_rate=s.n / intake_s,
        cpu_ms=(cpu[0], cpu[1], cpu[2]),
        split_ms=(split[0], split[1]),
        rss=rss,
        journal_bytes=journal_bytes,
        latency_ms=latency,
        faults_rate=s.n / faults_s,
        faults=faults,
        waits=waits,
        threads=threads,
        collections=collections,
        phases=paced_phases,
    )


async def relay_run(s: Setup, sim: Child, url: str, mapped: dict[str, Any]) -> float:
    """CPU per application of the bare relay (bench/relay.py): the hops' own cost in the middle."""
    body = s.tmp / "mapped.json"
    body.write_bytes(orjson.dumps(mapped))
    relay = Child([url, str(body)], s.tmp / "relay.log", script=str(REPO / "bench" / "relay.py"))
    base = relay.line.rsplit(" ", 1)[1]
    try:
        await blast(
            f"{base}/v1/exchanges",
            [s.body] * 100,
            s.concurrency,
            [f"rw{i}" for i in range(100)],
            {202},
        )
        await relayed(base, 100)
        cpu0 = relay.cpu_seconds()
        keys = [f"r{i}" for i in range(s.n)]
        await blast(f"{base}/v1/exchanges", [s.body] * s.n, s.concurrency, keys, {202})
        await relayed(base, 100 + s.n)
        return (relay.cpu_seconds() - cpu0) * 1000 / s.n
    finally:
        relay.stop()


async def relayed(base: str, count: int) -> None:
    """Until the relay's partner calls have all come back."""
    async with aiohttp.ClientSession() as http:
        for _ in range(6000):
            async with http.get(f"{base}/done") as r:
                if (await r.json())["done"] >= count:
                    return
            await asyncio.sleep(0.01)
    raise SystemExit("the relay's partner calls did not all come back")


async def workers_run(s: Setup, workers: int) -> tuple[float, float, int, float, float]:
    """The same load through `tongban serve --workers 1` and `--workers N`, fresh journals each;
    the two rates, how many requests the N workers answered 503 (SQLite's one write lock, not
    had within its busy timeout), each sent again with its key, how evenly the N workers shared
    the work (the least busy worker's CPU over the busiest's), and the machine's idle share
    during the N workers' run: CPU left idle while workers wait means something other than the
    cores holds them back (it was SQLite's busy handler before the journal's turns)."""
    rates = []
    retried = [0]
    balance, idle = 1.0, 0.0
    for count in (1, workers):
        label = f"workers{count}"
        broker, base = s.broker(label, workers=count)
        try:
            await s.warm(base, label)
            before, ticks = children_cpu(broker.proc.pid), idle_ticks()
            seconds, _ = await s.load(base, label, "w", 100, retried if count > 1 else None)
            after, ticks_after = children_cpu(broker.proc.pid), idle_ticks()
            rates.append(s.n / seconds)
            used = [after[pid] - before.get(pid, 0.0) for pid in after]
            if count > 1 and used:
                balance = min(used) / max(max(used), 1e-9)
                idle = (ticks_after[0] - ticks[0]) / max(ticks_after[1] - ticks[1], 1)
        finally:
            broker.stop()
    return rates[0], rates[1], retried[0], balance, idle


def idle_ticks() -> tuple[int, int]:
    """(idle, all) CPU ticks of the whole machine so far, from /proc/stat (idle counts iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


def children_cpu(parent: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of each process whose parent is ``parent``: the
    workers of `tongban serve --workers N`."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == parent:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def absolute(path: str) -> Path:
    return Path(path).resolve()


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--partner", default=None)
    ap.add_argument("--config", type=Path, default=REPO, help="directory with partners.yaml")
    ap.add_argument("--fault-ratio", type=float, default=0.1, help="share of failing replies")
    ap.add_argument("--rate", type=float, default=200, help="applications/s of the paced run")
    ap.add_argument("--paced-n", type=int, default=1000, help="applications in the paced run")
    ap.add_argument("--partner-delay-ms", type=float, default=10, help="in the paced run")
    ap.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="N of the workers run (default: the cores available; 0: no workers run)",
    )
    # The broker runs in the checkout (its own working directory): these name files from here.
    watch = ap.add_mutually_exclusive_group()
    watch.add_argument(
        "--profile", type=absolute, default=None, help="cProfile stats of the broker run"
    )
    watch.add_argument(
        "--gc", type=absolute, default=None, help="the broker run's garbage collections"
    )
    ap.add_argument(
        "--journal",
        default=None,
        help="postgresql://… : instead, compare SQLite with PostgreSQL behind 1 and 2 brokers",
    )
    return ap.parse_args()


async def main() -> None:
    args = arguments()
    if args.journal:
        await postgres_comparison(args)
        return
    partner, service, application, mapped = pick_partner(args.config, args.partner)
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-"))
    root = str(same_concurrency(args.config, tmp, partner, args.concurrency))
    sim = Child(["simulate", "--config", root, "--partner", partner], tmp / "sim.log")
    sim_url = json.loads(sim.line)[partner]
    source = next(iter(load_catalogue(args.config).config.sources))
    body = {"source": source, "partner": partner, "service": service, "application": application}
    s = Setup(partner, sim_url, root, tmp, body, args.n, args.concurrency)
    workers: tuple[float, float, int, float, float] | None = None
    try:
        rest = load_catalogue(args.config).config.partners[partner].services[service]
        direct_url = sim_url + rest.options["rest"].path
        n, c = args.n, args.concurrency
        # Warm the direct path up a little, then measure.
        await blast(direct_url, [mapped] * 100, c, [f"warm-d{i}" for i in range(100)], {200})
        direct_s = await blast(direct_url, [mapped] * n, c, [f"d{i}" for i in range(n)], {200})
        run = await broker_run(s, sim, args)
        relay_ms = await relay_run(s, sim, direct_url, mapped)
        if args.workers > 0:
            workers = await workers_run(s, args.workers)
    finally:
        sim.stop()
    report(s, args, n / direct_s, run, workers, relay_ms)


def report(
    s: Setup,
    args: argparse.Namespace,
    direct_rate: float,
    run: BrokerRun,
    workers: tuple[float, float, int, float, float] | None,
    relay_ms: float,
) -> None:
    """The human lines, then the RESULT lines."""
    cpu, split = run.cpu_ms, run.split_ms
    hops = cpu[1] + cpu[2]
    p50, p99 = percentile(run.latency_ms, 50), percentile(run.latency_ms, 99)
    print(f"partner {s.partner}, N={s.n}, concurrency={s.concurrency} (client and partner limit)")
    print(f"direct  (client → partner, raw aiohttp):        {direct_rate:8.0f} applications/s")
    print(f"broker  (client → broker → partner, delivered): {run.rate:8.0f} applications/s")
    print(f"broker intake alone (202s):                     {run.intake_rate:8.0f} applications/s")
    print(
        f"CPU per application in the broker run: broker {cpu[0]:.3f} ms "
        f"({split[0]:.3f} user, {split[1]:.3f} system), "
        f"partner simulator {cpu[1]:.3f} ms, client {cpu[2]:.3f} ms; "
        f"overhead (broker / client + partner) {cpu[0] / hops:.2f}"
    )
    print(
        f"a bare relay (aiohttp in, 202, aiohttp out; bench/relay.py): {relay_ms:.3f} ms CPU per "
        f"application, floor overhead {relay_ms / hops:.2f}"
    )
    shown = ", ".join(f"{share:.0%}" for share in run.threads[1:4] if share >= 0.005)
    print(f"broker CPU by thread: event loop {run.threads[0]:.0%}; other threads {shown}")
    print(f"broker peak RSS: {run.rss:.1f} MiB; journal {run.journal_bytes:.0f} bytes/exchange")
    print(
        f"paced {args.rate:.0f}/s, partner answering in {args.partner_delay_ms:.0f} ms: "
        f"submit-to-delivered p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"mean {statistics.fmean(run.latency_ms):.1f} ms over {len(run.latency_ms)}"
    )
    if run.phases:
        shown = "; ".join(
            f"{name} {percentile(ms, 50):.1f}/{percentile(ms, 99):.1f}"
            for name, ms in run.phases.items()
            if ms
        )
        print(f"paced, by phase (p50/p99 ms): {shown}")
    print(
        f"broker with {args.fault_ratio:.0%} transient partner failures: {run.faults_rate:8.0f} "
        f"applications/s ({run.faults} failed replies, every application delivered)"
    )
    if args.profile:
        print(f"(broker run under cProfile: its CPU figures are inflated; stats in {args.profile})")
    print(
        f"RESULT name=e2e_faults ratio={run.faults_rate / run.rate:.3f} "
        f"faults_per_s={run.faults_rate:.0f} clean_per_s={run.rate:.0f} "
        f"failed_replies={run.faults} held={run.waits[0]} "
        f"waited={run.waits[1]} wait_max_s={run.waits[2]:.1f}"
    )
    if run.collections is not None:
        (n0, ms0, _), (n1, ms1, _), (n2, ms2, long2) = (run.collections[g] for g in (0, 1, 2))
        print(
            f"RESULT name=e2e_gc young={n0 + n1} young_ms={ms0 + ms1:.1f} full={n2} "
            f"full_ms={ms2:.1f} full_max_ms={long2:.1f} n={s.n}"
        )
    if workers is not None:
        one, many, retried, balance, idle = workers
        cores = len(os.sched_getaffinity(0))
        print(
            f"RESULT name=e2e_workers workers={args.workers} cores={cores} one_per_s={one:.0f} "
            f"n_per_s={many:.0f} scaling={many / one:.2f} efficiency={many / one / args.workers:.2f}"
            f" retried_503={retried} balance={balance:.2f} idle={idle:.2f}"
        )
    print(
        f"RESULT name=e2e ratio={run.rate / direct_rate:.3f} broker_per_s={run.rate:.0f} "
        f"direct_per_s={direct_rate:.0f} intake_per_s={run.intake_rate:.0f} "
        f"broker_cpu_ms={cpu[0]:.3f} hops_cpu_ms={hops:.3f} overhead={cpu[0] / hops:.2f} "
        f"p50_ms={p50:.1f} p99_ms={p99:.1f} rate={args.rate:.0f} n={s.n} "
        f"concurrency={s.concurrency} broker_peak_rss_mib={run.rss:.1f} "
        f"relay_cpu_ms={relay_ms:.3f} floor_overhead={relay_ms / hops:.2f} "
        f"vs_relay={cpu[0] / relay_ms if relay_ms else float('nan'):.2f} "
        # the share of one core the broker's work takes at the paced rate (its CPU per
        # application in the throughput run): p99 is comparable between machines only at
        # comparable shares, since it grows as that share nears one
        f"paced_core_share={args.rate * cpu[0] / 1000:.2f}"
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
