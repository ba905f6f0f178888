"""The mapping language at work: value sources, modifiers, collected errors and versions.

Every mapping here is written into ``tmp_path/mappings/`` (code tables under ``mappings/tables/``), as
an operator would lay them out, and loaded through :func:`federation.mapping.load_mapping`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import MappingError
from federation.domain.models import content_hash
from federation.mapping import CompiledMapping, load_mapping

DISPLAY = "mappings/test.yaml"

WriteFile = Callable[[str, str], Path]
LoadMapping = Callable[[str], CompiledMapping]


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """A fresh ``mappings/`` directory with an empty ``tables/`` folder."""
    root = tmp_path / "mappings"
    (root / "tables").mkdir(parents=True)
    return root


@pytest.fixture
def write_table(mappings_dir: Path) -> WriteFile:
    """A factory writing a dedented code table to ``mappings/tables/<name>``."""

    def write(name: str, text: str) -> Path:
        file = mappings_dir / "tables" / name
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return file

    return write


@pytest.fixture
def write_mapping(mappings_dir: Path) -> Callable[[str], Path]:
    """A factory writing dedented mapping text to a new file under ``mappings/``."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        file = mappings_dir / f"mapping-{next(counter)}.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return file

    return write


@pytest.fixture
def compile_mapping(write_mapping: Callable[[str], Path]) -> LoadMapping:
    """A factory: mapping text → CompiledMapping, shown as mappings/test.yaml."""

    def run(text: str) -> CompiledMapping:
        return load_mapping(write_mapping(text), display=DISPLAY)

    return run


def request(*rules: str, head: str = "") -> str:
    """A version-1 mapping: ``head`` lines, then ``request:`` holding ``rules`` one per line."""
    return "mapping: 1\n" + head + "request:\n" + "".join(f"  {rule}\n" for rule in rules)


def errors(mapping: CompiledMapping, application: Any) -> list[str]:
    """Every problem line mapping ``application`` reports (fails the test if it maps cleanly)."""
    with pytest.raises(MappingError) as info:
        mapping.map_request(application)
    return [str(p) for p in info.value.problems]


# --- from ----------------------------------------------------------------------------------------


def test_from_reaches_nested_objects_and_array_items(compile_mapping: LoadMapping) -> None:
    """Dotted paths and [n] indexes pick values out of nested objects and arrays."""
    m = compile_mapping(
        request(
            "name: applicant.name",
            "second_doc: {from: 'applicant.documents[1].number'}",
            "cell: matrix[1][0]",
        )
    )
    app = {
        "applicant": {"name": "陳大文", "documents": [{"number": "A123456(3)"}, {"number": "H1"}]},
        "matrix": [[1, 2], [3, 4]],
    }
    assert m.map_request(app) == {"name": "陳大文", "second_doc": "H1", "cell": 3}


def test_from_an_index_past_the_end_leaves_the_field_out(compile_mapping: LoadMapping) -> None:
    """An array shorter than the index, or a non-array, gives a missing value, not a crash."""
    m = compile_mapping(request("a: docs[2].number", "b: name[0]", "c: docs[0].number"))
    assert m.map_request({"docs": [{"number": "1"}], "name": "text"}) == {"c": "1"}


def test_from_root_path_at_top_level(compile_mapping: LoadMapping) -> None:
    """Outside ``each``, ``$.x`` means the same as ``x``."""
    m = compile_mapping(request("a: {from: $.applicant.name}", "b: $.ref"))
    assert m.map_request({"applicant": {"name": "余丽萍"}, "ref": "R1"}) == {
        "a": "余丽萍",
        "b": "R1",
    }


def test_from_keeps_characters_outside_gb2312(compile_mapping: LoadMapping) -> None:
    """燊, 峯 and 𨋢 (outside GB 2312, 𨋢 outside the BMP) travel unchanged, as do CJK keys."""
    m = compile_mapping(request("姓名: 申请人.姓名"))
    assert m.map_request({"申请人": {"姓名": "李燊峯𨋢"}}) == {"姓名": "李燊峯𨋢"}


# --- value ---------------------------------------------------------------------------------------


