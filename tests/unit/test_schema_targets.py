"""Partner JSON Schemas as mapping targets: static checks of a mapping and per-request validation."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import ConfigError
from federation.mapping import CompiledMapping, load_mapping
from federation.mapping.schema import TargetSchema, check_mapping, load_schema

DISPLAY = "mappings/test.yaml"
SCHEMA_FILE = "partners/schemas/hk-td.json"

WriteSchema = Callable[[Any], TargetSchema]
LoadMapping = Callable[[str], CompiledMapping]

STRICT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["application_type", "owner", "members"],
    "properties": {
        "application_type": {"type": "string"},
        "owner": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name_en", "hkid"],
            "properties": {
                "name_en": {"type": "string", "maxLength": 40},
                "hkid": {"type": "string", "pattern": r"^[A-Z]{1,2}\d{6}\([0-9A]\)$"},
            },
        },
        "members": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["relation"],
                "properties": {
                    "name": {"type": "string"},
                    "relation": {"enum": ["spouse", "child"]},
                },
            },
        },
        "extra": {"type": "object"},
    },
}


@pytest.fixture
def write_schema(tmp_path: Path) -> WriteSchema:
    """A factory: a schema object → TargetSchema loaded from a file, shown as partners/schemas/…"""
    counter = iter(range(1_000_000))

    def write(schema: Any) -> TargetSchema:
        file = tmp_path / f"schema-{next(counter)}.json"
        file.write_bytes(orjson.dumps(schema))
        return load_schema(file, display=SCHEMA_FILE)

    return write


@pytest.fixture
def compile_mapping(tmp_path: Path) -> LoadMapping:
    """A factory: dedented mapping text under ``mappings/`` → CompiledMapping."""
    counter = iter(range(1_000_000))
    (tmp_path / "mappings").mkdir()

    def run(text: str) -> CompiledMapping:
        file = tmp_path / "mappings" / f"mapping-{next(counter)}.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_mapping(file, display=DISPLAY)

    return run


COMPLETE = """\
mapping: 1
request:
  application_type: {value: VLR}
  owner.name_en: applicant.name_en
  owner.hkid: {from: applicant.hkid, transform: hkid}
  members:
    each: family
    fields:
      name: name
      relation: relation
  extra.anything.goes: note
"""


def test_a_mapping_that_fits_the_schema(
    write_schema: WriteSchema, compile_mapping: LoadMapping
) -> None:
    """Every target exists, every required property is written, open objects take anything."""
    assert check_mapping(write_schema(STRICT), compile_mapping(COMPLETE)) == []


def test_target_not_in_a_strict_schema(
    write_schema: WriteSchema, compile_mapping: LoadMapping
) -> None:
    """A target the schema does not declare is flagged with the mapping line that writes it."""
    mapping = compile_mapping(
        COMPLETE.replace("  owner.hkid:", "  owner.phone: applicant.phone\n  owner.hkid:").replace(
            "      relation: relation\n", "      relation: relation\n      age: age\n"
        )
    )
    assert [str(p) for p in check_mapping(write_schema(STRICT), mapping)] == [
        f"{DISPLAY}:5: request: target 'owner.phone' is not in the partner's schema {SCHEMA_FILE}",
        f"{DISPLAY}:12: request: target 'members[].age' is not in the partner's schema "
        f"{SCHEMA_FILE}",
    ]


def test_required_property_no_field_writes(
    write_schema: WriteSchema, compile_mapping: LoadMapping
) -> None:
    """Schema-required properties (nested, and inside array items) that no field writes are flagged."""
    mapping = compile_mapping(
        "mapping: 1\nrequest:\n  owner.name_en: n\n"
        "  members: {each: family, fields: {name: name}}\n"
    )
    assert [str(p) for p in check_mapping(write_schema(STRICT), mapping)] == [
        f"{DISPLAY}: request: the partner's schema {SCHEMA_FILE} requires 'application_type', "
        "which no field of the mapping writes",
        f"{DISPLAY}: request: the partner's schema {SCHEMA_FILE} requires 'owner.hkid', "
        "which no field of the mapping writes",
        f"{DISPLAY}: request: the partner's schema {SCHEMA_FILE} requires 'members[].relation', "
        "which no field of the mapping writes",
    ]


def test_properties_under_an_optional_object_are_not_demanded(
    write_schema: WriteSchema, compile_mapping: LoadMapping
) -> None:
    """Required properties inside an object the schema does not require are not demanded."""
    schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "string"},
            "agent": {"type": "object", "required": ["name"], "properties": {"name": {}}},
        },
    }
    assert (
        check_mapping(write_schema(schema), compile_mapping("mapping: 1\nrequest:\n  a: x\n")) == []
    )


def test_open_schema_accepts_any_target(
    write_schema: WriteSchema, compile_mapping: LoadMapping
) -> None:
    """A schema without ``properties`` constrains nothing about target names."""
    assert check_mapping(write_schema({"type": "object"}), compile_mapping(COMPLETE)) == []


def test_section_targets_list_item_fields_under_their_array(compile_mapping: LoadMapping) -> None:
    """Each target appears once; fields of ``each`` items only under ``members[]``."""
    assert compile_mapping(COMPLETE).request.targets == [
        ("application_type",),
        ("owner", "name_en"),
        ("owner", "hkid"),
        ("members",),
        ("members[]", "name"),
        ("members[]", "relation"),
        ("extra", "anything", "goes"),
    ]


# --- TargetSchema.problems -----------------------------------------------------------------------


def test_problems_name_json_paths(write_schema: WriteSchema) -> None:
    """Each way a mapped request breaks the schema is named by its JSON path, in path order."""
    request = {
        "application_type": 1,
        "owner": {"name_en": "CHAN, Tai Man", "hkid": "A1234563"},
        "members": [{"relation": "spouse"}, {"relation": "cousin", "age": 9}],
    }
    found = write_schema(STRICT).problems(request, file=DISPLAY)
    assert [(p.path, p.message, p.file) for p in found] == [
        ("application_type", f"does not satisfy {SCHEMA_FILE}: 1 is not of type 'string'", DISPLAY),
        (
            "members[1]",
            f"does not satisfy {SCHEMA_FILE}: Additional properties are not allowed ('age' was "
            "unexpected)",
            DISPLAY,
        ),
        (
            "members[1].relation",
            f"does not satisfy {SCHEMA_FILE}: 'cousin' is not one of ['spouse', 'child']",
            DISPLAY,
        ),
        (
            "owner.hkid",
            f"does not satisfy {SCHEMA_FILE}: 'A1234563' does not match "
            "'^[A-Z]{1,2}\\\\d{6}\\\\([0-9A]\\\\)$'",
            DISPLAY,
        ),
    ]


def test_problems_of_a_missing_required_property(write_schema: WriteSchema) -> None:
    """A missing property is reported at its parent's path (the top has an empty path)."""
    found = write_schema(STRICT).problems({"owner": {"name_en": "CHAN"}, "members": []})
    assert [(p.path, p.message) for p in found] == [
        ("", f"does not satisfy {SCHEMA_FILE}: 'application_type' is a required property"),
        ("owner", f"does not satisfy {SCHEMA_FILE}: 'hkid' is a required property"),
    ]


