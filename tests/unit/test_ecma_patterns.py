"""JSON Schema ``pattern`` is read as ECMA-262 means it, not as Python's ``re`` would read it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federation import contracts
from federation.api import conform, quickcheck
from federation.mapping.schema import load_schema

DATE = r"^\d{4}-\d{2}-\d{2}$"


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (DATE, "1992-08-20", True),
        (DATE, "１９９２-０８-２０", False),  # full-width digits: \d to re, not to ECMA-262
        (DATE, "١٩٩٢-٠٨-٢٠", False),  # Arabic-Indic digits
        (DATE, "1992-08-20\n", False),  # re's $ also matches before a final newline
        (r"^\w+$", "abc_1", True),
        (r"^\w+$", "陳大文", False),
        (r"^[\w.]+$", "a.b", True),
        (r"^[\w.]+$", "é.b", False),
        (r"^[^\d]+$", "٣", True),  # ECMA's \D: anything but 0-9
        (r"^[^@\s]+@[^@\s]+$", "a@b", True),
        (r"^[^@\s]+@[^@\s]+$", "a\u3000b@c", False),  # \s stays Unicode, as in ECMA-262
        (r"\bx", "éx", True),  # é is no ECMA word character: a boundary before x
        (r"^\+[1-9]\d{6,14}$", "+８５２91234567", False),
        (r"^a\$b$", "a$b", True),  # an escaped $ stays a dollar sign
        (r"^[$]$", "$", True),  # so does one in a class
    ],
)
def test_ecma_regex_reads_patterns_as_json_schema_means(
    pattern: str, text: str, matches: bool
) -> None:
    """\\d, \\w and \\b are ASCII; $ is the end of the text; the rest is as re reads it."""
    assert (contracts.ecma_regex(pattern).search(text) is not None) is matches


def test_patterns_are_compiled_once() -> None:
    """The same pattern gives the same compiled object (no compile per submission)."""
    assert contracts.ecma_regex(DATE) is contracts.ecma_regex(DATE)


def application(birth_date: str) -> dict[str, Any]:
    return {"applicant": {"name": "林晓雯", "birth_date": birth_date}}


@pytest.mark.parametrize("birth_date", ["１９９２-０８-２０", "1992-08-20\n", "١٩٩٢-٠٨-٢٠"])
def test_the_local_format_refuses_a_date_outside_ascii_naming_the_field(birth_date: str) -> None:
    """Intake's validator and its quick check both say no, at /application/applicant/birth_date."""
    assert not quickcheck.conforms(application(birth_date))
    errors = conform.format_errors(application(birth_date))
    assert [e["pointer"] for e in errors] == ["/application/applicant/birth_date"]
    assert errors[0]["message"] == f"must match {DATE}"


def test_the_local_format_still_takes_an_ascii_date() -> None:
    """The quick check and the validator agree on the usual case."""
    assert quickcheck.conforms(application("1992-08-20"))
    assert conform.format_errors(application("1992-08-20")) == []


def test_a_partners_schema_reads_its_patterns_as_ecma(tmp_path: Any) -> None:
    """A mapped request is checked against the partner's JSON Schema with ECMA-262 patterns."""
    file = tmp_path / "schema.json"
    schema = {
        "type": "object",
        "properties": {"zjhm": {"type": "string", "pattern": r"^\d{17}[\dX]$"}},
    }
    file.write_text(json.dumps(schema), encoding="utf-8")
    target = load_schema(file, display="partners/schemas/x.json")
    assert target.problems({"zjhm": "350203199208200046"}) == []
    [problem] = target.problems({"zjhm": "３５０２０３１９９２０８２０００４６"})
    assert problem.path == "zjhm"
