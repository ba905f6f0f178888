"""The ``checks:`` section: cross-field rules that refuse (or warn about) a contradictory application."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import ConfigError, MappingError, Problem
from federation.mapping import CompiledMapping, load_mapping

HEAD = """\
mapping: 1
request:
  id: {from: applicant.id_number}
checks:
"""


def compile_checks(tmp_path: Path, checks: str) -> CompiledMapping:
    """A mapping whose ``checks:`` section is ``checks`` (indented under the key)."""
    file = tmp_path / "mappings" / "checked.yaml"
    file.parent.mkdir(exist_ok=True)
    file.write_text(HEAD + textwrap.indent(textwrap.dedent(checks), "  "), encoding="utf-8")
    return load_mapping(file, display="mappings/checked.yaml")


def refused(mapping: CompiledMapping, application: dict[str, Any]) -> list[Problem]:
    """The problems a refused application carries."""
    with pytest.raises(MappingError) as caught:
        mapping.map_request(application)
    return list(caught.value.problems)


def person(id_number: str = "350203199208200046", **more: Any) -> dict[str, Any]:
    """An applicant from Xiamen (domain case 3: a woman born 1992-08-20)."""
    return {"applicant": {"id_number": id_number, **more}}


SEX = """\
sex-matches-id:
  id_sex: {id: applicant.id_number, sex: applicant.gender}
  message:
    zh-Hans: 性别与身份证号码不符
    zh-Hant: 性別與身份證號碼不符
    en: the gender does not match the ID number
"""


def test_gender_against_the_sex_digit_refuses_at_the_gender_field(tmp_path: Path) -> None:
    """A male gender on a woman's ID is refused at applicant.gender with all three languages."""
    mapping = compile_checks(tmp_path, SEX)
    [problem] = refused(mapping, person(gender="1"))
    assert problem.path == "applicant.gender"
    assert problem.message == (
        "性别与身份证号码不符 / 性別與身份證號碼不符 / the gender does not match the ID number"
        " (check sex-matches-id)"
    )
    assert (problem.file, problem.line) == ("mappings/checked.yaml", 5)
    assert "350203" not in str(problem)


@pytest.mark.parametrize("gender", ["2", "F", "f", "女", "9", "0"])
def test_agreeing_or_unstated_genders_pass(tmp_path: Path, gender: str) -> None:
    """Female codes agree with an even sex digit; 0 and 9 (unknown, unspecified) are not compared."""
    mapping = compile_checks(tmp_path, SEX)
    assert mapping.map_request(person(gender=gender)) == {"id": "350203199208200046"}


def test_id_rules_skip_numbers_that_are_not_mainland_ids(tmp_path: Path) -> None:
    """An HKID in the ID field, or no gender at all, gives the rule nothing to compare."""
    mapping = compile_checks(tmp_path, SEX)
    assert mapping.map_request(person("A123456(3)", gender="2")) == {"id": "A123456(3)"}
    assert mapping.map_request(person()) == {"id": "350203199208200046"}


def test_own_sex_codes(tmp_path: Path) -> None:
    """``male:``/``female:`` name a partner's own codes; others are then not compared."""
    mapping = compile_checks(
        tmp_path,
        """\
        sex:
          id_sex: {id: applicant.id_number, sex: applicant.xb, male: [A], female: [B]}
        """,
    )
    [problem] = refused(mapping, person(xb="A"))
    assert "sex digit" in problem.message
    assert mapping.map_request(person(xb="1"))  # "1" is not one of this rule's codes


def test_birth_date_against_the_id_warns_when_told(tmp_path: Path) -> None:
    """severity: warning keeps the application and reports the mismatch as a warning."""
    mapping = compile_checks(
        tmp_path,
        """\
        born:
          id_birth_date: {id: applicant.id_number, date: applicant.born, form: DD/MM/YYYY}
          severity: warning
        """,
    )
    _, warnings = mapping.map_request_checked(person(born="21/08/1992"))
    [warning] = warnings
    assert (warning.severity, warning.path) == ("warning", "applicant.born")
    assert "does not match the ID number" in warning.message
    assert mapping.map_request_checked(person(born="20/08/1992"))[1] == []


def test_unreadable_date_is_named_by_its_shape(tmp_path: Path) -> None:
    """A birth date not in the rule's form is refused, described by shape, never echoed."""
    mapping = compile_checks(
        tmp_path, "born:\n  id_birth_date: {id: applicant.id_number, date: applicant.born}\n"
    )
    [problem] = refused(mapping, person(born="20/08/1992"))
    assert problem.path == "applicant.born"
    assert "shaped 99/99/9999" in problem.message and "1992" not in problem.message