def test_value_constants_of_every_type(compile_mapping: LoadMapping) -> None:
    """Constants keep their YAML type; ``NO`` and dates stay text (YAML 1.2)."""
    m = compile_mapping(
        request(
            "s: {value: TONGBAN}",
            "n: {value: 12}",
            "f: {value: 1.5}",
            "t: {value: false}",
            "z: {value: null}",
            "d: {value: 2024-01-01}",
            "no: {value: NO}",
        )
    )
    assert m.map_request({}) == {
        "s": "TONGBAN",
        "n": 12,
        "f": 1.5,
        "t": False,
        "z": None,
        "d": "2024-01-01",
        "no": "NO",
    }


def test_mutable_constants_are_not_shared_between_results(compile_mapping: LoadMapping) -> None:
    """Changing one mapped request's list or object constant leaves the next request intact."""
    m = compile_mapping(
        request(
            "tags: {value: [a, b]}",
            "meta: {value: {channel: kiosk, flags: [x]}}",
            "opts: {from: missing, default: {retries: [1]}}",
        )
    )
    first = m.map_request({})
    first["tags"].append("c")
    first["meta"]["flags"].append("y")
    first["opts"]["retries"].append(2)
    assert m.map_request({}) == {
        "tags": ["a", "b"],
        "meta": {"channel": "kiosk", "flags": ["x"]},
        "opts": {"retries": [1]},
    }


def test_transforms_apply_to_constants(compile_mapping: LoadMapping) -> None:
    """A constant may pass through steps too, e.g. a date written in the mapping's own form."""
    m = compile_mapping(
        request(
            "channel: {value: tongban, transform: upper}",
            "valid_from: {value: 01/09/2018, transform: {date: {from: DD/MM/YYYY, to: iso}}}",
        )
    )
    assert m.map_request({}) == {"channel": "TONGBAN", "valid_from": "2018-09-01"}


# --- format --------------------------------------------------------------------------------------


def test_format_fills_placeholders(compile_mapping: LoadMapping) -> None:
    """Placeholders take fields (nested, indexed, numbers); doubled braces stay literal braces."""
    m = compile_mapping(
        request(
            'name_en: {format: "{applicant.surname}, {applicant.given}"}',
            'ref: {format: "{{TB}}-{docs[0].no}-{seq}"}',
        )
    )
    app = {"applicant": {"surname": "CHAN", "given": "Tai Man"}, "docs": [{"no": "H1"}], "seq": 7}
    assert m.map_request(app) == {"name_en": "CHAN, Tai Man", "ref": "{TB}-H1-7"}


@pytest.mark.parametrize("given", [{}, {"given": None}])
def test_format_with_a_missing_placeholder_leaves_the_field_out(
    compile_mapping: LoadMapping, given: dict[str, Any]
) -> None:
    """If any placeholder is missing or null, the whole formatted field is missing."""
    m = compile_mapping(request('name_en: {format: "{surname}, {given}"}', "other: surname"))
    assert m.map_request({"surname": "CHAN", **given}) == {"other": "CHAN"}


def test_format_missing_placeholder_on_a_required_field(compile_mapping: LoadMapping) -> None:
    """A required formatted field with a missing placeholder is reported under its target."""
    m = compile_mapping(request('owner.name_en: {format: "{surname}, {given}", required: true}'))
    assert errors(m, {"surname": "CHAN"}) == [
        f"{DISPLAY}:3: owner.name_en: required, but missing (maps to owner.name_en)"
    ]


# --- concat and first ----------------------------------------------------------------------------


def test_concat_joins_present_parts_with_the_separator(compile_mapping: LoadMapping) -> None:
    """Absent, null and empty parts are skipped, so no doubled separators appear."""
    m = compile_mapping(
        request('address: {concat: [flat, floor, building, street], separator: ", "}')
    )
    app = {"flat": "Flat A", "floor": None, "building": "", "street": "1 Queen's Road"}
    assert m.map_request(app) == {"address": "Flat A, 1 Queen's Road"}


def test_concat_without_separator_and_with_numbers(compile_mapping: LoadMapping) -> None:
    """The default separator is empty; numbers are written as text."""
    m = compile_mapping(request("code: {concat: [prefix, number]}"))
    assert m.map_request({"prefix": "H", "number": 12345678}) == {"code": "H12345678"}


def test_concat_of_nothing_is_missing(compile_mapping: LoadMapping) -> None:
    """With every part absent the field is missing: left out, or defaulted."""
    m = compile_mapping(
        request("a: {concat: [x, y], separator: ' '}", "b: {concat: [x, y], default: '-'}")
    )
    assert m.map_request({"x": ""}) == {"b": "-"}


