"""Row digests: what the full digest (every column an exchange shows) costs a write over the one
it replaces (seven columns), per journal write (each computes one).

Timed alone, in the same process, in turns (old, new, new, old …), on a row as ``record`` returns
it on SQLite after a delivery (receipt packed, a mapping set's reference, the request hash's 32
bytes). Best of several repeats, each of at least ``--min-time`` seconds.

    .venv/bin/python bench/row_digest.py [--repeats 9] [--min-time 0.2]

Last line: ``RESULT name=row_digest old_us=<7 columns> new_us=<all shown> extra_us=<difference>``.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from replay import rows

ROW: dict[str, Any] = {
    "id": "01JZ3K9W5R8T2V6X0Y4A7C1E3G",
    "direction": "outbound",
    "source": "gd-portal",
    "target": "hk",
    "service": "TD-VL-RENEW",
    "idempotency_key": "GD-20250428-000173",
    "request_hash": rows.hash_column("sha256:" + "5e" * 32),
    "state": "delivered",
    "attempts": 1,
    "next_attempt_at": None,
    "lifecycle_state": "submitted",
    "mapping_versions": bytes(range(32)),
    "receipt": rows.receipt_column({"receipt_number": "HK20250428000173", "status": "accepted"}),
    "last_error": None,
    "created_at": 1_745_800_000.123,
    "updated_at": 1_745_800_001.456,
}


def old() -> bytes:
    """The digest this release replaces."""
    return rows._digest(b"tongban/shown/1", (ROW[k] for k in rows.SHOWN_1))[: rows.SHOWN_BYTES]


def new() -> bytes:
    """The full digest."""
    return rows.shown_digest(ROW)


def best(f: Callable[[], bytes], min_time: float) -> float:
    """µs per call, of a run of at least ``min_time`` seconds."""
    timer = timeit.Timer(f)
    n, _ = timer.autorange()
    runs = max(1, int(min_time / max(timer.timeit(n) / n, 1e-9) / n))
    return timer.timeit(n * runs) / (n * runs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"old": [], "new": []}
    for turn in range(args.repeats):
        order = ("old", "new") if turn % 2 == 0 else ("new", "old")
        for name in order:
            times[name].append(best(old if name == "old" else new, args.min_time))
    o, n = min(times["old"]), min(times["new"])
    for name, got in times.items():
        print(f"{name}: best {min(got):.2f} µs, median {sorted(got)[len(got) // 2]:.2f} µs")
    print(f"RESULT name=row_digest old_us={o:.2f} new_us={n:.2f} extra_us={n - o:.2f}")


if __name__ == "__main__":
    main()