def test_no_problems_for_a_conforming_request(write_schema: WriteSchema) -> None:
    """A request that fits gives no problems."""
    request = {
        "application_type": "VLR",
        "owner": {"name_en": "CHAN, Tai Man", "hkid": "A123456(3)"},
        "members": [{"name": "陳小明", "relation": "child"}],
    }
    assert write_schema(STRICT).problems(request) == []


def test_schema_version_is_a_content_hash(tmp_path: Path) -> None:
    """A schema's version changes with its bytes."""
    file = tmp_path / "s.json"
    file.write_bytes(b'{"type": "object"}')
    first = load_schema(file, display=SCHEMA_FILE).version
    file.write_bytes(b'{"type": "object", "required": ["a"]}')
    assert load_schema(file, display=SCHEMA_FILE).version != first
    assert first.startswith("sha256:")


# --- load_schema ---------------------------------------------------------------------------------


def test_load_schema_rejects_non_json(tmp_path: Path) -> None:
    """A schema that is not JSON is refused naming the file and the parser's complaint."""
    file = tmp_path / "s.json"
    file.write_bytes(b'{"type": object}')
    with pytest.raises(ConfigError) as info:
        load_schema(file, display=SCHEMA_FILE)
    assert str(info.value) == (
        f"{SCHEMA_FILE}: schema is not JSON: unexpected character, expected a JSON value: "
        "line 1 column 10 (char 9)"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "objekt"}, "'objekt' is not valid under any of the given schemas"),
        ({"required": "owner"}, "'owner' is not of type 'array'"),
        ({"properties": {"a": {"minLength": -1}}}, "-1 is less than the minimum of 0"),
    ],
)
def test_load_schema_rejects_invalid_schemas(tmp_path: Path, schema: Any, message: str) -> None:
    """Valid JSON that is not a valid 2020-12 schema is refused with the reason."""
    file = tmp_path / "s.json"
    file.write_bytes(orjson.dumps(schema))
    with pytest.raises(ConfigError) as info:
        load_schema(file, display=SCHEMA_FILE)
    assert str(info.value) == f"{SCHEMA_FILE}: not a valid JSON Schema: {message}"


def test_load_schema_missing_file(tmp_path: Path) -> None:
    """A schema file that is not there is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError) as info:
        load_schema(tmp_path / "absent.json", display=SCHEMA_FILE)
    assert str(info.value) == f"{SCHEMA_FILE}: cannot read schema: No such file or directory"
