"""Transform steps: every step with valid and invalid values and the exact message it reports.

Each test compiles a one-field mapping ``out: {from: x, transform: …}`` (line 3 unless a header adds
lines) into ``tmp_path/mappings/`` and maps ``{"x": value}`` through it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import ConfigError, MappingError, Problem
from federation.mapping import CompiledMapping, load_mapping

DISPLAY = "mappings/test.yaml"

Step = Callable[[Any], Any]
MakeStep = Callable[..., Step]
LoadMapping = Callable[[str], CompiledMapping]


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """A fresh ``mappings/`` directory with the code tables the tests look up."""
    root = tmp_path / "mappings"
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "sex.yaml").write_text(
        'table: 1\ndescription: GB/T 2261.1 → HK M/F\nvalues:\n  "1": M\n  "2": F\n',
        encoding="utf-8",
    )
    (root / "tables" / "cert.yaml").write_text(
        'table: 1\ndefault: OTHER\nvalues:\n  "111": ID\n  "414": PASSPORT\n  "516": HRP\n',
        encoding="utf-8",
    )
    return root


@pytest.fixture
def compile_mapping(mappings_dir: Path) -> LoadMapping:
    """A factory: dedented mapping text → CompiledMapping shown as mappings/test.yaml."""
    counter = iter(range(1_000_000))

    def run(text: str) -> CompiledMapping:
        file = mappings_dir / f"mapping-{next(counter)}.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_mapping(file, display=DISPLAY)

    return run


def one_field(steps: str, head: str = "") -> str:
    """A mapping whose only field is ``out: {from: x, transform: <steps>}``."""
    return f"mapping: 1\n{head}request:\n  out: {{from: x, transform: {steps}}}\n"


@pytest.fixture
def make_step(compile_mapping: LoadMapping) -> MakeStep:
    """A factory: transform YAML (and optional header lines) → value-in, value-out function."""

    def make(steps: str, head: str = "") -> Step:
        mapping = compile_mapping(one_field(steps, head))

        def run(value: Any) -> Any:
            return mapping.map_request({"x": value})["out"]

        return run

    return make


@pytest.fixture
def load_problems(compile_mapping: LoadMapping) -> Callable[[str], list[str]]:
    """A factory: mapping text → every load problem as ``file:line: path: message``."""

    def run(text: str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            compile_mapping(text)
        return [str(p) for p in info.value.problems]

    return run


def failure(step: Step, value: Any) -> str:
    """The one problem message mapping ``value`` reports (and that it names field x, line 3)."""
    with pytest.raises(MappingError) as info:
        step(value)
    [problem] = info.value.problems
    assert (problem.path, problem.file) == ("x", DISPLAY)
    return problem.message


# --- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ab", "ab"), (12, "12"), (1.5, "1.5"), (True, "true"), (False, "false")],
)
def test_string(make_step: MakeStep, value: Any, expected: str) -> None:
    """Numbers and booleans become text (booleans as JSON writes them)."""
    assert make_step("string")(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [([1], "cannot turn a list into text"), ({"a": 1}, "cannot turn an object into text")],
)
def test_string_refuses_structures(make_step: MakeStep, value: Any, message: str) -> None:
    """Lists and objects are not silently stringified."""
    assert failure(make_step("string"), value) == message


def test_string_after_decimal_and_date(make_step: MakeStep) -> None:
    """Decimals keep their places and dates become ISO text."""
    assert make_step("[{decimal: {places: 2}}, string]")("7.5") == "7.50"
    assert make_step("[{date: {from: DD/MM/YYYY, to: date}}, string]")("01/03/2024") == "2024-03-01"


@pytest.mark.parametrize(
    ("value", "expected"), [("42", 42), (" -7 ", -7), ("+3", 3), (5, 5), ("０１２", 12)]
)
def test_int(make_step: MakeStep, value: Any, expected: int) -> None:
    """Whole numbers as text (padded, signed, full-width digits) or numbers become ints."""
    assert make_step("int")(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "a boolean is not a whole number"),
        ("4.5", "'4.5' is not a whole number"),
        ("twelve", "'twelve' is not a whole number"),
        (4.5, "a number is not a whole number"),
        ([1], "a list is not a whole number"),
    ],
)
def test_int_refuses(make_step: MakeStep, value: Any, message: str) -> None:
    """Fractions, words, booleans and structures are not whole numbers."""
    assert failure(make_step("int"), value) == message


def test_int_after_decimal(make_step: MakeStep) -> None:
    """A whole Decimal converts; a fractional one does not."""
    step = make_step("[decimal, int]")
    assert step("3.00") == 3
    assert failure(step, "3.5") == "a number is not a whole number"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.30", Decimal("12.30")), (3, Decimal(3)), (1.1, Decimal("1.1")), (" 5 ", Decimal(5))],
)
def test_decimal(make_step: MakeStep, value: Any, expected: Decimal) -> None:
    """Text and numbers become exact Decimals (a float through its shortest text)."""
    result = make_step("decimal")(value)
    assert isinstance(result, Decimal)
    assert str(result) == str(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a number"),
        ("NaN", "'NaN' is not a finite number"),
        ("Infinity", "'Infinity' is not a finite number"),
        (True, "a boolean is not a number"),
        ([], "a list is not a number"),
    ],
)
def test_decimal_refuses(make_step: MakeStep, value: Any, message: str) -> None:
    """Words, NaN, infinities, booleans and structures are refused."""
    assert failure(make_step("decimal"), value) == message


def test_decimal_places(make_step: MakeStep) -> None:
    """``places`` pads to that many decimals and refuses more."""
    step = make_step("{decimal: {places: 2}}")
    assert str(step("12.3")) == "12.30"
    assert failure(step, "12.345") == "12.345 has more than 2 decimal places"


def test_decimal_places_on_a_huge_amount_is_a_mapping_error(make_step: MakeStep) -> None:
    """A number too long for 2 places is a field error, not a decimal.InvalidOperation crash."""
    huge = "1" + "0" * 29
    assert failure(make_step("{decimal: {places: 2}}"), huge) == f"{huge} has too many digits"


def test_int_with_thousands_of_digits_is_a_mapping_error(make_step: MakeStep) -> None:
    """A 5000-digit "number" is a field error, not a ValueError from Python's int-size limit."""
    assert failure(make_step("int"), "1" * 5000) == "too many digits for a whole number"


