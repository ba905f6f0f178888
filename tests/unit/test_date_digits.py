"""Dates in a partner's form: full-width digits are read as identity numbers are; other scripts'
digits are refused for what they are, never as a day that does not exist."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from federation.mapping import load_mapping
from federation.mapping.transforms import TransformError
from federation.mapping.transforms.dates import date_reader


@pytest.mark.parametrize(
    ("form", "text", "day"),
    [
        ("DD/MM/YYYY", "０１/０２/２０２４", date(2024, 2, 1)),
        ("DD/MM/YYYY", "０１／０２／２０２４", date(2024, 2, 1)),  # full-width slashes too
        ("iso", "１９９２-０８-２０", date(1992, 8, 20)),
        ("YYYYMMDD", "１９９２０８２０", date(1992, 8, 20)),
        ("YYYY年MM月DD日", "２０２４年０３月０１日", date(2024, 3, 1)),
        ("DD/MM/YYYY", "\u3000０１/０２/２０２４\u3000", date(2024, 2, 1)),  # ideographic spaces
    ],
)
def test_fullwidth_digits_are_read_as_ascii(form: str, text: str, day: date) -> None:
    """As an input method types them: the same day as in ASCII digits."""
    assert date_reader(form)(text) == day


@pytest.mark.parametrize(
    ("form", "text", "shape"),
    [
        ("DD/MM/YYYY", "٠١/٠٢/٢٠٢٤", "99/99/9999"),  # Arabic-Indic
        ("iso", "२०२४-०१-०१", "9999-99-99"),  # Devanagari
        ("YYYYMMDD", "١٩٩٢٠٨٢٠", "99999999"),
    ],
)
def test_other_scripts_digits_are_refused_for_what_they_are(
    form: str, text: str, shape: str
) -> None:
    """The reason is the digits, not "no such day"; the value itself is never quoted."""
    with pytest.raises(TransformError) as caught:
        date_reader(form)(text)
    assert (
        str(caught.value)
        == f"text shaped {shape} is not in the form {form}: its digits are not 0-9"
    )


def test_a_fullwidth_impossible_day_is_still_no_such_day() -> None:
    """Read as ASCII, 31/02 is a shape of the form and a day that does not exist."""
    with pytest.raises(TransformError, match=r"\(no such day\)"):
        date_reader("DD/MM/YYYY")("３１/０２/２０２４")


def test_the_datetime_step_reads_fullwidth_digits_too(tmp_path: Path) -> None:
    """One rule for both readers: a full-width moment is the same moment."""
    file = tmp_path / "m.yaml"
    file.write_text(
        "mapping: 1\nrequest:\n"
        '  at: {from: at, transform: {datetime: {from: "YYYY-MM-DD HH:mm:ss", to: iso}}}\n',
        encoding="utf-8",
    )
    mapping = load_mapping(file, display="mappings/m.yaml")
    assert mapping.map_request({"at": "２０２４-０３-０１ ０９:３０:００"}) == {
        "at": "2024-03-01T09:30:00+08:00"
    }
