"""Field paths and the declarative mapping language (federation.domain.paths, .engine)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import ConfigError, MappingError
from federation.domain.paths import (
    MISSING,
    PathSyntaxError,
    format_segments,
    getter,
    parse_path,
)
from federation.mapping import CompiledMapping, load_mapping

DISPLAY = "mappings/hk/td.yaml"

WriteMapping = Callable[[str], Path]
LoadMapping = Callable[[str], CompiledMapping]
Problems = Callable[[str], list[str]]


@pytest.fixture
def write_mapping(tmp_path: Path) -> WriteMapping:
    """A factory writing dedented mapping text to a fresh file and returning its path."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        file = tmp_path / f"mapping-{next(counter)}.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return file

    return write


@pytest.fixture
def compile_mapping(write_mapping: WriteMapping) -> LoadMapping:
    """A factory: mapping text → CompiledMapping shown as mappings/hk/td.yaml."""

    def run(text: str) -> CompiledMapping:
        return load_mapping(write_mapping(text), display=DISPLAY)

    return run


@pytest.fixture
def problems(write_mapping: WriteMapping) -> Problems:
    """A factory: mapping text → every problem line of the ConfigError loading raises."""

    def run(text: str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load_mapping(write_mapping(text), display=DISPLAY)
        return [str(p) for p in info.value.problems]

    return run


def request_mapping(*rules: str) -> str:
    """A version-1 mapping whose request section holds ``rules`` from line 3 on."""
    return "mapping: 1\nrequest:\n" + "".join(f"  {rule}\n" for rule in rules)


# --- parse_path ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("name", ("name",)),
        ("applicant.name", ("applicant", "name")),
        ("applicant.documents[0].number", ("applicant", "documents", 0, "number")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        ("申请人.姓名", ("申请人", "姓名")),
        ("vehicle.registration-mark", ("vehicle", "registration-mark")),
        ("a[10].b_c", ("a", 10, "b_c")),
    ],
)
def test_parse_path_valid(text: str, parsed: tuple[str | int, ...]) -> None:
    """Dotted names and [n] indexes split into segments, and format back to the same text."""
    assert parse_path(text) == parsed
    assert format_segments(parsed) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a path must be non-empty text"),
        ("   ", "a path must be non-empty text"),
        (".name", "unexpected '.' at position 1 of '.name'"),
        ("applicant.", "'applicant.' ends with '.'"),
        ("applicant..name", "unexpected '.' at position 11 of 'applicant..name'"),
        ("[0]", "'[0]' starts with an index; name the field first"),
        ("[0].name", "'[0].name' starts with an index; name the field first"),
        ("docs[x]", "unexpected '[' at position 5 of 'docs[x]'"),
        ("docs[]", "unexpected '[' at position 5 of 'docs[]'"),
        ("docs[-1]", "unexpected '[' at position 5 of 'docs[-1]'"),
        ("docs[0", "unexpected '[' at position 5 of 'docs[0'"),
        ("docs]", "unexpected ']' at position 5 of 'docs]'"),
        ("docs[0]number", "unexpected 'n' at position 8 of 'docs[0]number'"),
        ("docs[0]..number", "unexpected '.' at position 9 of 'docs[0]..number'"),
        (" name", "blank or padded name in ' name'"),
        ("applicant. name", "blank or padded name in 'applicant. name'"),
        ("name ", "blank or padded name in 'name '"),
    ],
)
def test_parse_path_malformed(text: str, message: str) -> None:
    """Every kind of malformed path is refused with a message pointing at the problem."""
    with pytest.raises(PathSyntaxError) as info:
        parse_path(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text", ["docs.[0]", "docs.[0]number", "docs.[0][1]x"])
def test_parse_path_rejects_dot_before_index(text: str) -> None:
    """``docs.[0]`` is malformed: an index follows a name directly, not a dot."""
    with pytest.raises(PathSyntaxError, match=re.escape("unexpected '[' at position 6")):
        parse_path(text)


def test_parse_path_rejects_non_text() -> None:
    """A number where a path is expected is refused, not crashed on."""
    with pytest.raises(PathSyntaxError, match="non-empty text"):
        parse_path(5)  # type: ignore[arg-type]


# --- getter --------------------------------------------------------------------------------------

APPLICATION: dict[str, Any] = {
    "applicant": {
        "name": "CHAN Tai Man",
        "phone": None,
        "documents": [{"type": "hkid", "number": "A1234563"}, {"type": "permit"}],
    },
    "count": 0,
    "flags": [],
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("applicant.name", "CHAN Tai Man"),
        ("applicant.documents[0].number", "A1234563"),
        ("applicant.documents[1].type", "permit"),
        ("applicant.documents", APPLICATION["applicant"]["documents"]),
        ("count", 0),
        ("flags", []),
        ("applicant.phone", None),
    ],
)
def test_getter_finds_values(path: str, value: Any) -> None:
    """Nested objects and array items are reached; falsy values and explicit null come back as is."""
    assert getter(parse_path(path))(APPLICATION) == value