def test_date_order(tmp_path: Path) -> None:
    """An end before its start is refused at the end; the same day only with same_day: true."""
    strict = compile_checks(
        tmp_path, "period:\n  date_order: {start: permit.valid_from, end: permit.valid_to}\n"
    )
    before = {"permit": {"valid_from": "2026-03-01", "valid_to": "2025-03-01"}}
    same = {"permit": {"valid_from": "2026-03-01", "valid_to": "2026-03-01"}}
    [problem] = refused(strict, before)
    assert (problem.path, problem.message) == (
        "permit.valid_to",
        "the end date is before the start date (check period)",
    )
    assert "is the start date" in refused(strict, same)[0].message
    lenient = compile_checks(
        tmp_path,
        "period:\n  date_order: {start: permit.valid_from, end: permit.valid_to, same_day: true}\n",
    )
    assert lenient.map_request(same) == {}


def test_sum_of_lines_in_exact_decimals(tmp_path: Path) -> None:
    """Line amounts (text, whole numbers, {amount, currency}) add up exactly, or the total is refused."""
    mapping = compile_checks(
        tmp_path,
        """\
        fees:
          sum: {lines: "fees[].amount", total: total}
          message: {en: fees do not add up, zh-Hans: 费用合计不符}
        """,
    )
    lines = [{"amount": "0.10"}, {"amount": "0.20"}, {"amount": {"amount": "1", "currency": "CNY"}}]
    assert mapping.map_request({"fees": lines, "total": "1.3"}) == {}  # 0.1 + 0.2 is exactly 0.3
    [problem] = refused(mapping, {"fees": lines, "total": "1.31"})
    assert (problem.path, problem.message) == (
        "total",
        "fees do not add up / 费用合计不符 (check fees)",
    )
    [bad] = refused(mapping, {"fees": [{"amount": "12,5"}], "total": "12.5"})
    assert bad.path == "fees[0].amount" and "not an amount" in bad.message


def test_each_runs_per_item_with_item_paths(tmp_path: Path) -> None:
    """``each:`` applies the rule to every item, naming the item that contradicts itself."""
    mapping = compile_checks(
        tmp_path,
        """\
        members:
          each: family
          id_sex: {id: id_number, sex: gender}
        """,
    )
    family = [
        {"id_number": "430104198803150115", "gender": "1"},
        {"id_number": "460106200302020281", "gender": "1"},
    ]
    [problem] = refused(mapping, {"family": family})
    assert problem.path == "family[1].gender"


def test_checks_and_field_errors_are_reported_together(tmp_path: Path) -> None:
    """A failing field and a failing check are both in one refusal."""
    file = tmp_path / "both.yaml"
    file.write_text(
        "mapping: 1\nrequest:\n  id: {from: applicant.id_number, transform: mainland_id}\n"
        "  x: {from: x, required: true}\nchecks:\n" + textwrap.indent(SEX, "  "),
        encoding="utf-8",
    )
    problems = refused(load_mapping(file), person(gender="M"))
    assert [p.path for p in problems] == ["x", "applicant.gender"]


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ("a:\n  id_sex: {id: x}\n", "checks.a.id_sex: missing required key 'sex'"),
        ("a:\n  message: hi\n", "checks.a: a check names exactly one rule"),
        ("a:\n  sum: {lines: x, total: y}\n", "checks.a.sum.lines: name one array"),
        ("a:\n  date_order: {start: a, end: b, form: MM/DD}\n", "'MM/DD' is not one of"),
        ("a:\n  id_sex: {id: x, sex: y}\n  severity: fatal\n", "checks.a.severity: 'fatal'"),
        ("a:\n  id_sex: {id: 'x[', sex: y}\n", "checks.a.id_sex.id: bad field path"),
    ],
)
def test_mistakes_are_reported_at_their_line(tmp_path: Path, checks: str, expected: str) -> None:
    """Every mistake in a check stops the mapping loading, at file:line and key path."""
    with pytest.raises(ConfigError) as caught:
        compile_checks(tmp_path, checks)
    text = str(caught.value)
    assert expected in text
    assert "mappings/checked.yaml:" in text


def test_each_reads_the_top_of_the_input_with_dollar(tmp_path: Path) -> None:
    """Inside ``each``, ``$.applied_on`` is the application's date, not the item's."""
    mapping = compile_checks(
        tmp_path,
        """\
        born-before-applying:
          each: family
          date_order: {start: born, end: $.applied_on}
          at: born
          message: a family member is born after the application date
        """,
    )
    family = [{"born": "1990-01-02", "applied_on": "1980-01-01"}, {"born": "2026-01-02"}]
    [problem] = refused(mapping, {"applied_on": "2025-04-03", "family": family})
    assert problem.path == "family[1].born"
    assert problem.message.startswith("a family member is born after")
