"""Journal search at scale: the same support-staff searches on journals of 10,000 and 1,000,000 exchanges.

Each journal is a temporary SQLite file with the real schema: a ``SQLiteJournal`` is opened once to
apply the migrations and closed, then rows go in with plain ``sqlite3.executemany`` in large
transactions (journalling off while filling, WAL again afterwards, as the broker leaves it). The rows
are realistic: 11 partners and their service items from the shipped partners.yaml, about 10 % failed
(four attempts, retries exhausted) and the rest delivered (one attempt); each exchange has a
``received`` event with a ~1 KB application, a ``mapped`` event, an ``attempt_finished`` event per
attempt (its start is the row's move, as the broker writes it), an applicant reference (the 16
bytes of a keyed hash the journal keeps), the request hash as 32 bytes and the receipt packed as
the broker keeps them, and every event carries a valid chain hash from ``replay.chain.link``, so
``verify`` passes (checked on the small journal every run; ``--verify-all`` checks the large one too).

Timed through ``SQLiteJournal.search``, as ``tongban journal search`` and ``GET /v1/exchanges`` call
it, median of ``--runs`` runs after a warm-up:

* the 50 newest failed exchanges — ``Query(states=("failed",), limit=50)`` (the RESULT), and the
  same as the first search on a freshly opened journal (what each CLI invocation does);
* the 50 newest failed exchanges for partner ``mo``;
* the exchanges of one applicant reference;
* the failed exchanges of ``yn``, a partner that rarely fails (ten failed at any journal size) —
  before and after adding, to the temporary file only, the index that would serve it exactly.

    .venv/bin/python bench/journal.py [--sizes 10000,1000000] [--runs 25] [--keep DIR]

First, ``bench/journal_size.py``: the demo catalogue's applications written by the real broker
(sealed and compressed, as ``tongban serve`` writes them), ``--demo-rounds`` submissions of each.

Last line: ``RESULT name=journal_search growth=<median at largest / median at smallest>
bytes_per_exchange=<journal growth per exchange of the demo applications> payload_ratio=<that /
their clear JSON> synthetic_bytes_per_exchange=<file bytes / exchanges of the largest bulk-filled
journal, in clear>``; targets growth ≤ 2, bytes_per_exchange ≤ 2,500.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import journal_size
import orjson

from adapters.registry import protocols
from federation.config import load_config
from federation.domain.ids import IdGenerator
from replay.chain import GENESIS, link
from replay.journal import Query
from replay.refs import kept
from replay.rows import hash_column, receipt_column
from replay.sqlite import SQLiteJournal

DAY = 86400.0
FAILED_SHARE = 0.10
HEALTHY = "yn"  # one partner that rarely fails: ten failed exchanges, however large the journal
HEALTHY_FAILURES = 10
CANDIDATE_INDEX = "CREATE INDEX bench_state_target ON exchanges (state, target, id)"
FAILED_ATTEMPTS = 4
BATCH = 20_000  # exchanges per transaction
KEY = bytes(range(32))  # the applicant-search key of the benchmark journals
SURNAMES = ["陳", "李", "張", "黃", "何", "林", "梁", "吳", "王", "劉", "鄭", "謝", "郭", "羅"]
GIVEN = ["大文", "美玲", "志強", "嘉欣", "家豪", "詠詩", "偉明", "淑芬", "子軒", "曉彤"]


@dataclass(frozen=True)
class Route:
    partner: str
    service: str
    url: str


def routes() -> list[Route]:
    """Every (partner, service item) of the shipped catalogue."""
    config = load_config(REPO, protocols())
    out = []
    for p in config.partners.values():
        for code in p.services:
            out.append(Route(p.id, code, f"{p.endpoint.rstrip('/')}/{code.lower()}"))
    return out


def template(value: Any) -> bytes:
    """JSON bytes with ``@name@`` tokens turned into %-format slots (filled per row, cheaply)."""
    raw = orjson.dumps(value).replace(b"%", b"%%")
    for token in (b"@name@", b"@id@", b"@phone@", b"@mark@", b"@key@", b"@n@", b"@hash@"):
        raw = raw.replace(token, b"%s")
    return raw


# Every row uses the same field order: name, id, phone, mark, key, n (positional %-slots).
APPLICATION = template(
    {
        "applicant": {
            "name": "@name@",
            "name_en": "CHAN, Tai Man",
            "id_type": "hkid",
            "id_number": "@id@",
            "birth_date": "12/03/1984",
            "sex": "M",
            "phone": "@phone@",
            "email": "applicant@example.hk",
            "address": {
                "line1": "香港九龍彌敦道 188 號 12 樓 B 室",
                "district": "油尖旺",
                "region": "九龍",
            },
        },
        "vehicle": {"registration_mark": "@mark@", "class": "private_car", "make": "TOYOTA"},
        "licence": {"period_months": 12, "fee": {"amount": "5074.00", "currency": "HKD"}},
        "channel": {"kind": "kiosk", "city": "广州", "counter": "天河区政务服务中心 3 号窗口"},
        "declarations": ["information_true", "insurance_valid", "no_outstanding_fines"],
        "attachments": [
            {"kind": "insurance_note", "sha256": "9f2c" * 16, "bytes": 183_422},
            {"kind": "inspection_certificate", "sha256": "a07e" * 16, "bytes": 98_115},
        ],
        "reference": "@key@",
        "sequence": "@n@",
    }
)
MAPPED = template(
    {
        "mapped": {
            "application_type": "VLR",
            "owner": {"name_zh": "@name@", "hkid": "@id@", "phone": "@phone@"},
            "vehicle": {"registration_mark": "@mark@", "class_code": "PC"},
            "licence": {"period_months": 12, "fee_hkd": "5074.00"},
            "submitted_via": "TONGBAN",
            "reference": "@key@",
            "sequence": "@n@",
        },
        "versions": {
            "mapping": "sha256:" + "3b" * 32,
            "tables/hk-district.yaml": "sha256:" + "5c" * 32,
        },
    }
)
REQUEST_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Accept": "application/json",
    "Idempotency-Key": "@key@",
    "X-Tongban-Exchange-Id": "@id@",
    "X-Tongban-Attempt": "@n@",
}
# Field order here: key, id (the exchange id), n (attempt), hash.
DELIVERED = template(
    {
        "attempt": 1,
        "outcome": "delivered",
        "duration_ms": 48.213,
        "request": {
            "method": "POST",
            "url": "https://gateway.example.gov/tongban",
            "headers": REQUEST_HEADERS,
            "body_sha256": "@hash@",
            "body_bytes": 612,
        },
        "response": {
            "status": 200,
            "content_type": "application/json",
            "body": '{"ref_no":"HK20261129000123","status":"RECEIVED"}',
            "body_bytes": 52,
        },
    }
)
FAILED = template(
    {
        "attempt": 1,
        "outcome": "transient_error",
        "duration_ms": 5001.7,
        "request": {
            "method": "POST",
            "url": "https://gateway.example.gov/tongban",
            "headers": REQUEST_HEADERS,
            "body_sha256": "@hash@",
            "body_bytes": 612,
        },
        "response": {
            "status": 503,
            "content_type": "application/json",
            "body": '{"detail":"service unavailable"}',
            "body_bytes": 32,
        },
        "error": {"kind": "transient_error", "message": "partner answered HTTP 503", "status": 503},
    }
)
RECEIPT = {"receipt_number": "HK20261129000123", "status": "RECEIVED"}
LAST_ERROR = orjson.dumps(
    {"kind": "transient_error", "message": "partner answered HTTP 503", "status": 503}
)


def exchanges(
    n: int, seed: int = 7
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], bytes]]:
    """(exchange row, [(exchange_id, at, kind, data)], applicant ref) for n exchanges over 90 days."""
    rng = random.Random(seed)
    all_routes = routes()
    versions = orjson.dumps({"mappings/x.yaml": "sha256:" + "3b" * 32})
    start = time.time() - 90 * DAY
    step = 90 * DAY / n
    healthy_share = sum(r.partner == HEALTHY for r in all_routes) / len(all_routes)
    healthy_every = max(1, round(n * healthy_share / HEALTHY_FAILURES))
    healthy_seen = 0
    ids = IdGenerator()  # its own: ids made earlier in the process must not pin these to "now"
    for i in range(n):
        route = all_routes[rng.randrange(len(all_routes))]
        at = start + i * step
        xid = ids.new(at)
        key = f"gd-{i:09d}".encode()
        hkid = f"{'ABCDEGHKMPRVYZ'[i % 14]}{rng.randrange(1_000_000):06d}{i % 10}".encode()
        name = (SURNAMES[i % 14] + GIVEN[(i // 14) % 10]).encode()
        phone = f"+852 9{rng.randrange(10_000_000):07d}".encode()
        mark = f"{'ABCDEFGHJK'[i % 10]}{'LMNPRSTUVW'[(i // 10) % 10]}{i % 9999}".encode()
        seq = str(i).encode()
        body_hash = hashlib.sha256(key).hexdigest().encode()
        application = APPLICATION % (name, hkid, phone, mark, key, seq)
        received = (
            b'{"application":' + application + b',"request_hash":"sha256:' + body_hash + b'"}'
        )
        events = [
            (xid, at, "received", received),
            (xid, at + 0.004, "mapped", MAPPED % (name, hkid, phone, mark, key, seq)),
        ]
        x = xid.encode()
        if route.partner == HEALTHY:
            healthy_seen += 1
            failed = healthy_seen % healthy_every == 0
        else:
            failed = rng.random() < FAILED_SHARE
        attempts = FAILED_ATTEMPTS if failed else 1
        t = at + 0.005
        for number in range(1, attempts + 1):
            nb = str(number).encode()
            finished = (FAILED if failed else DELIVERED) % (key, x, nb, body_hash)
            events.append((xid, t + 0.05, "attempt_finished", finished))
            t += 60.0 * number
        if failed:
            events.append((xid, t, "retries_exhausted", b'{"attempts":%d}' % attempts))
        row = (
            xid,
            "outbound",
            "gd-portal",
            route.partner,
            route.service,
            key.decode(),
            hash_column("sha256:" + body_hash.decode()),  # 32 bytes, as the broker keeps it
            "failed" if failed else "delivered",
            attempts,
            versions,
            None if failed else receipt_column(RECEIPT),  # packed, as the broker keeps it
            LAST_ERROR if failed else None,
            at,
            t,
        )
        ref = hmac.new(KEY, hkid, hashlib.sha256).digest()
        yield row, events, kept(ref)


def fill(path: Path, n: int) -> float:
    """Make a journal of ``n`` exchanges at ``path``; returns the seconds it took."""
    t0 = time.perf_counter()

    async def migrate() -> None:
        # the schema only: opening would make and sign keys on the empty file, and the bulk fill
        # below (around the journal) would then read as tampering
        await SQLiteJournal(path).migrate()

    asyncio.run(migrate())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a bulk load into a fresh file: nothing to protect
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-524288")  # 512 MiB: keep the index pages in memory
    seq, head = 0, GENESIS
    rows: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    refs: list[tuple[bytes, str]] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
            " request_hash, state, attempts, mapping_versions, receipt, last_error, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO events (seq, exchange_id, at, kind, data, hash) VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO exchange_refs (ref, exchange_id) VALUES (?, ?)", refs
        )
        conn.execute("COMMIT")
        rows.clear()
        events.clear()
        refs.clear()

    for row, evs, ref in exchanges(n):
        rows.append(row)
        for xid, at, kind, data in evs:
            seq += 1
            head = link(head, seq, xid, at, kind, data)
            events.append((seq, xid, at, kind, data, head))
        refs.append((ref, row[0]))
        if len(rows) >= BATCH:
            flush()
    if rows:
        flush()
    conn.execute("PRAGMA journal_mode=WAL")  # as the broker leaves it
    conn.close()
    return time.perf_counter() - t0


def checkpointed_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p90_ms: float
    rows: int
    plan: str


def searches(ref: bytes) -> dict[str, Query]:
    return {
        "failed, newest 50": Query(states=("failed",), limit=50),
        "failed for mo, newest 50": Query(states=("failed",), partner="mo", limit=50),
        "by applicant ref": Query(applicant_ref=ref, limit=50),
    }


HEALTHY_QUERY = {f"failed for {HEALTHY} (rarely fails)": Query(states=("failed",), partner=HEALTHY)}


async def time_searches(
    paths: dict[int, Path], runs: int, queries: dict[str, Query]
) -> dict[int, dict[str, Timing]]:
    """Median time of each search on each journal, after a warm-up.

    The journals take turns run by run, so a busy moment on a shared machine hits every size alike.
    """
    journals = {n: SQLiteJournal(path) for n, path in paths.items()}
    for journal in journals.values():
        await journal.open()
    out: dict[int, dict[str, Timing]] = {n: {} for n in paths}
    try:
        for name, query in queries.items():
            samples: dict[int, list[float]] = {n: [] for n in paths}
            rows: dict[int, int] = {}
            for _ in range(5):
                for n, journal in journals.items():
                    rows[n] = len(await journal.search(query))
            for _ in range(runs):
                for n, journal in journals.items():
                    t0 = time.perf_counter()
                    await journal.search(query)
                    samples[n].append((time.perf_counter() - t0) * 1000)
            for n, path in paths.items():
                out[n][name] = timing(samples[n], rows[n], explain(path, query))
    finally:
        for journal in journals.values():
            await journal.close()
    return out


async def time_fresh(paths: dict[int, Path], runs: int, query: Query) -> dict[int, Timing]:
    """The first search on a newly opened journal, as each `tongban journal search` runs it."""
    samples: dict[int, list[float]] = {n: [] for n in paths}
    rows: dict[int, int] = {}
    for _ in range(runs):
        for n, path in paths.items():
            journal = SQLiteJournal(path)
            await journal.open()
            try:
                t0 = time.perf_counter()
                rows[n] = len(await journal.search(query))
                samples[n].append((time.perf_counter() - t0) * 1000)
            finally:
                await journal.close()
    return {n: timing(samples[n], rows[n], explain(path, query)) for n, path in paths.items()}


def timing(samples: list[float], rows: int, plan: str) -> Timing:
    samples.sort()
    return Timing(
        median_ms=statistics.median(samples),
        p90_ms=samples[int(len(samples) * 0.9) - 1],
        rows=rows,
        plan=plan,
    )


def add_candidate_index(path: Path) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute(CANDIDATE_INDEX)
    conn.commit()
    conn.close()
    return time.perf_counter() - t0


def explain(path: Path, query: Query) -> str:
    from replay.sqlite import search_sql

    sql, args = search_sql(query)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[-1]) for r in rows)


async def verify(path: Path) -> tuple[int, Any]:
    journal = SQLiteJournal(path)
    await journal.open()
    try:
        return await journal.verify()
    finally:
        await journal.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated exchange counts")
    parser.add_argument("--runs", type=int, default=25, help="timed runs per search (≥ 20)")
    parser.add_argument(
        "--keep", type=Path, help="build the journals in this directory and keep them"
    )
    parser.add_argument(
        "--verify-all", action="store_true", help="verify the chain of every journal"
    )
    parser.add_argument(
        "--demo-rounds", type=int, default=40, help="submissions of each demo application"
    )
    args = parser.parse_args()
    demo = journal_size.run(args.demo_rounds)
    journal_size.report(demo)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    runs = max(args.runs, 20)
    work = args.keep or Path(tempfile.mkdtemp(prefix="tongban-bench-journal-"))
    work.mkdir(parents=True, exist_ok=True)
    # An applicant reference that occurs in every journal (the first exchange's HKID).
    _, _, ref = next(exchanges(1))
    paths = {n: work / f"journal-{n}.sqlite" for n in sizes}
    sizes_bytes: dict[int, int] = {}
    try:
        for n, path in paths.items():
            for stale in work.glob(f"{path.name}*"):
                stale.unlink()
            seconds = fill(path, n)
            sizes_bytes[n] = checkpointed_size(path)
            print(
                f"{n:>9,} exchanges: filled in {seconds:6.1f} s, {sizes_bytes[n] / 2**20:8.1f} MiB, "
                f"{sizes_bytes[n] / n:,.0f} bytes per exchange",
                flush=True,
            )
            if n == sizes[0] or args.verify_all:
                count, broken = asyncio.run(verify(path))
                print(f"{'':>9}  chain: {count:,} events, {'ok' if broken is None else broken}")
                if broken is not None:
                    raise SystemExit("the benchmark journal does not verify")
        results = asyncio.run(time_searches(paths, runs, searches(ref)))
        fresh = asyncio.run(time_fresh(paths, runs, searches(ref)["failed, newest 50"]))
        healthy = asyncio.run(time_searches(paths, runs, HEALTHY_QUERY))
        built = {n: add_candidate_index(path) for n, path in paths.items()}
        indexed = asyncio.run(time_searches(paths, runs, HEALTHY_QUERY))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    [healthy_name] = HEALTHY_QUERY
    columns = f"{sizes[0]:,} / {sizes[-1]:,} exchanges" if len(sizes) > 1 else f"{sizes[0]:,}"
    print(f"\nmedian ms ({columns}; growth = largest / smallest)")
    for n in sizes:
        results[n]["failed, newest 50, fresh connection"] = fresh[n]
        results[n] |= healthy[n]
        results[n]["  … + index (state, target, id)"] = indexed[n][healthy_name]
    small, large = sizes[0], sizes[-1]
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        print(
            f"  {name:<38} {a.median_ms:8.3f} {b.median_ms:8.3f}  growth {b.median_ms / a.median_ms:6.2f}"
            f"  rows {a.rows}/{b.rows}  plan: {b.plan}"
        )
    print(f"  (index built in {', '.join(f'{s:.1f} s' for s in built.values())})")
    growth = (
        results[large]["failed, newest 50"].median_ms
        / results[small]["failed, newest 50"].median_ms
    )
    print(
        f"RESULT name=journal_search growth={growth:.2f} "
        f"bytes_per_exchange={demo.bytes_per_exchange:.0f} "
        f"payload_ratio={demo.bytes_per_exchange / demo.payload_bytes:.2f} "
        f"synthetic_bytes_per_exchange={sizes_bytes[large] / large:.0f}"
    )


if __name__ == "__main__":
    main()