@pytest.mark.parametrize(
    "path",
    [
        "nobody",
        "applicant.email",
        "applicant.documents[2].number",
        "applicant.documents[1].number",
        "applicant.name.first",
        "applicant.documents.number",
        "applicant[0]",
        "applicant.phone.area",
        "count.value",
    ],
)
def test_getter_missing(path: str) -> None:
    """A path that leads nowhere gives MISSING, never an exception."""
    assert getter(parse_path(path))(APPLICATION) is MISSING


@pytest.mark.parametrize("data", [None, [], "text", 5])
def test_getter_on_non_object_input(data: Any) -> None:
    """Input that is not an object has no fields."""
    assert getter(("name",))(data) is MISSING
    assert getter(("a", "b"))(data) is MISSING


def test_missing_is_distinct_from_null() -> None:
    """MISSING is falsy and prints as MISSING, but is not None."""
    assert not MISSING
    assert MISSING is not None
    assert repr(MISSING) == "MISSING"


# --- the mapping language ------------------------------------------------------------------------

TD = """\
mapping: 1
partner: hk
service: TD-VL-RENEW
description: Vehicle licence renewal.
request:
  application_type: {value: VLR}
  vehicle.registration_mark: {from: vehicle.registration_mark, required: true}
  owner.name_en: {from: applicant.name_en, required: true}
  owner.hkid: {from: applicant.hkid, required: true}
  owner.document: applicant.documents[0].number
  owner.phone: {from: applicant.phone, default: ""}
  licence.period_months: {from: licence.period_months, default: 12}
  licence.note: licence.note
response:
  receipt_number: {from: ref_no, required: true}
  status: status
"""


def good_application(**changes: Any) -> dict[str, Any]:
    """A complete application; keyword arguments replace top-level parts."""
    app: dict[str, Any] = {
        "vehicle": {"registration_mark": "AB1234"},
        "applicant": {
            "name_en": "CHAN Tai Man",
            "hkid": "A1234563",
            "phone": "+852 5123 4567",
            "documents": [{"number": "H12345678"}],
        },
        "licence": {"period_months": 6},
    }
    app.update(changes)
    return app


def test_request_maps_copies_constants_and_nested_targets(compile_mapping: LoadMapping) -> None:
    """Copies, constants and defaults build nested target objects."""
    mapped = compile_mapping(TD).map_request(good_application())
    assert mapped == {
        "application_type": "VLR",
        "vehicle": {"registration_mark": "AB1234"},
        "owner": {
            "name_en": "CHAN Tai Man",
            "hkid": "A1234563",
            "document": "H12345678",
            "phone": "+852 5123 4567",
        },
        "licence": {"period_months": 6},
    }


def test_defaults_apply_when_missing_or_null(compile_mapping: LoadMapping) -> None:
    """A default fills a field that is absent or null in the application."""
    app = good_application(licence={"period_months": None})
    app["applicant"] = {**app["applicant"], "phone": None}
    del app["applicant"]["documents"]
    mapped = compile_mapping(TD).map_request(app)
    assert mapped["licence"] == {"period_months": 12}
    assert mapped["owner"]["phone"] == ""
    assert "document" not in mapped["owner"]  # optional and absent: left out