def test_first_takes_the_first_present_value(compile_mapping: LoadMapping) -> None:
    """``first`` skips absent, null and empty values, in the order written."""
    m = compile_mapping(request("doc: {first: [docs.hkid, docs.bir, docs.permit]}"))
    assert m.map_request({"docs": {"hkid": "", "bir": None, "permit": "H12345678"}}) == {
        "doc": "H12345678"
    }
    assert m.map_request({"docs": {"hkid": "A123456(3)", "permit": "H12345678"}}) == {
        "doc": "A123456(3)"
    }


def test_first_with_nothing_present(compile_mapping: LoadMapping) -> None:
    """No present value: the field is missing, and a required one is an error."""
    m = compile_mapping(request("doc: {first: [docs.hkid, docs.bir], required: true}"))
    assert errors(m, {"docs": {}}) == [f"{DISPLAY}:3: doc: required, but missing (maps to doc)"]


# --- switch --------------------------------------------------------------------------------------

SWITCH = """\
mapping: 1
request:
  mode_code:
    switch: mode
    cases: {全程网办: "1", 异地代收代办: "2", 多地联办: "3"}
  level:
    switch: level
    cases: {"1": high, "2": low}
    otherwise: unknown
  contact:
    switch: contact_by
    cases:
      phone: {from: applicant.phone}
      email: {from: applicant.email}
      none: NONE
    otherwise: {from: applicant.address}
"""


def test_switch_chooses_by_value(compile_mapping: LoadMapping) -> None:
    """Cases map one field's value to a constant, or take another field with {from: …}."""
    m = compile_mapping(SWITCH)
    app = {
        "mode": "异地代收代办",
        "level": 2,  # a number finds the case written "2"
        "contact_by": "email",
        "applicant": {"phone": "+85291234567", "email": "chan@example.hk"},
    }
    assert m.map_request(app) == {"mode_code": "2", "level": "low", "contact": "chan@example.hk"}


def test_switch_otherwise(compile_mapping: LoadMapping) -> None:
    """An unlisted value takes ``otherwise``: a constant or another field."""
    m = compile_mapping(SWITCH)
    app = {"mode": "全程网办", "level": "7", "contact_by": "fax", "applicant": {"address": "HK"}}
    assert m.map_request(app) == {"mode_code": "1", "level": "unknown", "contact": "HK"}


def test_switch_without_a_matching_case_is_an_error(compile_mapping: LoadMapping) -> None:
    """Without ``otherwise`` an unlisted value is reported with the cases there are."""
    m = compile_mapping(SWITCH)
    assert errors(m, {"mode": "到场办理", "level": "1", "contact_by": "none"}) == [
        f"{DISPLAY}:3: mode: no case for '到场办理'; cases: 全程网办, 异地代收代办, 多地联办"
    ]


def test_switch_on_a_missing_field(compile_mapping: LoadMapping) -> None:
    """A missing switch field leaves the target out (it is not an unlisted case)."""
    m = compile_mapping(SWITCH)
    assert m.map_request({"level": "1"}) == {"level": "high"}


def test_switch_case_taking_a_missing_field(compile_mapping: LoadMapping) -> None:
    """A case that takes an absent field makes the target missing, and required catches it."""
    m = compile_mapping(
        request("contact: {switch: by, cases: {phone: {from: phone}}, required: true}")
    )
    assert errors(m, {"by": "phone"}) == [
        f"{DISPLAY}:3: by: required, but missing (maps to contact)"
    ]


# --- each ----------------------------------------------------------------------------------------

FAMILY = """\
mapping: 1
request:
  case_ref: {from: ref, required: true}
  members:
    each: family
    fields:
      name: {from: name, required: true}
      relation: {from: relation, required: true}
      id.number: docs[0].number
      applicant_ref: {from: $.ref}
      documents:
        each: docs
        fields:
          kind: {from: kind, required: true}
"""


def test_each_maps_every_item(compile_mapping: LoadMapping) -> None:
    """Item fields are relative to the item, ``$.`` reaches the top, and each may nest."""
    m = compile_mapping(FAMILY)
    app = {
        "ref": "R-1",
        "family": [
            {"name": "陳小明", "relation": "child", "docs": [{"number": "H1", "kind": "hrp"}]},
            {"name": "李美玲", "relation": "spouse", "docs": []},
        ],
    }
    assert m.map_request(app) == {
        "case_ref": "R-1",
        "members": [
            {
                "name": "陳小明",
                "relation": "child",
                "id": {"number": "H1"},
                "applicant_ref": "R-1",
                "documents": [{"kind": "hrp"}],
            },
            {"name": "李美玲", "relation": "spouse", "applicant_ref": "R-1", "documents": []},
        ],
    }


