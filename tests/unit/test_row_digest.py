"""The digest of a row's columns (replay/rows.py) is the same bytes as the definition it was first
written to: every journal's chain holds these digests, so a faster form may not differ by a bit."""

from __future__ import annotations

import enum
import hashlib
import random
import struct
from typing import Any

import pytest

from replay.rows import _digest


def defined(tag: bytes, values: list[Any]) -> bytes:
    """The digest as first written: length-prefixed parts, hashed one update at a time."""
    h = hashlib.sha256(tag)
    for value in values:
        if value is None:
            part = b"N"
        elif isinstance(value, str):
            part = b"S" + value.encode("utf-8", "surrogatepass")
        elif isinstance(value, bool | int):
            part = b"I" + str(int(value)).encode()
        elif isinstance(value, float):
            part = b"F" + repr(value).encode()
        else:
            part = b"B" + bytes(value)
        h.update(struct.pack(">I", len(part)))
        h.update(part)
    return h.digest()


class Shown(enum.StrEnum):
    DELIVERED = "delivered"


class Count(enum.IntEnum):
    THREE = 3


def value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            "",
            "x" * rng.randrange(9),
            "陳大文\ud800",  # a lone surrogate, as surrogatepass keeps it
            rng.randrange(-(10**20), 10**20),
            0,
            True,
            False,
            rng.random(),
            -0.0,
            float("inf"),
            rng.randbytes(rng.randrange(40)),
            bytearray(b"ab"),
            memoryview(b"cd"),
            Shown.DELIVERED,
            Count.THREE,
        ]
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_digest_is_the_defined_one(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1000):
        values = [value(rng) for _ in range(rng.randrange(12))]
        assert _digest(b"tongban/shown/1", values) == defined(b"tongban/shown/1", values)


def test_a_row_as_the_journal_keeps_it() -> None:
    row = ["01JEXAMPLE0000000000000000", "delivered", 1, None, b"\x01" * 16, b"\x01" * 28, None]
    assert _digest(b"tongban/shown/1", row) == defined(b"tongban/shown/1", row)
    assert _digest(b"tongban/shown/1", row) != _digest(b"tongban/shown/1", [*row[:2], 2, *row[3:]])