def test_optional_null_is_kept_as_null(compile_mapping: LoadMapping) -> None:
    """An optional field sent as null arrives as null; an absent one is left out."""
    mapped = compile_mapping(TD).map_request(
        good_application(licence={"period_months": 3, "note": None})
    )
    assert mapped["licence"] == {"period_months": 3, "note": None}


def test_falsy_values_are_copied_not_defaulted(compile_mapping: LoadMapping) -> None:
    """0, false and empty text are values, not missing fields."""
    m = compile_mapping(
        request_mapping("a: {from: x, default: 9}", "b: {from: y, required: true}", "c: z")
    )
    assert m.map_request({"x": 0, "y": False, "z": ""}) == {"a": 0, "b": False, "c": ""}


def test_constants_keep_their_type(compile_mapping: LoadMapping) -> None:
    """``value:`` constants may be numbers, booleans, null, lists and objects."""
    m = compile_mapping(
        request_mapping(
            "n: {value: 3}",
            "t: {value: true}",
            "z: {value: null}",
            "l: {value: [1, two]}",
            "o: {value: {k: v}}",
            "s: {value: NO}",
        )
    )
    assert m.map_request({}) == {
        "n": 3,
        "t": True,
        "z": None,
        "l": [1, "two"],
        "o": {"k": "v"},
        "s": "NO",
    }


def test_header_fields_are_exposed(compile_mapping: LoadMapping) -> None:
    """partner, service and description are read from the file."""
    m = compile_mapping(TD)
    assert (m.partner, m.service, m.description) == (
        "hk",
        "TD-VL-RENEW",
        "Vehicle licence renewal.",
    )
    assert m.file == DISPLAY


def test_response_section(compile_mapping: LoadMapping) -> None:
    """The response section maps a partner reply into our receipt."""
    m = compile_mapping(TD)
    assert m.map_response({"ref_no": "R-1", "status": "accepted", "extra": 1}) == {
        "receipt_number": "R-1",
        "status": "accepted",
    }


def test_without_response_section_map_response_is_none(compile_mapping: LoadMapping) -> None:
    """A mapping without response: gives no receipt."""
    assert compile_mapping(request_mapping("a: b")).map_response({"ref_no": "R-1"}) is None


def test_every_missing_required_field_is_reported(compile_mapping: LoadMapping) -> None:
    """Three missing required fields come back together with source path, target and line."""
    app = good_application(vehicle={})
    app["applicant"] = {"name_en": None}
    with pytest.raises(MappingError) as info:
        compile_mapping(TD).map_request(app)
    assert [str(p) for p in info.value.problems] == [
        f"{DISPLAY}:7: vehicle.registration_mark: "
        "required, but missing (maps to vehicle.registration_mark)",
        f"{DISPLAY}:8: applicant.name_en: required, but missing (maps to owner.name_en)",
        f"{DISPLAY}:9: applicant.hkid: required, but missing (maps to owner.hkid)",
    ]
    assert info.value.mapping == DISPLAY
    assert str(info.value).count("required, but missing") == 3


def test_missing_required_field_in_reply(compile_mapping: LoadMapping) -> None:
    """A reply without a required field is a MappingError naming it."""
    with pytest.raises(MappingError, match=r"td\.yaml:15: ref_no: required, but missing"):
        compile_mapping(TD).map_response({"status": "accepted"})


# --- load-time errors ----------------------------------------------------------------------------


def test_unknown_key_in_a_rule(problems: Problems) -> None:
    """A misspelt rule key is named with a hint."""
    assert problems(request_mapping("a: {from: x, requird: true}")) == [
        f"{DISPLAY}:3: request.a.requird: unknown key (did you mean 'required'?); "
        "allowed here: cases, concat, default, each, fields, first, format, from, otherwise, "
        "position, required, separator, switch, transform, value, when"
    ]