def test_each_over_an_absent_or_empty_array(compile_mapping: LoadMapping) -> None:
    """No array: the target is left out; an empty array maps to an empty array."""
    m = compile_mapping(FAMILY)
    assert m.map_request({"ref": "R-1"}) == {"case_ref": "R-1"}
    assert m.map_request({"ref": "R-1", "family": []}) == {"case_ref": "R-1", "members": []}


def test_each_error_paths_name_the_item(compile_mapping: LoadMapping) -> None:
    """Problems inside items carry the item's index, down through nested arrays."""
    m = compile_mapping(FAMILY)
    app = {
        "ref": "R-1",
        "family": [
            {"name": "陳小明", "relation": "child", "docs": [{"kind": "hrp"}, {}]},
            {"name": "李美玲", "docs": "H1"},
        ],
    }
    assert errors(m, app) == [
        f"{DISPLAY}:14: family[0].docs[1].kind: required, but missing (maps to kind)",
        f"{DISPLAY}:8: family[1].relation: required, but missing (maps to relation)",
        f"{DISPLAY}:11: family[1].docs: expected a list of items",
    ]


def test_each_over_something_that_is_not_a_list(compile_mapping: LoadMapping) -> None:
    """An object where the array should be is an error naming the source path."""
    m = compile_mapping(FAMILY)
    assert errors(m, {"ref": "R-1", "family": {"name": "陳小明"}}) == [
        f"{DISPLAY}:4: family: expected a list of items"
    ]


# --- required and default ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [{}, {"id": None}, {"id": ""}])
def test_required_refuses_missing_null_and_empty_text(
    compile_mapping: LoadMapping, value: dict[str, Any]
) -> None:
    """Missing, null and empty text all fail a required field, naming source and target."""
    m = compile_mapping(request("owner.id: {from: id, required: true}"))
    assert errors(m, value) == [f"{DISPLAY}:3: id: required, but missing (maps to owner.id)"]


@pytest.mark.parametrize("value", [0, False, " ", []])
def test_required_accepts_falsy_values(compile_mapping: LoadMapping, value: Any) -> None:
    """0, false, a space and an empty list are values, so a required field takes them."""
    m = compile_mapping(request("a: {from: x, required: true}"))
    assert m.map_request({"x": value}) == {"a": value}


def test_default_fills_missing_and_null_but_not_empty_text(compile_mapping: LoadMapping) -> None:
    """A default replaces an absent or null value; empty text is a value and is kept."""
    m = compile_mapping(request("a: {from: x, default: '9'}"))
    assert m.map_request({}) == {"a": "9"}
    assert m.map_request({"x": None}) == {"a": "9"}
    assert m.map_request({"x": ""}) == {"a": ""}


def test_default_is_not_transformed(compile_mapping: LoadMapping) -> None:
    """Steps run on values from the application, not on the default."""
    m = compile_mapping(request("a: {from: x, default: keep me, transform: upper}"))
    assert m.map_request({}) == {"a": "keep me"}
    assert m.map_request({"x": "abc"}) == {"a": "ABC"}


# --- when ----------------------------------------------------------------------------------------

WHEN = """\
mapping: 1
request:
  eq: {value: 1, when: {field: mode, equals: 全程网办}}
  ne: {value: 1, when: {field: mode, not_equals: 全程网办}}
  in: {value: 1, when: {field: region, in: ["81", "82"]}}
  not_in: {value: 1, when: {field: region, not_in: ["81", "82"]}}
  has_phone: {value: 1, when: {field: phone, present: true}}
  no_phone: {value: 1, when: {field: phone, present: false}}
  both:
    value: 1
    when:
      - {field: mode, equals: 全程网办}
      - {field: region, in: ["81"]}
"""


@pytest.mark.parametrize(
    ("app", "written"),
    [
        ({"mode": "全程网办", "region": "81", "phone": "1"}, ["eq", "in", "has_phone", "both"]),
        ({"mode": "全程网办", "region": "82", "phone": ""}, ["eq", "in", "no_phone"]),
        ({"mode": "多地联办", "region": "44", "phone": None}, ["ne", "not_in", "no_phone"]),
        ({}, ["ne", "not_in", "no_phone"]),
    ],
)
def test_when_operators(
    compile_mapping: LoadMapping, app: dict[str, Any], written: list[str]
) -> None:
    """Each operator decides whether its field is written; a list needs every condition."""
    assert sorted(compile_mapping(WHEN).map_request(app)) == sorted(written)


