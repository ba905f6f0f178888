"""Date reading without strptime for the usual zero-padded spelling: the same answers as strptime."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.mapping.transforms.base import TransformError
from federation.mapping.transforms.dates import DATE_FORMATS, date_reader

FORMS = sorted(name for name, pattern in DATE_FORMATS.items() if pattern is not None)


def strptime_answer(src: str, text: str) -> date | None:
    """What strptime alone makes of ``text`` in the form ``src`` (None: not a date)."""
    pattern = DATE_FORMATS[src]
    assert pattern is not None
    try:
        return datetime.strptime(text, pattern).date()
    except ValueError:
        return None


def reader_answer(src: str, text: str) -> date | None:
    try:
        return date_reader(src)(text)
    except TransformError:
        return None


@pytest.mark.parametrize("src", FORMS)
@given(
    year=st.integers(0, 10_000),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
)
def test_padded_dates_read_as_strptime_reads_them(
    src: str, year: int, month: int, day: int
) -> None:
    """Every zero-padded spelling, valid or not (month 13, day 0, 30 February), reads as strptime."""
    pattern = DATE_FORMATS[src]
    assert pattern is not None
    text = pattern.replace("%Y", f"{year:04d}").replace("%m", f"{month:02d}")
    text = text.replace("%d", f"{day:02d}")
    assert reader_answer(src, text) == strptime_answer(src, text)


@pytest.mark.parametrize(
    ("src", "text", "expected"),
    [
        ("iso", "2025-02-28", date(2025, 2, 28)),
        ("iso", "2025-2-8", date(2025, 2, 8)),  # unpadded: strptime reads it, as before
        ("DD/MM/YYYY", "14/05/2025", date(2025, 5, 14)),
        # full-width digits are read as ASCII first (as ID numbers are); strptime alone says no
        ("YYYY年MM月DD日", "２０２５年０５月１４日", date(2025, 5, 14)),
        ("iso", "2025-02-30", None),
        ("YYYYMMDD", "20251301", None),
    ],
)
def test_other_spellings_still_read_by_strptime(src: str, text: str, expected: date | None) -> None:
    """Unpadded digits still go as strptime takes them, full-width ones as ASCII; impossible
    dates fail."""
    assert reader_answer(src, text) == expected
    halfwidth = text.translate({cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)})
    if src != "YYYYMMDD":  # that form also insists on eight ASCII digits, before any parsing
        assert strptime_answer(src, halfwidth) == expected