@pytest.mark.parametrize("rule", ["a: {from: x, value: 1}", "a: {}", "a: {default: 1}"])
def test_rule_needs_exactly_one_of_from_and_value(problems: Problems, rule: str) -> None:
    """Both or neither of from/value is an error at the rule's line."""
    [problem] = problems(request_mapping("ok: y", rule))
    assert problem.startswith(
        f"{DISPLAY}:4: request.a: give exactly one of 'from' (a field of the input), "
        "'value' (a constant), 'format', 'concat', 'first', 'switch', 'each' or 'position'"
    )


def test_required_with_default(problems: Problems) -> None:
    """A required field cannot also have a default."""
    assert problems(request_mapping("a: {from: x, required: true, default: 1}")) == [
        f"{DISPLAY}:3: request.a.default: a required field cannot also have a default"
    ]


def test_required_or_default_on_a_constant(problems: Problems) -> None:
    """required/default make no sense beside a constant value."""
    assert problems(request_mapping("a: {value: 1, required: true, default: 2}")) == [
        f"{DISPLAY}:3: request.a.required: 'required' applies to values taken from the input, "
        "not to a constant",
        f"{DISPLAY}:3: request.a.default: 'default' applies to values taken from the input, "
        "not to a constant",
    ]


def test_required_must_be_a_boolean(problems: Problems) -> None:
    """``required: yes`` is text under YAML 1.2 and is refused."""
    assert problems(request_mapping("a: {from: x, required: yes}")) == [
        f"{DISPLAY}:3: request.a.required: expected true or false, got text ('yes')"
    ]


def test_overlapping_targets(problems: Problems) -> None:
    """A target inside another target is refused, whichever comes first."""
    assert problems(request_mapping("owner: x", "owner.name: y", "fee.amount: z", "fee: w")) == [
        f"{DISPLAY}:4: request.owner.name: target 'owner.name' overlaps 'owner' (line 3)",
        f"{DISPLAY}:6: request.fee: target 'fee' overlaps 'fee.amount' (line 5)",
    ]


def test_targets_sharing_a_prefix_do_not_overlap(compile_mapping: LoadMapping) -> None:
    """``owner.name`` and ``owner.name_en`` are different fields."""
    m = compile_mapping(request_mapping("owner.name: x", "owner.name_en: y", "owner_id: z"))
    assert m.map_request({"x": 1, "y": 2, "z": 3}) == {
        "owner": {"name": 1, "name_en": 2},
        "owner_id": 3,
    }


def test_bad_target_paths(problems: Problems) -> None:
    """Malformed targets and targets with array indexes are refused."""
    assert problems(request_mapping("owner..name: x", "docs[0]: y")) == [
        f"{DISPLAY}:3: request.owner..name: bad target path: "
        "unexpected '.' at position 7 of 'owner..name'",
        f"{DISPLAY}:4: request.docs[0]: a target path names object fields only; map arrays "
        "with 'each'",
    ]


def test_bad_source_paths(problems: Problems) -> None:
    """Malformed source paths are refused at load time, in shorthand and long form."""
    assert problems(request_mapping("a: docs[", "b: {from: .x}")) == [
        f"{DISPLAY}:3: request.a.from: bad source path: unexpected '[' at position 5 of 'docs['",
        f"{DISPLAY}:4: request.b.from: bad source path: unexpected '.' at position 1 of '.x'",
    ]


def test_rule_must_be_text_or_mapping(problems: Problems) -> None:
    """A list where a rule is expected says what it got."""
    assert problems(request_mapping("a: [x]")) == [
        f"{DISPLAY}:3: request.a: expected a mapping of keys, got a list"
    ]


def test_unsupported_format_version(problems: Problems) -> None:
    """Only ``mapping: 1`` is understood."""
    assert problems("mapping: 2\nrequest:\n  a: b\n") == [
        f"{DISPLAY}:1: mapping: unsupported mapping format 2; expected 1"
    ]


def test_missing_format_version_is_reported_once(problems: Problems) -> None:
    """A file without ``mapping:`` gets one problem saying the key is missing."""
    assert problems("request:\n  a: b\n") == [f"{DISPLAY}:1: missing required key 'mapping'"]