@pytest.mark.parametrize("value", [True, "true", "YES", "y", "1", 1, "是", " Yes "])
def test_bool_true(make_step: MakeStep, value: Any) -> None:
    """Every spelling of yes is True."""
    assert make_step("bool")(value) is True


@pytest.mark.parametrize("value", [False, "false", "No", "N", "0", 0, "否"])
def test_bool_false(make_step: MakeStep, value: Any) -> None:
    """Every spelling of no is False."""
    assert make_step("bool")(value) is False


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "'maybe' is not yes/no (true/false, 1/0, Y/N, 是/否)"),
        (2, "2 is not yes/no (true/false, 1/0, Y/N, 是/否)"),
        ([], "[] is not yes/no (true/false, 1/0, Y/N, 是/否)"),
    ],
)
def test_bool_refuses(make_step: MakeStep, value: Any, message: str) -> None:
    """Anything else is refused, listing the accepted spellings."""
    assert failure(make_step("bool"), value) == message


# --- dates and times -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "value", "dst", "expected"),
    [
        ("iso", "2024-03-01", "DD/MM/YYYY", "01/03/2024"),
        ("YYYY-MM-DD", "2024-03-01", "YYYYMMDD", "20240301"),
        ("YYYYMMDD", "20240301", "iso", "2024-03-01"),
        ("YYYYMMDD", 20240301, "iso", "2024-03-01"),
        ("DD/MM/YYYY", "29/02/2024", "YYYY/MM/DD", "2024/02/29"),
        ("YYYY/MM/DD", "2024/03/01", "YYYY年MM月DD日", "2024年03月01日"),
        ("YYYY年MM月DD日", "2024年03月01日", "DD/MM/YYYY", "01/03/2024"),
        ("iso", " 2024-03-01 ", "iso", "2024-03-01"),
    ],
)
def test_date_between_formats(
    make_step: MakeStep, src: str, value: Any, dst: str, expected: str
) -> None:
    """Dates convert between every supported written form."""
    assert make_step(f"{{date: {{from: '{src}', to: '{dst}'}}}}")(value) == expected


@pytest.mark.parametrize("src", ["iso", "YYYYMMDD", "DD/MM/YYYY"])
def test_date_to_a_date_value(make_step: MakeStep, src: str) -> None:
    """``to: date`` gives a date object (for SOAP xs:date), whatever the source form."""
    text = {"iso": "1978-04-16", "YYYYMMDD": "19780416", "DD/MM/YYYY": "16/04/1978"}[src]
    assert make_step(f"{{date: {{from: '{src}', to: date}}}}")(text) == date(1978, 4, 16)


@pytest.mark.parametrize(
    ("src", "value", "message"),
    [
        ("iso", "2024-02-30", "text shaped 9999-99-99 is not a date in the form iso (no such day)"),
        ("iso", "01/03/2024", "text shaped 99/99/9999 is not a date in the form iso"),
        ("DD/MM/YYYY", "2024-03-01", "text shaped 9999-99-99 is not a date in the form DD/MM/YYYY"),
        (
            "DD/MM/YYYY",
            "29/02/2023",
            "text shaped 99/99/9999 is not a date in the form DD/MM/YYYY (no such day)",
        ),
        ("YYYYMMDD", "2024-03-01", "text shaped 9999-99-99 is not a date in the form YYYYMMDD"),
        (
            "YYYY年MM月DD日",
            "2024年3月1号",
            "text shaped 9999年9月9A is not a date in the form YYYY年MM月DD日",
        ),
        ("iso", "", "empty text is not a date in the form iso"),
        ("iso", ["2024-03-01"], "a date needs text, got a list"),
        ("iso", True, "a date needs text, got a boolean"),
    ],
)
def test_date_refuses(make_step: MakeStep, src: str, value: Any, message: str) -> None:
    """Impossible dates, other forms and non-text are refused naming the expected form and the
    shape of what came instead (never the value: a date of birth is personal)."""
    assert failure(make_step(f"{{date: {{from: '{src}', to: iso}}}}"), value) == message


@pytest.mark.parametrize("value", ["2024111", "202411", "2024031"])
def test_compact_date_needs_all_eight_digits(make_step: MakeStep, value: str) -> None:
    """``2024111`` could be 1 Nov or 11 Jan: a YYYYMMDD date with fewer digits is refused."""
    step = make_step("{date: {from: YYYYMMDD, to: iso}}")
    assert (
        failure(step, value) == f"text shaped {'9' * len(value)} is not a date in the form YYYYMMDD"
    )


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        (
            "{from: 'YYYY-MM-DD HH:mm:ss', to: iso, zone: Asia/Shanghai, to_zone: Asia/Hong_Kong}",
            "2024-03-01 09:30:00",
            "2024-03-01T09:30:00+08:00",
        ),
        ("{from: iso, to: iso}", "2024-03-01T09:30", "2024-03-01T09:30:00+08:00"),
        (
            "{from: iso, to: 'YYYY-MM-DD HH:mm:ss', to_zone: Asia/Macau}",
            "2024-03-01T01:30:00+00:00",
            "2024-03-01 09:30:00",
        ),
        (
            "{from: iso, to: iso, to_zone: Asia/Hong_Kong}",
            "2024-03-01T20:00:00Z",
            "2024-03-02T04:00:00+08:00",
        ),
        ("{from: YYYYMMDDHHmmss, to: 'DD/MM/YYYY HH:mm'}", "20240301093000", "01/03/2024 09:30"),
        (
            "{from: 'DD/MM/YYYY HH:mm', to: iso, zone: Asia/Hong_Kong, to_zone: UTC}",
            "01/03/2024 09:30",
            "2024-03-01T01:30:00+00:00",
        ),
        (
            "{from: 'DD/MM/YYYY HH:mm:ss', to: YYYYMMDDHHmmss}",
            "01/03/2024 09:30:15",
            "20240301093015",
        ),
    ],
)
def test_datetime(make_step: MakeStep, args: str, value: str, expected: str) -> None:
    """Naive times are read in ``zone`` (Asia/Shanghai by default) and written in ``to_zone``."""
    assert make_step(f"{{datetime: {args}}}")(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2024-13-01 00:00:00",
            "text shaped 9999-99-99 99:99:99 is not a date-time in the form YYYY-MM-DD HH:mm:ss "
            "(no such day or time)",
        ),
        ("2024-03-01", "text shaped 9999-99-99 is not a date-time in the form YYYY-MM-DD HH:mm:ss"),
        (20240301, "a number shaped 99999999 is not a date-time in the form YYYY-MM-DD HH:mm:ss"),
        ({}, "a date-time needs text, got an object"),
    ],
)
def test_datetime_refuses(make_step: MakeStep, value: Any, message: str) -> None:
    """Times not in the ``from`` form are refused naming it."""
    step = make_step("{datetime: {from: 'YYYY-MM-DD HH:mm:ss', to: iso}}")
    assert failure(step, value) == message


