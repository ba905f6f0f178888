"""Golden examples beside mapping files (federation.mapping.examples)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import ConfigError
from federation.mapping import CompiledMapping, load_mapping
from federation.mapping.examples import (
    Example,
    check_example,
    diff_text,
    examples_dir,
    load_examples,
)

MAPPING = """\
mapping: 1
request:
  application_type: {value: VLR}
  vehicle.registration_mark: {from: vehicle.registration_mark, required: true}
  owner.hkid: {from: applicant.hkid, required: true}
  licence.period_months: {from: licence.period_months, default: 12}
"""

APPLICATION: dict[str, Any] = {
    "vehicle": {"registration_mark": "AB1234"},
    "applicant": {"hkid": "A1234563"},
}
MAPPED: dict[str, Any] = {
    "application_type": "VLR",
    "vehicle": {"registration_mark": "AB1234"},
    "owner": {"hkid": "A1234563"},
    "licence": {"period_months": 12},
}

WriteExample = Callable[[str, Any], Path]


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    """A fresh mapping file at mappings/hk/td.yaml (no examples folder yet)."""
    file = tmp_path / "mappings" / "hk" / "td.yaml"
    file.parent.mkdir(parents=True)
    file.write_text(MAPPING, encoding="utf-8")
    return file


@pytest.fixture
def mapping(mapping_file: Path) -> CompiledMapping:
    """The compiled mapping of :func:`mapping_file`."""
    return load_mapping(mapping_file)


@pytest.fixture
def write_example(mapping_file: Path) -> WriteExample:
    """A factory writing one example file (a JSON value, or raw text) beside the mapping."""

    def write(name: str, content: Any) -> Path:
        folder = examples_dir(mapping_file)
        folder.mkdir(exist_ok=True)
        file = folder / name
        if isinstance(content, str):
            file.write_text(content, encoding="utf-8")
        else:
            file.write_bytes(orjson.dumps(content))
        return file

    return write


def example(**fields: Any) -> Example:
    """An in-memory example for check_example, expecting MAPPED unless told otherwise."""
    values: dict[str, Any] = {
        "file": Path("x.json"),
        "description": "",
        "demo": False,
        "source": None,
        "application": APPLICATION,
        "expected": MAPPED,
        "expected_errors": None,
    }
    values.update(fields)
    return Example(**values)


# --- load_examples -------------------------------------------------------------------------------


def test_examples_folder_is_named_after_the_mapping() -> None:
    """td.yaml keeps its examples in td.examples beside it."""
    assert examples_dir(Path("mappings/hk/td.yaml")) == Path("mappings/hk/td.examples")


def test_no_examples_folder_means_no_examples(mapping_file: Path) -> None:
    """A mapping without an examples folder simply has no examples."""
    assert load_examples(mapping_file) == []


def test_examples_load_sorted_by_file_name(mapping_file: Path, write_example: WriteExample) -> None:
    """Good examples load in file-name order with their fields."""
    write_example(
        "20-missing.json",
        {
            "description": "no registration mark",
            "application": {"applicant": {"hkid": "A1234563"}},
            "expected_errors": [{"path": "vehicle.registration_mark", "contains": "required"}],
        },
    )
    write_example(
        "10-ok.json",
        {
            "description": "renewal for 12 months",
            "demo": True,
            "source": "gd-window",
            "application": APPLICATION,
            "expected": MAPPED,
        },
    )
    write_example("notes.txt", "not an example")
    first, second = load_examples(mapping_file)
    assert (first.file.name, second.file.name) == ("10-ok.json", "20-missing.json")
    assert (first.description, first.demo, first.source) == (
        "renewal for 12 months",
        True,
        "gd-window",
    )
    assert first.expected == MAPPED
    assert first.expected_errors is None
    assert (second.demo, second.source, second.expected) == (False, None, None)
    assert second.expected_errors == [{"path": "vehicle.registration_mark", "contains": "required"}]


def test_every_bad_example_is_reported(mapping_file: Path, write_example: WriteExample) -> None:
    """Unreadable JSON, a missing application and expected/expected_errors misuse all come back."""
    write_example("a.json", "{not json")
    write_example("b.json", {"expected": MAPPED})
    write_example("c.json", {"application": APPLICATION})
    write_example("d.json", {"application": APPLICATION, "expected": MAPPED, "expected_errors": []})
    write_example("e.json", ["application"])
    write_example("f.json", {"application": APPLICATION, "expected": MAPPED})
    with pytest.raises(ConfigError) as info:
        load_examples(mapping_file)
    found = {Path(p.file or "").name: p.message for p in info.value.problems}
    assert set(found) == {"a.json", "b.json", "c.json", "d.json", "e.json"}
    assert found["a.json"].startswith("not a readable JSON example:")
    assert found["b.json"] == "an example needs an 'application' object"
    assert found["c.json"] == "give exactly one of 'expected' or 'expected_errors'"
    assert found["d.json"] == "give exactly one of 'expected' or 'expected_errors'"
    assert found["e.json"] == "an example needs an 'application' object"


def test_malformed_expected_errors_is_reported_at_load(
    mapping_file: Path, write_example: WriteExample
) -> None:
    """expected_errors must be a list of {path, contains} objects, checked when loading."""
    write_example(
        "a.json",
        {"application": {}, "expected_errors": ["vehicle.registration_mark"]},
    )
    with pytest.raises(ConfigError):
        load_examples(mapping_file)


# --- check_example -------------------------------------------------------------------------------


def test_matching_example_passes(mapping: CompiledMapping) -> None:
    """An example whose expected request is exactly what the mapping makes has no differences."""
    assert check_example(mapping, example()) == []


def test_expected_is_compared_as_json(mapping: CompiledMapping) -> None:
    """Key order does not matter; the comparison is of JSON values."""
    reordered = {k: MAPPED[k] for k in reversed(list(MAPPED))}
    assert check_example(mapping, example(expected=reordered)) == []


def test_wrong_expected_shows_a_diff(mapping: CompiledMapping) -> None:
    """A mismatch is reported as a unified diff from expected to mapped."""
    wrong = {**MAPPED, "licence": {"period_months": 24}}
    (difference,) = check_example(mapping, example(expected=wrong))
    assert difference.startswith("--- expected\n+++ mapped\n")
    assert '-    "period_months": 24' in difference
    assert '+    "period_months": 12' in difference


def test_mapping_failure_when_success_was_expected(mapping: CompiledMapping) -> None:
    """An example expecting a request but failing to map lists each mapping problem."""
    assert check_example(mapping, example(application={"vehicle": {}})) == [
        f"mapping failed: {mapping.file}:4: vehicle.registration_mark: "
        "required, but missing (maps to vehicle.registration_mark)",
        f"mapping failed: {mapping.file}:5: applicant.hkid: "
        "required, but missing (maps to owner.hkid)",
    ]


def test_expected_errors_that_occur_pass(mapping: CompiledMapping) -> None:
    """Expected errors matched by path and message fragment leave nothing to report."""
    wanted = [
        {"path": "vehicle.registration_mark", "contains": "required"},
        {"path": "applicant.hkid"},
    ]
    ex = example(application={}, expected=None, expected_errors=wanted)
    assert check_example(mapping, ex) == []


def test_expected_errors_when_mapping_succeeds(mapping: CompiledMapping) -> None:
    """If errors were expected but the mapping succeeded, the example fails saying so."""
    wanted = [{"path": "applicant.hkid", "contains": "required"}]
    ex = example(expected=None, expected_errors=wanted)
    assert check_example(mapping, ex) == [
        "expected errors [{'path': 'applicant.hkid', 'contains': 'required'}], "
        "but the mapping succeeded"
    ]


def test_expected_error_not_raised_and_unexpected_error(mapping: CompiledMapping) -> None:
    """A missing expected error and an error nobody expected are both reported."""
    wanted = [{"path": "applicant.hkid", "contains": "invalid check digit"}]
    ex = example(application={"applicant": {}}, expected=None, expected_errors=wanted)
    assert check_example(mapping, ex) == [
        "no error at 'applicant.hkid' containing 'invalid check digit'",
        f"unexpected error: {mapping.file}:4: vehicle.registration_mark: "
        "required, but missing (maps to vehicle.registration_mark)",
    ]


def test_diff_text_of_equal_values_is_empty() -> None:
    """Equal values have no diff."""
    assert diff_text({"a": [1, 2]}, {"a": [1, 2]}) == ""


def test_diff_text_sorts_keys_and_shows_changed_lines() -> None:
    """The diff is of sorted, indented JSON, so only changed lines differ."""
    text = diff_text({"b": 1, "a": "甲"}, {"a": "甲", "b": 2})
    assert text.splitlines() == [
        "--- expected",
        "+++ mapped",
        "@@ -1,4 +1,4 @@",
        " {",
        '   "a": "甲",',
        '-  "b": 1',
        '+  "b": 2',
        " }",
    ]
