"""Strict JSON reading: what refusing duplicate keys costs over plain ``orjson.loads``.

Timed alone, in the same process, old and new side by side, on the bodies an intake and a REST
reply actually carry: the gd (Shenzhen foreign company set-up) and fj (Xiamen sole proprietor
change) example applications as submissions, written both ways clients write JSON (orjson's
compact UTF-8, and the standard library's default ``\\uXXXX`` escapes with spaces), and the fj
simulator's reply. Best of several repeats, each of at least ``--min-time`` seconds.

    .venv/bin/python bench/strict_json.py [--repeats 7] [--min-time 0.2]

Last line: ``RESULT name=strict_json gd_us=<new>/<old> fj_us=<new>/<old> reply_us=<new>/<old>``
(µs per body, the standard library's writing).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson

from federation.domain import strictjson

EXAMPLES = {
    "gd": ("mappings/gd/shenzhen-foreign-company-setup.examples/01-hk-resident-futian.json", "gd"),
    "fj": ("mappings/fj/xiamen-sole-proprietor-change.examples/01-xiamen-pilot-uscc.json", "fj"),
}
REPLY = {
    "resultCode": "0",
    "resultMsg": "受理成功",
    "result": {"ywlsh": "FJ20250303000127", "zt": "SL", "slrq": "20250303"},
}


def submission(path: str, partner: str) -> dict[str, Any]:
    example = orjson.loads((REPO / path).read_bytes())
    return {
        "source": example.get("source", "gd-zwfw"),
        "partner": partner,
        "service": "S",
        "application": example["application"],
    }


def best(func: Callable[[], Any], repeats: int, min_time: float) -> float:
    """µs per call: the best of ``repeats`` timings, each of at least ``min_time`` seconds."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(number, int(number * min_time / 0.2))
    return min(timer.repeat(repeat=repeats, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    bodies: dict[str, dict[str, bytes]] = {
        name: {
            "orjson": orjson.dumps(submission(path, partner)),
            "stdlib": json.dumps(submission(path, partner)).encode(),
        }
        for name, (path, partner) in EXAMPLES.items()
    }
    bodies["reply"] = {"orjson": orjson.dumps(REPLY), "stdlib": json.dumps(REPLY).encode()}
    result: dict[str, str] = {}
    for name, written in bodies.items():
        for how, raw in written.items():
            assert strictjson.loads(raw) == orjson.loads(raw)
            old = best(lambda raw=raw: orjson.loads(raw), args.repeats, args.min_time)
            new = best(lambda raw=raw: strictjson.loads(raw), args.repeats, args.min_time)
            print(
                f"{name:5} {how:6} {len(raw):5} bytes  orjson.loads {old:6.2f} µs  "
                f"strict {new:6.2f} µs  (+{new - old:.2f})"
            )
            if how == "stdlib":
                result[f"{name}_us"] = f"{new:.2f}/{old:.2f}"
    print("RESULT name=strict_json " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
