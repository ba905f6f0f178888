"""The phone step: the quick E.164 of plain mobile numbers against asking ``phonenumbers`` each time.

Timed in the same process, side by side: one number through ``phonenumbers`` (parse, validate,
format E.164: what the step did for every number before), the same number through
``federation.mapping.phones.quick_e164``, and the whole request mapping of the example
applications that carry a phone number (fj: Xiamen sole proprietor change, gd: Shenzhen
foreign company set-up), once as it runs and once with the shortcut switched off, so that the
baseline is the library's path in this very run. Best of several repeats, each of at least
``--min-time`` seconds.

    .venv/bin/python bench/phone.py [--repeats 7] [--min-time 0.2]

Last line: ``RESULT name=phone number_us=<quick>/<library> fj_map_us=<now>/<library>
gd_map_us=<now>/<library> speedup_fj=<library/now>`` (µs per number, µs per mapping).
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

import orjson
import phonenumbers

from federation.mapping import load_mapping, phones

MAPPINGS = {
    "fj": (
        "mappings/fj/xiamen-sole-proprietor-change.yaml",
        "mappings/fj/xiamen-sole-proprietor-change.examples/01-xiamen-pilot-uscc.json",
    ),
    "gd": (
        "mappings/gd/shenzhen-foreign-company-setup.yaml",
        "mappings/gd/shenzhen-foreign-company-setup.examples/01-hk-resident-futian.json",
    ),
}
NUMBER = "+8613812345678"


def best(func: Callable[[], Any], repeats: int, min_time: float) -> float:
    """µs per call: the best of ``repeats`` timings, each of at least ``min_time`` seconds."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(number, int(number * min_time / 0.2))
    return min(timer.repeat(repeat=repeats, number=number)) / number * 1e6


def library(text: str) -> str:
    number = phonenumbers.parse(text, "CN")
    assert phonenumbers.is_valid_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mapping_times(name: str, repeats: int, min_time: float) -> tuple[float, float]:
    """µs per request mapping of ``name``'s example: with the shortcut, and with the library's path."""
    spec, example = MAPPINGS[name]
    mapping = load_mapping(REPO / spec)
    application = orjson.loads((REPO / example).read_bytes())["application"]
    quick = phones.quick_e164
    now = mapping.map_request(application)
    phones.quick_e164 = lambda text, region: None  # the step as it was: phonenumbers every time
    try:
        assert mapping.map_request(application) == now, "the shortcut changed the request"
        old = best(lambda: mapping.map_request(application), repeats, min_time)
    finally:
        phones.quick_e164 = quick
    new = best(lambda: mapping.map_request(application), repeats, min_time)
    return new, old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    assert phones.quick_e164(NUMBER, "CN") == library(NUMBER)
    slow = best(lambda: library(NUMBER), args.repeats, args.min_time)
    fast = best(lambda: phones.quick_e164(NUMBER, "CN"), args.repeats, args.min_time)
    print(f"one number       quick {fast:6.2f} µs   phonenumbers {slow:6.2f} µs")
    result = {"number_us": f"{fast:.2f}/{slow:.2f}"}
    for name in MAPPINGS:
        new, old = mapping_times(name, args.repeats, args.min_time)
        print(f"{name} mapping       now   {new:6.2f} µs   phonenumbers {old:6.2f} µs")
        result[f"{name}_map_us"] = f"{new:.1f}/{old:.1f}"
        if name == "fj":
            result["speedup_fj"] = f"{old / new:.2f}"
    print("RESULT name=phone " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