def test_compact_datetime_needs_all_fourteen_digits(make_step: MakeStep) -> None:
    """``2024030193000`` (13 digits) is refused rather than guessed as 09:30:00."""
    step = make_step("{datetime: {from: YYYYMMDDHHmmss, to: iso}}")
    assert failure(step, "2024030193000") == (
        "text shaped 9999999999999 is not a date-time in the form YYYYMMDDHHmmss"
    )


def test_datetime_out_of_range_is_a_mapping_error(make_step: MakeStep) -> None:
    """A time that cannot be moved into the target zone is a field error, not an OverflowError."""
    step = make_step("{datetime: {from: iso, to: iso, to_zone: Asia/Hong_Kong}}")
    value = "9999-12-31T23:59:59-23:59"
    assert failure(step, value) == "text shaped 9999-99-99T99:99:99-99:99 is out of range"


# --- epoch numbers and the other date-time shapes of partner interface documents ------------------

DATE_FORMS = "DD/MM/YYYY, YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日, epoch_ms, epoch_s, iso"
DATETIME_FORMS = (
    "DD/MM/YYYY, DD/MM/YYYY HH:mm, DD/MM/YYYY HH:mm:ss, YYYY-MM-DD, YYYY-MM-DD HH:mm, "
    "YYYY-MM-DD HH:mm:ss, YYYY/MM/DD HH:mm:ss, YYYYMMDD, YYYYMMDDHHmmss, epoch_ms, epoch_s, iso"
)


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ("{to: epoch_ms}", "2024-03-01T09:30:00+08:00", 1709256600000),
        ("{from: iso, to: epoch_s}", "2024-03-01T01:30:00Z", 1709256600),
        ("{from: iso, to: epoch_s}", "2024-03-01T09:30:00", 1709256600),
        ("{from: iso, to: epoch_ms}", "2024-03-01T09:30:00.250+08:00", 1709256600250),
        ("{from: YYYYMMDDHHmmss, to: epoch_ms}", "20240301093000", 1709256600000),
        ("{from: 'YYYY-MM-DD HH:mm:ss', to: epoch_s}", "2024-03-01 09:30:00", 1709256600),
        (
            "{from: 'DD/MM/YYYY HH:mm', to: epoch_s, zone: Asia/Hong_Kong}",
            "01/03/2024 09:30",
            1709256600,
        ),
        ("{from: 'DD/MM/YYYY HH:mm', to: epoch_s, zone: UTC}", "01/03/2024 01:30", 1709256600),
        ("{from: YYYYMMDD, to: epoch_s}", "20240301", 1709222400),
        ("{from: epoch_ms, to: epoch_s}", 1709256600999, 1709256600),
        ("{from: epoch_s, to: epoch_ms}", -1, -1000),
    ],
)
def test_datetime_to_epoch(make_step: MakeStep, args: str, value: Any, expected: int) -> None:
    """Written times become whole epoch seconds or milliseconds (as JSON integers, never text);
    a time without an offset is read in ``zone``, Asia/Shanghai unless the step names one."""
    out = make_step(f"{{datetime: {args}}}")(value)
    assert (out, type(out)) == (expected, int)


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ("{from: epoch_s, to: 'YYYY-MM-DD HH:mm:ss'}", "1709256600", "2024-03-01 09:30:00"),
        ("{from: epoch_s, to: 'YYYY-MM-DD HH:mm:ss'}", 1709256600, "2024-03-01 09:30:00"),
        ("{from: epoch_s, to: 'YYYY-MM-DD HH:mm:ss'}", " 1709256600 ", "2024-03-01 09:30:00"),
        (
            "{from: epoch_s, to: 'YYYY-MM-DD HH:mm:ss'}",
            Decimal("1709256600"),
            "2024-03-01 09:30:00",
        ),
        ("{from: epoch_ms}", 1709256600000, "2024-03-01T09:30:00+08:00"),
        ("{from: epoch_ms}", "1709256600123", "2024-03-01T09:30:00.123+08:00"),
        ("{from: epoch_ms, zone: Asia/Hong_Kong}", 1709256600000, "2024-03-01T09:30:00+08:00"),
        ("{from: epoch_ms, zone: UTC}", 1709256600000, "2024-03-01T01:30:00+00:00"),
        (
            "{from: epoch_ms, to: 'DD/MM/YYYY HH:mm', zone: Asia/Macau}",
            1709256600000,
            "01/03/2024 09:30",
        ),
        ("{from: epoch_s, to: YYYYMMDDHHmmss}", 1709256615, "20240301093015"),
        ("{from: epoch_s, to: YYYYMMDD}", 1709222399, "20240229"),
        ("{from: epoch_s, to: YYYYMMDD, zone: UTC}", 1709222399, "20240229"),
        ("{from: epoch_s, to: YYYYMMDD}", 1709222400, "20240301"),
        ("{from: epoch_s, to: DD/MM/YYYY, zone: UTC}", 1709222400, "29/02/2024"),
        ("{from: epoch_s, to: YYYY-MM-DD}", 1709222400, "2024-03-01"),
    ],
)
def test_datetime_from_epoch(make_step: MakeStep, args: str, value: Any, expected: str) -> None:
    """Epoch numbers (or their digits as text) are written in the zone's wall-clock time, ISO with
    the zone's offset; the day a moment falls on depends on the zone."""
    assert make_step(f"{{datetime: {args}}}")(value) == expected


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ("{from: 'YYYY-MM-DD HH:mm', to: iso}", "2024-03-01 09:30", "2024-03-01T09:30:00+08:00"),
        (
            "{from: 'YYYY/MM/DD HH:mm:ss', to: iso}",
            "2024/03/01 09:30:05",
            "2024-03-01T09:30:05+08:00",
        ),
        (
            "{from: YYYYMMDD, to: iso, zone: Asia/Hong_Kong}",
            "20240301",
            "2024-03-01T00:00:00+08:00",
        ),
        ("{from: DD/MM/YYYY, to: 'YYYY-MM-DD HH:mm'}", "01/03/2024", "2024-03-01 00:00"),
        ("{from: iso, to: YYYYMMDD, to_zone: Asia/Macau}", "2024-03-01T20:00:00Z", "20240302"),
        (
            "{from: iso, to: iso}",
            "2024-03-01T09:30:00.000001+08:00",
            "2024-03-01T09:30:00.000001+08:00",
        ),
    ],
)
def test_datetime_other_shapes(make_step: MakeStep, args: str, value: str, expected: str) -> None:
    """Minutes-only and slash-separated times and date-only forms convert like the others."""
    assert make_step(f"{{datetime: {args}}}")(value) == expected


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ("{from: epoch_ms, zone: Asia/Hong_Kong}", 1709222400000, "2024-03-01"),
        ("{from: epoch_ms, zone: UTC}", 1709222400000, "2024-02-29"),
        ("{from: epoch_ms, to: DD/MM/YYYY}", "1709222400000", "01/03/2024"),
        ("{from: epoch_s, to: date}", 1709222400, date(2024, 3, 1)),
        ("{from: iso, to: epoch_ms}", "2025-03-10", 1741536000000),
        ("{from: DD/MM/YYYY, to: epoch_s, zone: Asia/Macau}", "01/03/2024", 1709222400),
        ("{to: epoch_s, zone: UTC}", "2024-03-01", 1709251200),
        ("{from: YYYYMMDD, to: epoch_ms}", 20240301, 1709222400000),
    ],
)
def test_date_and_epoch(make_step: MakeStep, args: str, value: Any, expected: Any) -> None:
    """An epoch number is the day it falls on in ``zone``; a date is the moment it starts there."""
    assert make_step(f"{{date: {args}}}")(value) == expected


