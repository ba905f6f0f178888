"""xs:decimal replies read as written when Decimal would give them back unchanged: the answer is
the same as ``str(Decimal(...))`` for every spelling, plain or not (random and chosen cases)."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest

from adapters.xsdtypes import BadValue, builtin

READ = builtin("decimal").read  # type: ignore[union-attr]
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def reference(text: str) -> str | None:
    """The reading before the plain fast path: strip, the lexical form, then Decimal's spelling."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    return str(Decimal(text))


def read(text: str) -> str | None:
    try:
        return READ(text)
    except BadValue:
        return None


CHOSEN = [
    "0",
    "-0",
    "0.0",
    "0.000000",
    "0.0000000",
    "0.000001",
    "0.0000001",
    "0.00000010",
    "5794.00",
    "-5794.00",
    "+5794.00",
    "007",
    "0.5",
    ".5",
    "5.",
    "-.5",
    "1" + "0" * 40,
    "1." + "0" * 40,
    " 12.5",
    "12.5 ",
    "١٢",
    "١٢.٥",
    "12\n",
    "1e5",
    "",
    "-",
    ".",
    "00.1",
    "-00",
    "10.010",
]


@pytest.mark.parametrize("text", CHOSEN)
def test_chosen_spellings_read_as_decimal_spells_them(text: str) -> None:
    assert read(text) == reference(text)


def test_random_spellings_read_as_decimal_spells_them() -> None:
    rng = random.Random(19)
    alphabet = "0000123456789..-+ \t٣"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        assert read(text) == reference(text), text