def test_empty_and_malformed_sections(problems: Problems) -> None:
    """An empty request and a response that is not a mapping are both reported."""
    assert problems("mapping: 1\nrequest: {}\nresponse: [a]\n") == [
        f"{DISPLAY}:2: request: maps no field",
        f"{DISPLAY}:3: response: expected a mapping of keys, got a list",
    ]


def test_unknown_top_level_key(problems: Problems) -> None:
    """Top-level keys are checked like partners.yaml keys."""
    assert problems("mapping: 1\nparnter: hk\nrequest:\n  a: b\n") == [
        f"{DISPLAY}:2: parnter: unknown key (did you mean 'partner'?); "
        "allowed here: allow, checks, description, headers, mapping, names, partner, report, "
        "request, response, service, status, status_query, supplement, tables"
    ]


def test_several_load_errors_are_reported_together(problems: Problems) -> None:
    """Every mistake in a mapping file is listed in one ConfigError."""
    found = problems(
        "mapping: 2\n"
        "request:\n"
        "  a: {from: x, value: 1}\n"
        "  b: {from: y, required: true, default: 0}\n"
        "  c..d: z\n"
        "  e: {from: w, requird: true}\n"
        "response:\n"
        "  r: {from: '[0]'}\n"
    )
    assert [line.split(": ", 2)[0:2] for line in found] == [
        [f"{DISPLAY}:1", "mapping"],
        [f"{DISPLAY}:3", "request.a"],
        [f"{DISPLAY}:4", "request.b.default"],
        [f"{DISPLAY}:5", "request.c..d"],
        [f"{DISPLAY}:6", "request.e.requird"],
        [f"{DISPLAY}:8", "response.r.from"],
    ]


def test_yaml_syntax_error_in_mapping(problems: Problems) -> None:
    """Broken YAML in a mapping names the mapping file and line."""
    assert problems("mapping: 1\nrequest:\n  a: {from: x\n") == [
        f"{DISPLAY}:4: invalid YAML: expected ',' or '}}', but got '<stream end>'"
    ]


def test_duplicate_rule_is_refused(problems: Problems) -> None:
    """The same target written twice is a duplicate key, not a silent override."""
    assert problems(request_mapping("a: x", "a: y")) == [f"{DISPLAY}:4: request: duplicate key 'a'"]


def test_non_utf8_mapping(tmp_path: Path) -> None:
    """A mapping saved as GBK is refused at the line and column of its first byte that is not
    UTF-8."""
    file = tmp_path / "gbk.yaml"
    file.write_bytes("mapping: 1\nrequest:\n  姓名: applicant.name\n".encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_mapping(file, display=DISPLAY)
    assert str(info.value) == (
        f"{DISPLAY}:3: not UTF-8 text: byte 0xd0 at column 3; save the file as UTF-8"
    )


def test_missing_mapping_file(tmp_path: Path) -> None:
    """A mapping file that is not there is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError) as info:
        load_mapping(tmp_path / "absent.yaml", display=DISPLAY)
    assert str(info.value) == f"{DISPLAY}: cannot read mapping: No such file or directory"


# --- versions ------------------------------------------------------------------------------------


def test_version_is_a_content_hash(write_mapping: WriteMapping) -> None:
    """The version is sha256 of the file's bytes and is recorded under the display name."""
    m = load_mapping(write_mapping(TD), display=DISPLAY)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", m.version)
    assert dict(m.versions) == {DISPLAY: m.version}


def test_version_changes_with_the_file_only(write_mapping: WriteMapping) -> None:
    """Same bytes give the same version; any edit, even a comment, gives a new one."""
    first = load_mapping(write_mapping(TD)).version
    same = load_mapping(write_mapping(TD)).version
    edited = load_mapping(write_mapping(TD + "# reviewed\n")).version
    assert first == same
    assert edited != first


def test_version_follows_an_edit_in_place(write_mapping: WriteMapping) -> None:
    """Reloading a file after it is edited gives a different version."""
    file = write_mapping(TD)
    before = load_mapping(file).version
    file.write_text(TD.replace("default: 12", "default: 24"), encoding="utf-8")
    assert load_mapping(file).version != before