@pytest.mark.parametrize(
    ("step", "value", "expected"),
    [
        # 2^31 seconds: where a signed 32-bit time_t ends
        (
            "{datetime: {from: epoch_s, to: iso, zone: Asia/Macau}}",
            2**31,
            "2038-01-19T11:14:08+08:00",
        ),
        ("{datetime: {from: iso, to: epoch_ms}}", "2100-01-01T00:00:00+08:00", 4102416000000),
        ("{date: {from: iso, to: epoch_s}}", "1950-01-01", -631180800),
        ("{date: {from: epoch_s}}", -631180800, "1950-01-01"),
        ("{date: {from: epoch_ms, to: YYYYMMDD}}", -62135596800000, "00010101"),
        (
            "{datetime: {from: epoch_s, to: 'YYYY-MM-DD HH:mm:ss', zone: UTC}}",
            -62135596800,
            "0001-01-01 00:00:00",
        ),
        ("{date: {from: iso, to: DD/MM/YYYY}}", "0999-12-31", "31/12/0999"),
    ],
)
def test_far_past_and_after_2038(make_step: MakeStep, step: str, value: Any, expected: Any) -> None:
    """Dates before 1970 give negative epochs; 2038 and later are ordinary; years stay 4 digits."""
    assert make_step(step)(value) == expected


@pytest.mark.parametrize(
    ("zone", "day", "epoch_ms"),
    [
        ("Asia/Hong_Kong", "1975-06-18", 172249200000),  # HK summer time, +09:00
        ("Asia/Shanghai", "1988-05-01", 578415600000),  # mainland summer time, +09:00
        ("Asia/Shanghai", "1990-11-08", 657993600000),
    ],
)
def test_date_of_birth_through_epoch_keeps_the_day(
    make_step: MakeStep, zone: str, day: str, epoch_ms: int
) -> None:
    """A birth date sent as the epoch of its local midnight comes back as the same day, also in
    years when the zone kept summer time (why steps name zones, not +08:00)."""
    out = make_step(f"{{date: {{to: epoch_ms, zone: {zone}}}}}")(day)
    assert out == epoch_ms
    assert make_step(f"{{date: {{from: epoch_ms, zone: {zone}}}}}")(out) == day


@pytest.mark.parametrize(
    ("args", "value", "message"),
    [
        (
            "{from: epoch_s}",
            "12.5",
            "text shaped 99.9 is not a whole number of seconds (form epoch_s)",
        ),
        (
            "{from: epoch_ms}",
            "2024-03-01",
            "text shaped 9999-99-99 is not a whole number of milliseconds (form epoch_ms)",
        ),
        (
            "{from: epoch_ms}",
            True,
            "a boolean is not a whole number of milliseconds (form epoch_ms)",
        ),
        (
            "{from: epoch_ms}",
            Decimal("1.5"),
            "a number shaped 9.9 is not a whole number of milliseconds (form epoch_ms)",
        ),
        ("{from: epoch_ms}", ["1"], "a list is not a whole number of milliseconds (form epoch_ms)"),
        (
            "{from: epoch_ms}",
            "",
            "empty text is not a whole number of milliseconds (form epoch_ms)",
        ),
        (
            "{from: epoch_ms}",
            "１７０９２５６６００",
            "text shaped 9999999999 is not a whole number of milliseconds (form epoch_ms)",
        ),
        (
            "{from: epoch_s}",
            1709256600123,
            "a number shaped 9999999999999 is out of range (milliseconds given as epoch_s?)",
        ),
        (
            "{from: epoch_ms}",
            "99999999999999999999",
            "text shaped 99999999999999999999 is out of range",
        ),
        ("{from: epoch_ms}", Decimal("1E+30"), "a number shaped 9A+99 is out of range"),
        (
            "{from: iso, to: epoch_ms}",
            "1 March 2024",
            "text shaped 9 AAAAA 9999 is not a date-time in the form iso",
        ),
    ],
)
def test_epoch_refuses(make_step: MakeStep, args: str, value: Any, message: str) -> None:
    """Fractions, dates, booleans and numbers beyond year 9999 are refused, by their shape."""
    assert failure(make_step(f"{{datetime: {args}}}"), value) == message