def test_when_compares_exact_values(compile_mapping: LoadMapping) -> None:
    """The text "81" is not the number 81: conditions compare values as they are."""
    m = compile_mapping(WHEN)
    assert "in" not in m.map_request({"region": 81})


def test_required_only_when_the_condition_holds(compile_mapping: LoadMapping) -> None:
    """A conditional required field is checked only when its condition holds."""
    m = compile_mapping(
        request(
            "mode: {from: mode, required: true}",
            "agent.name: {from: agent.name, required: true, when: {field: mode, equals: 异地代收代办}}",
        )
    )
    assert m.map_request({"mode": "全程网办"}) == {"mode": "全程网办"}
    assert errors(m, {"mode": "异地代收代办"}) == [
        f"{DISPLAY}:4: agent.name: required, but missing (maps to agent.name)"
    ]


def test_when_inside_each_reads_the_item_and_the_root(compile_mapping: LoadMapping) -> None:
    """Conditions inside ``each`` use item-relative paths, and ``$.`` for the top."""
    m = compile_mapping(
        request(
            "kids:",
            "  each: family",
            "  fields:",
            "    name: {from: name, when: {field: relation, equals: child}}",
            "    hk: {value: true, when: {field: $.region, equals: '81'}}",
        )
    )
    app = {"region": "81", "family": [{"name": "A", "relation": "child"}, {"name": "B"}]}
    assert m.map_request(app) == {"kids": [{"name": "A", "hk": True}, {"hk": True}]}


# --- transforms in the flow of a field -----------------------------------------------------------


def test_steps_run_in_order(compile_mapping: LoadMapping) -> None:
    """A list of steps runs left to right."""
    m = compile_mapping(
        request("a: {from: x, transform: [trim, upper, {split: {separator: ','}}]}")
    )
    assert m.map_request({"x": "  h1, m2 "}) == {"a": ["H1", "M2"]}


def test_null_optional_value_skips_the_steps(compile_mapping: LoadMapping) -> None:
    """An explicit null on an optional field stays null instead of failing a step."""
    m = compile_mapping(request("a: {from: x, transform: hkid}"))
    assert m.map_request({"x": None}) == {"a": None}


# --- collected errors ----------------------------------------------------------------------------

MANY = """\
mapping: 1
tables: {sex: tables/sex.yaml}
request:
  ref: {from: ref, required: true}
  owner.hkid: {from: applicant.hkid, transform: hkid}
  owner.sex: {from: applicant.sex, transform: {table: sex}}
  owner.born: {from: applicant.born, transform: {date: {from: DD/MM/YYYY, to: iso}}}
  owner.phone: {from: applicant.phone, transform: {phone: {region: HK}}}
  fee: {from: fee, transform: money}
  members:
    each: family
    fields:
      relation: {from: relation, required: true}
      id: {from: id, transform: mainland_id}
"""

SEX_TABLE = """\
table: 1
values:
  "1": M
  "2": F
"""


def test_every_bad_field_is_reported(compile_mapping: LoadMapping, write_table: WriteFile) -> None:
    """One application with many bad fields gets all of them back: source path, file and line."""
    write_table("sex.yaml", SEX_TABLE)
    m = compile_mapping(MANY)
    app = {
        "applicant": {
            "hkid": "A123456(4)",
            "sex": "9",
            "born": "31/02/1990",
            "phone": "1234 5678",
        },
        "fee": 12.5,
        "family": [
            {"relation": "child", "id": "510104199307070153"},
            {"id": "51010419930707015X"},
        ],
    }
    with pytest.raises(MappingError) as info:
        m.map_request(app)
    assert info.value.mapping == DISPLAY
    assert [(p.path, p.file, p.line) for p in info.value.problems] == [
        ("ref", DISPLAY, 4),
        ("applicant.hkid", DISPLAY, 5),
        ("applicant.sex", DISPLAY, 6),
        ("applicant.born", DISPLAY, 7),
        ("applicant.phone", DISPLAY, 8),
        ("fee", DISPLAY, 9),
        ("family[1].relation", DISPLAY, 13),
        ("family[1].id", DISPLAY, 14),
    ]
    assert [str(p) for p in info.value.problems] == [
        f"{DISPLAY}:4: ref: required, but missing (maps to ref)",
        f"{DISPLAY}:5: applicant.hkid: not a valid hkid: check character is '4' but the number "
        "says '3'",
        f"{DISPLAY}:6: applicant.sex: '9' is not in code table sex (mappings/tables/sex.yaml)",
        f"{DISPLAY}:7: applicant.born: text shaped 99/99/9999 is not a date in the form DD/MM/YYYY "
        "(no such day)",
        f"{DISPLAY}:8: applicant.phone: not a valid phone number for +852",
        f"{DISPLAY}:9: fee: money must not travel as a binary float; send it as text",
        f"{DISPLAY}:13: family[1].relation: required, but missing (maps to relation)",
        f"{DISPLAY}:14: family[1].id: not a valid mainland id: check character is 'X' but the "
        "number says '3'",
    ]


