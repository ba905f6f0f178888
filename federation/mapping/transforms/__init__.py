"""Transforms: the steps a value can pass through on its way to the target field.

Each step is written in a mapping as a name (``upper``) or a name with arguments
(``{date: {from: iso, to: DD/MM/YYYY}}``). At load time a factory checks the arguments (every mistake
becomes a Problem with file:line) and returns a plain function ``step(value, warnings) -> value``;
at mapping time a step raises :class:`TransformError` with a precise message, or appends to
``warnings`` for values that are odd but acceptable.

``base`` holds the registry and ``build_steps``; the families register their steps on import:
``scalars`` (string, int, decimal, bool, money), ``dates`` (date, datetime), ``text`` (upper, lower,
trim, split, join, opencc), ``strings`` (pad, substring, replace, regex_replace, halfwidth,
fullwidth, max_length), ``arrays`` (count, pick, multiply, divide) and ``codes`` (table, identity
numbers, phone).
"""

from __future__ import annotations

from federation.mapping.transforms import arrays, codes, crypto, dates, scalars, strings, text
from federation.mapping.transforms.base import (
    REGISTRY,
    Context,
    Factory,
    Step,
    TransformError,
    build_steps,
    step,
)
from federation.mapping.transforms.dates import DATE_FORMATS, DATETIME_FORMATS
from federation.mapping.transforms.text import OPENCC_CONFIGS

__all__ = [
    "DATETIME_FORMATS",
    "DATE_FORMATS",
    "OPENCC_CONFIGS",
    "REGISTRY",
    "Context",
    "Factory",
    "Step",
    "TransformError",
    "arrays",
    "build_steps",
    "codes",
    "crypto",
    "dates",
    "scalars",
    "step",
    "strings",
    "text",
]