@pytest.mark.parametrize(
    "step",
    [
        "{date: {from: DD/MM/YYYY, to: iso}}",
        "{date: {from: epoch_ms}}",
        "{datetime: {from: 'DD/MM/YYYY HH:mm', to: epoch_s}}",
        "{datetime: {from: epoch_s}}",
    ],
)
def test_date_errors_never_echo_the_value(make_step: MakeStep, step: str) -> None:
    """A refused date of birth is described by its shape: none of its digits reach the message."""
    message = failure(make_step(step), "16/04/1978 MR CHAN")
    assert "1978" not in message and "16" not in message and "CHAN" not in message


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            "{datetime: {from: iso, to: epoch_us}}",
            f"request.out.transform.datetime.to: 'epoch_us' is not one of: {DATETIME_FORMS}",
        ),
        (
            "{date: {from: epoch, to: iso}}",
            f"request.out.transform.date.from: 'epoch' is not one of: {DATE_FORMS}",
        ),
        (
            "{date: {from: epoch_ms, zone: Asia/Beijing}}",
            "request.out.transform.date.zone: 'Asia/Beijing' is not a time zone name "
            "(e.g. Asia/Hong_Kong)",
        ),
        (
            "{datetime: {from: epoch_ms, to_zone: GMT+8}}",
            "request.out.transform.datetime.to_zone: 'GMT+8' is not a time zone name "
            "(e.g. Asia/Hong_Kong)",
        ),
        (
            "{date: {from: DD/MM/YYYY, to: iso, zone: Asia/Hong_Kong}}",
            "request.out.transform.date.zone: unknown key; allowed here: from, to",
        ),
        ("{datetime: {to: iso}}", "request.out.transform.datetime: missing required key 'from'"),
    ],
)
def test_epoch_arguments_are_checked_at_load(
    load_problems: Callable[[str], list[str]], steps: str, problem: str
) -> None:
    """Unknown forms and zones stop the mapping loading, at file:line; a date step takes a zone
    only beside an epoch form, and only beside one may the other form be left out (it means iso)."""
    assert load_problems(one_field(steps)) == [f"{DISPLAY}:3: {problem}"]


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("upper", "chan, tai man", "CHAN, TAI MAN"),
        ("lower", "CHAN@Example.HK", "chan@example.hk"),
        ("trim", "  A123456(3)\u3000", "A123456(3)"),
        ("upper", 12, "12"),
    ],
)
def test_case_and_trim(make_step: MakeStep, name: str, value: Any, expected: str) -> None:
    """upper, lower and trim (ideographic space included) work on text and numbers."""
    assert make_step(name)(value) == expected


@pytest.mark.parametrize("name", ["upper", "lower", "trim"])
def test_case_and_trim_refuse_structures(make_step: MakeStep, name: str) -> None:
    """A list is not text."""
    assert failure(make_step(name), ["a"]) == f"{name} needs text, got a list"


def test_split(make_step: MakeStep) -> None:
    """split gives the trimmed parts, or one of them by index (negative counts from the end)."""
    assert make_step("{split: ','}")("a, b ,c") == ["a", "b", "c"]
    assert make_step("{split: {separator: ',', index: 1}}")("a, b ,c") == "b"
    assert make_step("{split: {separator: '/', index: -1}}")("1/234567/8") == "8"


def test_split_refuses(make_step: MakeStep) -> None:
    """A missing part and a non-text value are reported."""
    step = make_step("{split: {separator: ',', index: 3}}")
    assert failure(step, "a,b") == "has 2 part(s) separated by ',', no part 3"
    assert failure(step, ["a"]) == "split needs text, got a list"


def test_split_on_a_space(make_step: MakeStep) -> None:
    """The commonest separator, a single space, is accepted ("CHAN Tai Man" → parts)."""
    assert make_step("{split: {separator: ' ', index: 0}}")("CHAN Tai Man") == "CHAN"


def test_join(make_step: MakeStep) -> None:
    """join writes a list's items as text, skipping nulls; without a separator it glues them."""
    assert make_step("{join: '; '}")(["a", None, 3]) == "a; 3"
    assert make_step("join")(["H", "12345678"]) == "H12345678"


def test_join_with_a_space(make_step: MakeStep) -> None:
    """Joining with a single space is accepted."""
    assert make_step("{join: ' '}")(["Tai", "Man"]) == "Tai Man"


def test_join_refuses(make_step: MakeStep) -> None:
    """A non-list, or a list holding an object, is reported."""
    step = make_step("{join: ','}")
    assert failure(step, [{"a": 1}]) == "join needs text, got an object"
    assert failure(step, 5) == "join needs a list, got a number"


def test_join_refuses_text_saying_text(make_step: MakeStep) -> None:
    """A plain string is described as text, like everywhere else, not by its Python type."""
    assert failure(make_step("{join: ','}"), "abc") == "join needs a list, got text"


# --- code tables ---------------------------------------------------------------------------------

TABLES = "tables: {sex: tables/sex.yaml, cert: tables/cert.yaml}\n"