def test_errors_never_echo_a_whole_id_number(
    compile_mapping: LoadMapping, write_table: WriteFile
) -> None:
    """ID check failures name the failing character, not the personal number."""
    write_table("sex.yaml", SEX_TABLE)
    m = compile_mapping(MANY)
    found = " ".join(errors(m, {"applicant": {"hkid": "K802133(4)"}, "family": []}))
    assert "K802133" not in found


def test_a_bad_response_is_reported_like_a_bad_request(compile_mapping: LoadMapping) -> None:
    """Reply mapping collects problems the same way, with the response section's lines."""
    m = compile_mapping(
        "mapping: 1\nrequest:\n  a: b\nresponse:\n"
        "  receipt_number: {from: ref_no, required: true}\n"
        "  received: {from: at, transform: {date: {from: DD/MM/YYYY, to: iso}}}\n"
    )
    with pytest.raises(MappingError) as info:
        m.map_response({"at": "2024-03-01"})
    assert [str(p) for p in info.value.problems] == [
        f"{DISPLAY}:5: ref_no: required, but missing (maps to receipt_number)",
        f"{DISPLAY}:6: at: text shaped 9999-99-99 is not a date in the form DD/MM/YYYY",
    ]


# --- versions ------------------------------------------------------------------------------------


def test_versions_include_every_table_file(
    compile_mapping: LoadMapping, write_table: WriteFile
) -> None:
    """The result's versions map the mapping file and each code table to its content hash."""
    sex = write_table("sex.yaml", SEX_TABLE)
    cert = write_table("cert.yaml", 'table: 1\nvalues: {"111": ID, "414": PP}\n')
    m = compile_mapping(
        request(
            "sex: {from: sex, transform: {table: sex}}",
            "cert: {from: cert, transform: {table: cert}}",
            head="tables: {sex: tables/sex.yaml, cert: tables/cert.yaml}\n",
        )
    )
    assert dict(m.versions) == {
        DISPLAY: m.version,
        "mappings/tables/sex.yaml": content_hash(sex.read_bytes()),
        "mappings/tables/cert.yaml": content_hash(cert.read_bytes()),
    }
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", v) for v in m.versions.values())


def test_changing_a_table_changes_its_hash_only(
    compile_mapping: LoadMapping, write_table: WriteFile
) -> None:
    """Editing a code table changes its recorded hash; the mapping's own hash stays."""
    write_table("sex.yaml", SEX_TABLE)
    text = request(
        "sex: {from: sex, transform: {table: sex}}", head="tables: {sex: tables/sex.yaml}\n"
    )
    before = compile_mapping(text)
    write_table("sex.yaml", SEX_TABLE + '  "9": U\n')
    after = compile_mapping(text)
    table = "mappings/tables/sex.yaml"
    assert after.versions[table] != before.versions[table]
    assert after.versions[DISPLAY] == before.versions[DISPLAY]
    assert after.map_request({"sex": "9"}) == {"sex": "U"}


def test_same_table_bytes_give_the_same_hash(
    compile_mapping: LoadMapping, write_table: WriteFile
) -> None:
    """Reloading unchanged files records the same versions."""
    write_table("sex.yaml", SEX_TABLE)
    text = request(
        "sex: {from: sex, transform: {table: sex}}", head="tables: {sex: tables/sex.yaml}\n"
    )
    assert dict(compile_mapping(text).versions) == dict(compile_mapping(text).versions)