@pytest.mark.parametrize(("value", "expected"), [("1", "M"), (2, "F")])
def test_table_lookup(make_step: MakeStep, value: Any, expected: str) -> None:
    """Codes are compared as text, so the number 2 finds "2"."""
    assert make_step("{table: sex}", TABLES)(value) == expected


def test_table_unknown_value_names_table_and_file(make_step: MakeStep) -> None:
    """A code the table does not list, without any default, is an error naming table and file."""
    step = make_step("{table: sex}", TABLES)
    assert failure(step, "9") == "'9' is not in code table sex (mappings/tables/sex.yaml)"
    assert failure(step, True) == "table sex needs text, got a boolean"


def test_table_default_and_step_default(make_step: MakeStep) -> None:
    """The table's default answers unknown codes; a step default overrides it."""
    assert make_step("{table: cert}", TABLES)("553") == "OTHER"
    assert make_step("{table: {name: cert, default: '999'}}", TABLES)("553") == "999"
    assert make_step("{table: {name: sex, default: U}}", TABLES)("0") == "U"
    assert make_step("{table: {name: cert, default: '999'}}", TABLES)("516") == "HRP"


def test_two_tables_in_a_row(make_step: MakeStep, mappings_dir: Path) -> None:
    """Steps may chain lookups: local code → GB code → partner code."""
    (mappings_dir / "tables" / "local.yaml").write_text(
        "table: 1\nvalues: {男: '1', 女: '2'}\n", encoding="utf-8"
    )
    head = "tables: {local: tables/local.yaml, sex: tables/sex.yaml}\n"
    assert make_step("[{table: local}, {table: sex}]", head)("女") == "F"


def test_table_keys_keep_leading_zeros(make_step: MakeStep, mappings_dir: Path) -> None:
    """An unquoted code ``01`` in a table is the text "01", not the number 1."""
    (mappings_dir / "tables" / "doc.yaml").write_text(
        "table: 1\nvalues:\n  01: RESIDENT_ID\n  02: PASSPORT\n", encoding="utf-8"
    )
    step = make_step("{table: doc}", "tables: {doc: tables/doc.yaml}\n")
    assert step("01") == "RESIDENT_ID"


# --- identity numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("mainland_id", "11010519491231002x", "11010519491231002X"),
        ("{mainland_id: region}", "510104199307070153", "510104"),
        ("{mainland_id: birth_date}", "350203199208200046", "1992-08-20"),
        ("{mainland_id: {part: sex}}", "430104198803150115", "male"),
        ("{mainland_id: sex}", "460106200302020281", "female"),
        ("hkid", "A1234563", "A123456(3)"),
        ("hkid", "ab987654(3)", "AB987654(3)"),
        ("hkid", "Ａ１２３４５６（３）", "A123456(3)"),
        ("{hkid: number}", "K802133(3)", "K802133"),
        ("{hkid: check}", "G123456(A)", "A"),
        ("macau_bir", "1/234567/8", "1234567(8)"),
        ("{macau_bir: number}", "1234567(8)", "1234567"),
        ("{macau_bir: check}", "51234568", "8"),
        ("home_return_permit", "h12345678", "H12345678"),
        ("{home_return_permit: holder_key}", "H1234567800", "H12345678"),
        ("{home_return_permit: renewal}", "H1234567803", "03"),
        ("uscc", "91440101ma9y7q2b6p", "91440101MA9Y7Q2B6P"),
        ("{uscc: authority}", "91110000600037341L", "9"),
        ("{uscc: entity_type}", "91110000600037341L", "1"),
        ("{uscc: region}", "91440101MA9Y7Q2B6P", "440101"),
        ("{uscc: org_code}", "91110000600037341L", "600037341"),
        ("hk_brn", "12345678", "12345678"),
        ("{hk_brn: kind}", "C0001234", "local_company"),
        ("{hk_brn: number}", "F12", "12"),
    ],
)
def test_id_checks_normalise_and_split(
    make_step: MakeStep, name: str, value: str, expected: str
) -> None:
    """Valid numbers come back normalised, or as the part asked for."""
    assert make_step(name)(value) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "mainland_id",
            "510104199307070154",
            "not a valid mainland id: check character is '4' but the number says '3'",
        ),
        (
            "mainland_id",
            "51010419930707015",
            "not a valid mainland id: ID number must have 18 characters, not 17",
        ),
        (
            "mainland_id",
            "510104199302300153",
            "not a valid mainland id: birth date 19930230 is not a date",
        ),
        (
            "mainland_id",
            "990104199307070153",
            "not a valid mainland id: province code 99 (characters 1-2) does not exist",
        ),
        ("mainland_id", ["x"], "mainland_id needs text, got a list"),
        ("hkid", "A123456(4)", "not a valid hkid: check character is '4' but the number says '3'"),
        (
            "hkid",
            "A12345(3)",
            "not a valid hkid: an HKID is 1-2 letters, 6 digits and a check character 0-9 or A, "
            "as A123456(3)",
        ),
        (
            "macau_bir",
            "2234567(8)",
            "not a valid macau bir: a Macau BIR is 1, 5 or 7, six digits and a check digit, "
            "as 1234567(8) or 1/234567/8",
        ),
        (
            "home_return_permit",
            "X12345678",
            "not a valid home return permit: a 回鄉證 number is H or M and 8 digits, or 10 digits "
            "in the older form that ends in a renewal count",
        ),
        (
            "uscc",
            "91110000600037341A",
            "not a valid uscc: check character is 'A' but the code says 'L'",
        ),
        (
            "uscc",
            "91110000600037341O",
            "not a valid uscc: character 18 of the USCC is 'O', not one of "
            "0123456789ABCDEFGHJKLMNPQRTUWXY",
        ),
        (
            "hk_brn",
            "1234567",
            "not a valid hk brn: an HK BR number is 8 digits, or C or F followed by the company "
            "number",
        ),
    ],
)
def test_id_checks_refuse(make_step: MakeStep, name: str, value: Any, message: str) -> None:
    """Invalid numbers are reported with what failed, never echoing the whole number."""
    assert failure(make_step(name), value) == message


def test_permit_before_region_existed_is_a_warning(compile_mapping: LoadMapping) -> None:
    """810000197804160214 maps, with a warning located at the field's line."""
    m = compile_mapping(one_field("mainland_id"))
    mapped, warnings = m.map_request_checked({"x": "810000197804160214"})
    assert mapped == {"out": "810000197804160214"}
    assert warnings == [
        Problem(
            message="region 810000 did not exist in 1978 (residence permit issued from "
            "2018-09-01: expected)",
            path="x",
            file=DISPLAY,
            line=3,
            severity="warning",
        )
    ]
    assert str(warnings[0]).startswith(f"{DISPLAY}:3: warning: x: region 810000")


def test_macau_permit_warning_inside_each(compile_mapping: LoadMapping) -> None:
    """A warning inside an array names the item; map_request alone just maps."""
    m = compile_mapping(
        "mapping: 1\nrequest:\n  people:\n    each: family\n    fields:\n"
        "      id: {from: id, transform: mainland_id}\n"
    )
    app = {"family": [{"id": "510104199307070153"}, {"id": "820000198209300127"}]}
    mapped, warnings = m.map_request_checked(app)
    assert [(w.path, w.line, w.severity) for w in warnings] == [("family[1].id", 6, "warning")]
    assert warnings[0].message.startswith("region 820000 did not exist in 1982")
    assert m.map_request(app) == mapped


def test_no_warning_for_ordinary_ids(compile_mapping: LoadMapping) -> None:
    """A permit holder born after 1997 and mainland IDs raise no warning."""
    m = compile_mapping(one_field("mainland_id"))
    for number in ("810000199807010018", "510104199307070153"):
        assert m.map_request_checked({"x": number})[1] == []


ALLOW = "allow: {uscc: [91350211m0000xuf46]}\n"


def test_uscc_allow_list_passes_with_a_warning(compile_mapping: LoadMapping) -> None:
    """The Xiamen pilot code failing its checksum is accepted when listed, with a warning."""
    m = compile_mapping(one_field("uscc", ALLOW))
    mapped, warnings = m.map_request_checked({"x": "91350211M0000XUF46"})
    assert mapped == {"out": "91350211M0000XUF46"}
    assert [str(w) for w in warnings] == [
        f"{DISPLAY}:4: warning: x: accepted by allow-list although its check character "
        "should be 'R'"
    ]


def test_uscc_allow_list_covers_only_listed_codes(compile_mapping: LoadMapping) -> None:
    """Another failing code is still refused, and without the allow-list the pilot code is too."""
    listed = compile_mapping(one_field("uscc", ALLOW))
    with pytest.raises(MappingError, match="check character is '7' but the code says 'R'"):
        listed.map_request({"x": "91350211M0000XUF47"})
    unlisted = compile_mapping(one_field("uscc"))
    with pytest.raises(MappingError, match="check character is '6' but the code says 'R'"):
        unlisted.map_request({"x": "91350211M0000XUF46"})


# --- phone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ("{}", "138 0013 8000", "+8613800138000"),
        ("{region: CN}", "020-8888-8888", "+862088888888"),
        ("{region: CN}", 13800138000, "+8613800138000"),
        ("{region: HK}", "9123 4567", "+85291234567"),
        ("{region: HK}", "2123-4567", "+85221234567"),
        ("{region: MO}", "6612 3456", "+85366123456"),
        ("{region: MO}", "2888 1234", "+85328881234"),
        ("{region: CN}", "+852 9123 4567", "+85291234567"),
        ("{region: HK, format: international}", "91234567", "+852 9123 4567"),
        ("{region: MO, format: national}", "+853 6612 3456", "6612 3456"),
        ("{region: HK, format: international}", "2180 9000 ext. 321", "+852 2180 9000 ext. 321"),
        ("{region: HK, format: national}", "2180 9000 #321", "2180 9000 ext. 321"),
    ],
)
def test_phone(make_step: MakeStep, args: str, value: Any, expected: str) -> None:
    """Mainland, HK and Macau numbers become E.164; an explicit +852 wins over the region."""
    assert make_step(f"{{phone: {args}}}")(value) == expected


@pytest.mark.parametrize(
    ("args", "value", "message"),
    [
        ("{region: HK}", "1234 5678", "not a valid phone number for +852"),
        ("{region: MO}", "1234 5678", "not a valid phone number for +853"),
        ("{region: CN}", "12345", "not a valid phone number for +86"),
        ("{region: CN}", "call me", "not a phone number"),
        ("{region: CN}", ["13800138000"], "phone needs text, got a list"),
    ],
)
def test_phone_refuses(make_step: MakeStep, args: str, value: Any, message: str) -> None:
    """Numbers that do not exist in the region, and non-numbers, are refused."""
    assert failure(make_step(f"{{phone: {args}}}"), value) == message


@pytest.mark.parametrize("args", ["{region: HK}", "{region: HK, format: e164}"])
@pytest.mark.parametrize("value", ["2180 9000 ext. 321", "+852 2180 9000 #321", "21809000 x321"])
def test_phone_with_an_extension_is_refused_in_e164(
    make_step: MakeStep, args: str, value: str
) -> None:
    """E.164 cannot carry an extension: refused, not sent as the switchboard's number."""
    assert failure(make_step(f"{{phone: {args}}}"), value) == (
        "the phone number has an extension, which E.164 cannot carry"
        " (send it without, or map it with format: international or national)"
    )


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12800.00", "12800.00"),
        ("12.5", "12.50"),
        (100, "100.00"),
        ({"amount": "1000", "currency": "HKD"}, "1000.00"),
        ({"amount": "99.9", "currency": "MOP"}, "99.90"),
        ({"amount": 250, "currency": "CNY"}, "250.00"),
    ],
)
def test_money(make_step: MakeStep, value: Any, expected: str) -> None:
    """Amounts become Decimals with two places (text, whole numbers, or {amount, currency})."""
    result = make_step("{money: {currencies: [HKD, MOP, CNY]}}")(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_money_in_a_currency_without_minor_units(make_step: MakeStep) -> None:
    """TWD has no minor units: whole amounts only."""
    step = make_step("money")
    assert str(step({"amount": "1500", "currency": "TWD"})) == "1500"
    assert failure(step, {"amount": "1500.5", "currency": "TWD"}) == (
        "1500.5 has more than 0 decimal places"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.345", "12.345 has more than 2 decimal places"),
        (12.5, "money must not travel as a binary float; send it as text"),
        (
            {"amount": 0.1, "currency": "HKD"},
            "money must not travel as a binary float; send it as text",
        ),
        ({"amount": "5", "currency": "USD"}, "currency 'USD' is not one of HKD, MOP, CNY"),
        ({"amount": "5"}, "currency None is not one of HKD, MOP, CNY"),
        ("twelve", "'twelve' is not a number"),
        (True, "a boolean is not a number"),
    ],
)
def test_money_refuses(make_step: MakeStep, value: Any, message: str) -> None:
    """Too many decimals, floats, other currencies and non-numbers are refused."""
    assert failure(make_step("{money: {currencies: [HKD, MOP, CNY]}}"), value) == message


def test_money_too_large_is_a_mapping_error(make_step: MakeStep) -> None:
    """An amount with more digits than Decimal can carry is a field error, not a crash."""
    huge = "1" + "0" * 29
    assert failure(make_step("money"), huge) == f"{huge} has too many digits"


# --- scripts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "value", "expected"),
    [
        ("s2hk", "源代码", "源代碼"),
        ("s2hk", "线路为", "線路為"),
        ("s2t", "线路为", "線路爲"),
        ("t2s", "軟件代碼", "软件代码"),
        ("hk2s", "綫路為", "线路为"),
    ],
)
def test_opencc_on_free_text(make_step: MakeStep, config: str, value: str, expected: str) -> None:
    """Free text converts between scripts, with HK variants for s2hk (綫 vs 線, 為 vs 爲)."""
    assert make_step(f"{{opencc: {config}}}")(value) == expected


def test_opencc_never_rewrites_vocabulary(make_step: MakeStep) -> None:
    """The allowed configs change characters only: 代码 stays 代碼, never Taiwan's 程式碼."""
    assert make_step("{opencc: s2hk}")("代码") == "代碼"


def test_opencc_refuses_structures(make_step: MakeStep) -> None:
    """A list is not free text."""
    assert failure(make_step("{opencc: s2hk}"), ["代码"]) == "opencc needs text, got a list"


@pytest.mark.parametrize("config", ["s2twp", "tw2sp", "s2tw", "hk2t"])
def test_opencc_other_configs_are_refused(
    load_problems: Callable[[str], list[str]], config: str
) -> None:
    """Only s2hk, s2t, t2s and hk2s load; the phrase-rewriting …p configs never do."""
    assert load_problems(one_field(f"{{opencc: {config}}}")) == [
        f"{DISPLAY}:3: request.out.transform.opencc: {config!r} is not one of: hk2s, s2hk, s2t, t2s"
    ]


NAME_REFUSED = (
    "a person's name is never script-converted (OpenCC turns 余丽萍 into 餘麗萍): "
    "carry it exactly as on the document"
)


@pytest.mark.parametrize(
    ("names", "rule"),
    [
        ("[applicant.name]", "{from: applicant.name, transform: {opencc: s2hk}}"),
        ("[applicant.name]", "{from: $.applicant.name, transform: [trim, {opencc: s2hk}]}"),
        ("['$.applicant.name']", "{from: applicant.name, transform: {opencc: s2t}}"),
        ("['docs[].holder']", "{from: 'docs[1].holder', transform: {opencc: s2hk}}"),
        (
            "[applicant.name]",
            "{first: [applicant.alias, applicant.name], transform: {opencc: s2hk}}",
        ),
        ("[applicant.name]", "{format: 'Mr {applicant.name}', transform: {opencc: t2s}}"),
    ],
)
def test_opencc_on_a_name_is_refused_at_load(
    load_problems: Callable[[str], list[str]], names: str, rule: str
) -> None:
    """A script conversion of any source listed under ``names:`` stops the mapping loading."""
    text = f"mapping: 1\nnames: {names}\nrequest:\n  out: {rule}\n"
    [problem] = load_problems(text)
    assert problem.startswith(f"{DISPLAY}:4: request.out.transform")
    assert problem.endswith(NAME_REFUSED)


def test_a_name_maps_unchanged_beside_converted_text(compile_mapping: LoadMapping) -> None:
    """余丽萍 stays 余丽萍; the free-text field beside it is converted."""
    m = compile_mapping(
        "mapping: 1\nnames: [applicant.name]\nrequest:\n"
        "  name: applicant.name\n"
        "  reason_hk: {from: reason, transform: {opencc: s2hk}}\n"
        "  reason: reason\n"
    )
    assert m.map_request({"applicant": {"name": "余丽萍"}, "reason": "提取住房公积金用于还贷"}) == {
        "name": "余丽萍",
        "reason_hk": "提取住房公積金用於還貸",
        "reason": "提取住房公积金用于还贷",
    }


def test_opencc_on_a_name_inside_each_is_refused(
    load_problems: Callable[[str], list[str]],
) -> None:
    """``names: [family[].name]`` protects the name field of every item mapped by ``each``."""
    text = (
        "mapping: 1\nnames: ['family[].name']\nrequest:\n  members:\n    each: family\n"
        "    fields:\n      name: {from: name, transform: {opencc: s2hk}}\n"
    )
    assert load_problems(text) == [
        f"{DISPLAY}:7: request.members.fields.name.transform.opencc: {NAME_REFUSED}"
    ]


def test_opencc_on_a_switch_case_taking_a_name_is_refused(
    load_problems: Callable[[str], list[str]],
) -> None:
    """A switch case ``{from: applicant.name}`` carries a name too, so it cannot be converted."""
    text = (
        "mapping: 1\nnames: [applicant.name]\nrequest:\n"
        "  out: {switch: kind, cases: {person: {from: applicant.name}}, transform: {opencc: s2hk}}\n"
    )
    assert load_problems(text) == [f"{DISPLAY}:4: request.out.transform.opencc: {NAME_REFUSED}"]
