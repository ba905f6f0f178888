"""Load-time errors: one test per kind of mistake, each asserting the exact ``file:line: path: message``.

Mappings are written into ``tmp_path/mappings/`` (tables under ``mappings/tables/``) and shown as
``mappings/test.yaml``; a code table's problems name the table's own file.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from federation.domain.errors import ConfigError
from federation.mapping import CompiledMapping, load_mapping

DISPLAY = "mappings/test.yaml"
KNOWN_TRANSFORMS = (
    "bool, count, date, datetime, decimal, decrypt, divide, encrypt, fullwidth, halfwidth, hk_brn, "
    "hkid, home_return_permit, int, join, lower, macau_bir, mainland_id, max_length, money, multiply, "
    "opencc, pad, phone, pick, regex_replace, replace, split, string, substring, table, trim, "
    "upper, uscc"
)
FIELD_KEYS = (
    "cases, concat, default, each, fields, first, format, from, otherwise, position, required, separator, "
    "switch, transform, value, when"
)
DATE_FORMATS = (
    "DD/MM/YYYY, YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日, epoch_ms, epoch_s, iso"
)
CONDITION = (
    "a condition needs exactly one of: equals, not_equals, in, not_in, present, in_table, "
    "not_in_table"
)

Problems = Callable[[str], list[str]]
WriteTable = Callable[[str, str], Path]


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """A fresh ``mappings/`` directory with a valid sex-code table."""
    root = tmp_path / "mappings"
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "sex.yaml").write_text(
        'table: 1\nvalues: {"1": M, "2": F}\n', encoding="utf-8"
    )
    return root


@pytest.fixture
def write_table(mappings_dir: Path) -> WriteTable:
    """A factory writing a code table file (bytes as given) under ``mappings/tables/``."""

    def write(name: str, text: str) -> Path:
        file = mappings_dir / "tables" / name
        file.write_text(text, encoding="utf-8")
        return file

    return write


@pytest.fixture
def compile_mapping(mappings_dir: Path) -> Callable[[str], CompiledMapping]:
    """A factory: dedented mapping text → CompiledMapping (raises ConfigError)."""
    counter = iter(range(1_000_000))

    def run(text: str) -> CompiledMapping:
        file = mappings_dir / f"mapping-{next(counter)}.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_mapping(file, display=DISPLAY)

    return run


@pytest.fixture
def problems(compile_mapping: Callable[[str], CompiledMapping]) -> Problems:
    """A factory: mapping text → every problem line loading it reports, in order."""

    def run(text: str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            compile_mapping(text)
        return [str(p) for p in info.value.problems]

    return run


def rules(*lines: str, head: str = "") -> str:
    """A version-1 mapping: ``head`` lines, then ``request:`` with ``lines`` (line 3 on if no head)."""
    return "mapping: 1\n" + head + "request:\n" + "".join(f"  {line}\n" for line in lines)


def at(line: int, rest: str) -> str:
    """``mappings/test.yaml:<line>: <rest>``."""
    return f"{DISPLAY}:{line}: {rest}"


# --- the file and its sections -------------------------------------------------------------------


def test_unknown_top_level_key(problems: Problems) -> None:
    """A misspelt top-level key is named with a hint and the keys allowed there."""
    assert problems("mapping: 1\ntabels: {sex: tables/sex.yaml}\nrequest:\n  a: b\n") == [
        at(
            2,
            "tabels: unknown key (did you mean 'tables'?); allowed here: allow, checks, description, "
            "headers, mapping, names, partner, report, request, response, service, status, "
            "status_query, supplement, tables",
        )
    ]


def test_top_level_wrong_types(problems: Problems) -> None:
    """A text format version, a list partner and a text request are each refused."""
    assert problems('mapping: "1"\npartner: [hk]\nrequest: owner.name\n') == [
        at(1, "mapping: unsupported mapping format '1'; expected 1"),
        at(2, "partner: expected text, got a list"),
        at(3, "request: expected a mapping of keys, got text ('owner.name')"),
    ]


def test_missing_request_section(problems: Problems) -> None:
    """A mapping without ``request:`` says so."""
    assert problems("mapping: 1\npartner: hk\n") == [at(1, "missing required key 'request'")]


# --- fields --------------------------------------------------------------------------------------


def test_unknown_field_key(problems: Problems) -> None:
    """A misspelt field key is named with a hint and every key a field allows."""
    assert problems(rules("a: {from: x, defualt: 1}")) == [
        at(
            3,
            f"request.a.defualt: unknown key (did you mean 'default'?); allowed here: {FIELD_KEYS}",
        )
    ]


def test_two_value_sources(problems: Problems) -> None:
    """A field with both ``from`` and ``value`` is told to pick one, naming what it found."""
    assert problems(rules("a: {from: x, value: 1}", "b: {format: '{x}', first: [x, y]}")) == [
        at(
            3,
            "request.a: give exactly one of 'from' (a field of the input), 'value' (a constant), "
            "'format', 'concat', 'first', 'switch', 'each' or 'position'; found from, value",
        ),
        at(
            4,
            "request.b: give exactly one of 'from' (a field of the input), 'value' (a constant), "
            "'format', 'concat', 'first', 'switch', 'each' or 'position'; found format, first",
        ),
    ]


def test_no_value_source(problems: Problems) -> None:
    """A field with only modifiers has no value."""
    assert problems(rules("a: {required: true}")) == [
        at(
            3,
            "request.a: give exactly one of 'from' (a field of the input), 'value' (a constant), "
            "'format', 'concat', 'first', 'switch', 'each' or 'position'",
        )
    ]


def test_keys_belonging_to_another_source(problems: Problems) -> None:
    """cases, fields and separator beside the wrong source are named with their owner."""
    assert problems(rules("a: {from: x, cases: {b: 1}, fields: {c: d}, separator: '-'}")) == [
        at(3, "request.a.cases: 'cases' belongs to 'switch'"),
        at(3, "request.a.fields: 'fields' belongs to 'each'"),
        at(3, "request.a.separator: 'separator' belongs to 'concat'"),
    ]


def test_modifiers_on_a_constant(problems: Problems) -> None:
    """required and default make no sense on a constant (a transform may still apply to it)."""
    assert problems(rules("a: {value: x, required: true, default: y, transform: upper}")) == [
        at(
            3,
            "request.a.required: 'required' applies to values taken from the input, "
            "not to a constant",
        ),
        at(
            3,
            "request.a.default: 'default' applies to values taken from the input, "
            "not to a constant",
        ),
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            'a: {from: x, required: "yes"}',
            "request.a.required: expected true or false, got text ('yes')",
        ),
        (
            "a: {from: x, required: 1}",
            "request.a.required: expected true or false, got a number (1)",
        ),
        ("a: 5", "request.a: expected a mapping of keys, got a number (5)"),
        ("a: [x]", "request.a: expected a mapping of keys, got a list"),
        ("a: {from: [x]}", "request.a.from: expected text, got a list"),
        ("a: {from: ''}", "request.a.from: must not be empty"),
        ("a: {concat: [x, y], separator: 1}", "request.a.separator: the separator must be text"),
        ("a: {concat: [x]}", "request.a.concat: 'concat' needs a list of at least two fields"),
        ("a: {first: [x]}", "request.a.first: 'first' needs a list of at least two fields"),
    ],
)
def test_wrong_types(problems: Problems, rule: str, message: str) -> None:
    """Values of the wrong kind are refused, saying what was expected and what was found."""
    assert problems(rules(rule)) == [at(3, message)]


def test_concat_that_is_not_a_list_is_reported_once(problems: Problems) -> None:
    """``concat: x`` is one mistake and gets one problem."""
    assert problems(rules("a: {concat: x}")) == [
        at(3, "request.a.concat: expected a list, got text ('x')")
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "a: {format: 'no placeholders'}",
            "request.a.format: a format without {field} placeholders is a constant: use 'value'",
        ),
        (
            "a: {format: '{x:>5}'}",
            "request.a.format: placeholder {x}: formatting options are not supported; "
            "give steps after '|', as {x|pad:5}",
        ),
        (
            "a: {format: '{x'}",
            "request.a.format: bad format text: the placeholder at character 1 is not closed",
        ),
        (
            "a: {format: '{x..y}'}",
            "request.a.format: bad source path: unexpected '.' at position 3 of 'x..y'",
        ),
    ],
)
def test_bad_format(problems: Problems, rule: str, message: str) -> None:
    """A format needs well-formed placeholders naming fields, without formatting options."""
    assert problems(rules(rule)) == [at(3, message)]


# --- paths ---------------------------------------------------------------------------------------


def test_bad_source_paths(problems: Problems) -> None:
    """Malformed source paths are named in every place a path is written."""
    assert problems(
        rules(
            "a: applicant..name",
            "b: {first: [x, 'docs[x]']}",
            "c: {each: '[0]', fields: {d: e}}",
            "f: {switch: x, cases: {k: {from: 'y.'}}}",
        )
    ) == [
        at(
            3, "request.a.from: bad source path: unexpected '.' at position 11 of 'applicant..name'"
        ),
        at(4, "request.b.first[1]: bad source path: unexpected '[' at position 5 of 'docs[x]'"),
        at(5, "request.c.each: bad source path: '[0]' starts with an index; name the field first"),
        at(6, "request.f.cases.k.from: bad source path: 'y.' ends with '.'"),
    ]


def test_bad_target_paths(problems: Problems) -> None:
    """Malformed targets, and targets with an array index, are refused."""
    assert problems(rules("owner.: x", "docs[0].no: y")) == [
        at(3, "request.owner.: bad target path: 'owner.' ends with '.'"),
        at(4, "request.docs[0].no: a target path names object fields only; map arrays with 'each'"),
    ]


def test_overlapping_targets(problems: Problems) -> None:
    """A target inside another is refused at the later line, naming the earlier one."""
    assert problems(
        rules(
            "owner: x",
            "fee: y",
            "owner.hkid: z",
            "members:",
            "  each: family",
            "  fields: {name: n, name.en: e}",
        )
    ) == [
        at(5, "request.owner.hkid: target 'owner.hkid' overlaps 'owner' (line 3)"),
        at(8, "request.members.fields.name.en: target 'name.en' overlaps 'name' (line 8)"),
    ]


# --- switch, each, when --------------------------------------------------------------------------


def test_switch_without_cases(problems: Problems) -> None:
    """A switch with nothing to choose from gets one problem saying so."""
    assert problems(rules("a: {switch: mode}")) == [at(3, "request.a: a switch needs 'cases'")]


@pytest.mark.parametrize(
    ("rule", "messages"),
    [
        (
            "a: {switch: x, cases: [a, b]}",
            ["request.a.cases: expected a mapping of keys, got a list"],
        ),
        (
            "a: {switch: x, cases: {k: [1, 2]}}",
            ["request.a.cases.k: a case gives one value (or {from: field})"],
        ),
        (
            "a: {switch: x, cases: {k: {form: y}}}",
            [
                "request.a.cases.k: missing required key 'from'",
                "request.a.cases.k.form: unknown key (did you mean 'from'?); allowed here: from",
            ],
        ),
    ],
)
def test_bad_switch_cases(problems: Problems, rule: str, messages: list[str]) -> None:
    """Cases are a mapping of constants or {from: field}."""
    assert problems(rules(rule)) == [at(3, m) for m in messages]


def test_each_without_fields(problems: Problems) -> None:
    """``each`` must say how to map every item."""
    assert problems(rules("a: {each: family}")) == [
        at(3, "request.a: 'each' needs 'fields' (how to map every item)")
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("a: {each: family, fields: {}}", "request.a.fields: maps no field"),
        (
            "a: {each: family, fields: [name]}",
            "request.a.fields: expected a mapping of keys, got a list",
        ),
    ],
)
def test_each_with_bad_fields(problems: Problems, rule: str, message: str) -> None:
    """Item fields are a non-empty mapping, like a section."""
    assert problems(rules(rule)) == [at(3, message)]


@pytest.mark.parametrize(
    ("rule", "messages"),
    [
        ("a: {from: x, when: {equals: 1}}", ["request.a.when: missing required key 'field'"]),
        ("a: {from: x, when: {field: m}}", [f"request.a.when: {CONDITION}"]),
        (
            "a: {from: x, when: [{field: m, equals: 1, in: [1]}]}",
            [f"request.a.when[0]: {CONDITION}"],
        ),
        (
            "a: {from: x, when: {field: m, in: '81'}}",
            ["request.a.when.in: 'in' takes a list of values"],
        ),
        (
            "a: {from: x, when: {field: m, not_in: 8}}",
            ["request.a.when.not_in: 'not_in' takes a list of values"],
        ),
        (
            "a: {from: x, when: {field: m, present: yes}}",
            ["request.a.when.present: 'present' takes true or false"],
        ),
        (
            "a: {from: x, when: {field: m, is: 1}}",
            [
                "request.a.when.is: unknown key; allowed here: equals, field, in, in_table, "
                "not_equals, not_in, not_in_table, present",
                f"request.a.when: {CONDITION}",
            ],
        ),
        (
            "a: {from: x, when: {field: 'm..n', equals: 1}}",
            ["request.a.when.field: bad source path: unexpected '.' at position 3 of 'm..n'"],
        ),
        (
            "a: {from: x, when: mode}",
            ["request.a.when: expected a mapping of keys, got text ('mode')"],
        ),
    ],
)
def test_bad_conditions(problems: Problems, rule: str, messages: list[str]) -> None:
    """A condition names a field and exactly one well-typed operator."""
    assert problems(rules(rule)) == [at(3, m) for m in messages]


# --- transforms ----------------------------------------------------------------------------------


def test_unknown_transform(problems: Problems) -> None:
    """A misspelt step is named with a hint and every known step, in a list or alone."""
    assert problems(
        rules("a: {from: x, transform: uper}", "b: {from: x, transform: [trim, {tabel: sex}]}")
    ) == [
        at(
            3,
            "request.a.transform: unknown transform 'uper' (did you mean 'upper'?); "
            f"known: {KNOWN_TRANSFORMS}",
        ),
        at(
            4,
            "request.b.transform[1]: unknown transform 'tabel' (did you mean 'table'?); "
            f"known: {KNOWN_TRANSFORMS}",
        ),
    ]


def test_unknown_transform_without_a_hint(problems: Problems) -> None:
    """A step nothing resembles gets the list alone."""
    assert problems(rules("a: {from: x, transform: romanise_cantonese}")) == [
        at(
            3,
            f"request.a.transform: unknown transform 'romanise_cantonese'; known: {KNOWN_TRANSFORMS}",
        )
    ]


def test_malformed_step(problems: Problems) -> None:
    """A step with two names, or a number, is not a step."""
    assert problems(
        rules("a: {from: x, transform: {upper: null, lower: null}}", "b: {from: x, transform: [5]}")
    ) == [
        at(
            3,
            "request.a.transform: a step is a name (upper) or one name with its arguments ({table: gender})",
        ),
        at(
            4,
            "request.b.transform[0]: a step is a name (upper) or one name with its arguments "
            "({table: gender})",
        ),
    ]


@pytest.mark.parametrize(
    ("step", "messages"),
    [
        # arguments given to a step that takes none
        ("{upper: yes}", ["request.a.transform.upper: 'upper' takes no arguments"]),
        ("{string: 1}", ["request.a.transform.string: 'string' takes no arguments"]),
        # arguments that are not a mapping
        ("{date: [iso]}", ["request.a.transform.date: expected a mapping of keys, got a list"]),
        # a required argument missing
        ("{date: {from: iso}}", ["request.a.transform.date: missing required key 'to'"]),
        ("{split: {index: 1}}", ["request.a.transform.split: missing required key 'separator'"]),
        # an unknown argument
        (
            "{date: {from: iso, to: iso, zone: Asia/Macau}}",
            ["request.a.transform.date.zone: unknown key; allowed here: from, to"],
        ),
        (
            "{split: {separator: ',', idx: 0}}",
            [
                "request.a.transform.split.idx: unknown key (did you mean 'index'?); "
                "allowed here: index, separator"
            ],
        ),
        # a choice outside its list
        (
            "{date: {from: ISO, to: iso}}",
            [f"request.a.transform.date.from: 'ISO' is not one of: {DATE_FORMATS}"],
        ),
        (
            "{date: {from: iso, to: 'DD-MM-YYYY'}}",
            [
                "request.a.transform.date.to: 'DD-MM-YYYY' is not one of: DD/MM/YYYY, YYYY-MM-DD, "
                "YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日, date, epoch_ms, epoch_s, iso"
            ],
        ),
        (
            "{phone: {region: TW}}",
            ["request.a.transform.phone.region: 'TW' is not one of: CN, HK, MO"],
        ),
        (
            "{phone: {format: e.164}}",
            [
                "request.a.transform.phone.format: 'e.164' is not one of: e164, international, national"
            ],
        ),
        (
            "{hkid: region}",
            ["request.a.transform.hkid.part: 'region' is not one of: value, number, check"],
        ),
        (
            "{mainland_id: {part: age}}",
            [
                "request.a.transform.mainland_id.part: 'age' is not one of: value, region, birth_date, sex"
            ],
        ),
        # numbers out of range or of the wrong kind
        ("{decimal: {places: 11}}", ["request.a.transform.decimal.places: 11 is outside 0..10"]),
        (
            "{decimal: {places: two}}",
            ["request.a.transform.decimal.places: expected a whole number, got text ('two')"],
        ),
        (
            "{split: {separator: ',', index: 101}}",
            ["request.a.transform.split.index: 101 is outside -100..100"],
        ),
        ("{join: [',']}", ["request.a.transform.join: expected text, got a list"]),
        # time zones
        (
            "{datetime: {from: iso, to: iso, zone: Asia/Beijing}}",
            [
                "request.a.transform.datetime.zone: 'Asia/Beijing' is not a time zone name "
                "(e.g. Asia/Hong_Kong)"
            ],
        ),
        (
            "{datetime: {from: iso, to: iso, to_zone: HKT}}",
            [
                "request.a.transform.datetime.to_zone: 'HKT' is not a time zone name (e.g. Asia/Hong_Kong)"
            ],
        ),
        # money currencies
        (
            "{money: {currencies: [GBP]}}",
            [
                "request.a.transform.money.currencies: expected a list of CNY, EUR, HKD, MOP, TWD, USD"
            ],
        ),
        (
            "{money: {currencies: HKD}}",
            [
                "request.a.transform.money.currencies: expected a list of CNY, EUR, HKD, MOP, TWD, USD"
            ],
        ),
        # opencc configs
        (
            "{opencc: s2twp}",
            ["request.a.transform.opencc: 's2twp' is not one of: hk2s, s2hk, s2t, t2s"],
        ),
    ],
)
def test_bad_transform_arguments(problems: Problems, step: str, messages: list[str]) -> None:
    """Every kind of bad step argument is reported at the argument, with what is allowed."""
    assert problems(rules(f"a: {{from: x, transform: {step}}}")) == [at(3, m) for m in messages]


def test_opencc_on_a_declared_name(problems: Problems) -> None:
    """Script-converting a field listed under ``names:`` is refused when the mapping loads."""
    assert problems(
        rules(
            "n: {from: applicant.name, transform: {opencc: s2hk}}", head="names: [applicant.name]\n"
        )
    ) == [
        at(
            4,
            "request.n.transform.opencc: a person's name is never script-converted (OpenCC turns "
            "余丽萍 into 餘麗萍): carry it exactly as on the document",
        )
    ]


# --- code tables ---------------------------------------------------------------------------------


def test_unknown_table_name(problems: Problems) -> None:
    """A lookup in an undeclared table names the tables the mapping does declare."""
    head = "tables: {sex: tables/sex.yaml}\n"
    assert problems(rules("a: {from: x, transform: {table: gender}}", head=head)) == [
        at(4, "request.a.transform.table.name: no code table 'gender'; this mapping declares: sex")
    ]
    assert problems(rules("a: {from: x, transform: {table: sex}}")) == [
        at(
            3,
            "request.a.transform.table.name: no code table 'sex'; this mapping declares: "
            "none (declare them under 'tables:')",
        )
    ]


def test_missing_table_file(problems: Problems, mappings_dir: Path) -> None:
    """A declared table whose file is not there says where it looked."""
    assert problems(rules("a: x", head="tables: {cert: tables/cert-types.yaml}\n")) == [
        at(
            2,
            "tables.cert: code table file 'tables/cert-types.yaml' not found "
            f"(looked in {mappings_dir.resolve()})",
        )
    ]


def test_tables_must_be_a_mapping(problems: Problems) -> None:
    """``tables:`` maps names to files."""
    assert problems(rules("a: x", head="tables: [tables/sex.yaml]\n")) == [
        at(2, "tables: expected a mapping of keys, got a list")
    ]


TABLE_HEAD = "tables: {bad: tables/bad.yaml}\n"
BAD = "mappings/tables/bad.yaml"


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ('table: 1\nvalues:\n  "1": M\n  "1": F\n', [f"{BAD}:4: values: duplicate key '1'"]),
        (
            'table: 1\nvalues:\n  "1": [M, Male]\n',
            [f"{BAD}:3: values.1: a code must translate to a single value"],
        ),
        (
            'table: 1\nvalues:\n  "1": {en: M}\n',
            [f"{BAD}:3: values.1: a code must translate to a single value"],
        ),
        (
            'table: 2\nvalues: {"1": M}\n',
            [f"{BAD}:1: table: unsupported table format 2; expected 1"],
        ),
        (
            'table: "1"\nvalues: {"1": M}\n',
            [f"{BAD}:1: table: unsupported table format '1'; expected 1"],
        ),
        ('values: {"1": M}\n', [f"{BAD}:1: missing required key 'table'"]),
        ("table: 1\nvalues: {}\n", [f"{BAD}:2: values: lists no code"]),
        (
            'table: 1\ndefault: [U]\nvalues: {"1": M}\n',
            [f"{BAD}:2: default: the default must be a single value"],
        ),
        (
            'table: 1\nvalus: {"1": M}\n',
            [
                f"{BAD}:1: missing required key 'values'",
                f"{BAD}:2: valus: unknown key (did you mean 'values'?); allowed here: default, "
                "description, table, values",
            ],
        ),
        (
            'table: 1\nvalues: {"1": M\n',
            [f"{BAD}:3: invalid YAML: expected ',' or '}}', but got '<stream end>'"],
        ),
    ],
)
def test_malformed_table_file(
    problems: Problems, write_table: WriteTable, text: str, messages: list[str]
) -> None:
    """A broken code table is reported with the table's own file, line and key path."""
    write_table("bad.yaml", text)
    assert problems(rules("a: x", head=TABLE_HEAD)) == messages


def test_table_that_is_not_utf8(problems: Problems, mappings_dir: Path) -> None:
    """A table saved as GBK is refused at the line and column of its first byte that is not
    UTF-8."""
    (mappings_dir / "tables" / "bad.yaml").write_bytes("table: 1\nvalues: {男: M}\n".encode("gbk"))
    assert problems(rules("a: x", head=TABLE_HEAD)) == [
        f"{BAD}:2: not UTF-8 text: byte 0xc4 at column 10; save the file as UTF-8"
    ]


def test_a_broken_table_is_reported_once(problems: Problems, write_table: WriteTable) -> None:
    """Lookups in a declared table whose file is broken do not add "no code table" noise."""
    write_table("bad.yaml", 'table: 2\nvalues: {"1": M}\n')
    assert problems(rules("a: {from: x, transform: {table: bad}}", head=TABLE_HEAD)) == [
        f"{BAD}:1: table: unsupported table format 2; expected 1"
    ]


# --- names and allow -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "messages"),
    [
        ("names: applicant.name\n", ["names: expected a list, got text ('applicant.name')"]),
        (
            "names: [applicant..name]\n",
            ["names[0]: bad field path: unexpected '.' at position 11 of 'applicant..name'"],
        ),
        ("names: [{a: b}]\n", ["names[0]: expected text, got a mapping"]),
        ("names: ['']\n", ["names[0]: must not be empty"]),
    ],
)
def test_bad_names_entry(problems: Problems, head: str, messages: list[str]) -> None:
    """``names:`` is a list of field paths."""
    assert problems(rules("a: x", head=head)) == [at(2, m) for m in messages]


def test_bad_allow_kind(problems: Problems) -> None:
    """Only USCC codes can be allow-listed; a near miss gets a hint."""
    assert problems(rules("a: x", head="allow: {usc: [91350211M0000XUF46]}\n")) == [
        at(2, "allow.usc: unknown key (did you mean 'uscc'?); allowed here: uscc")
    ]
    assert problems(rules("a: x", head="allow: {uscc: 91350211M0000XUF46}\n")) == [
        at(2, "allow.uscc: expected a list, got text ('91350211M0000XUF46')")
    ]


# --- all at once ---------------------------------------------------------------------------------

MANY = """\
mapping: 1
tabels: {}
tables: {sex: tables/sex.yaml, cert: tables/missing.yaml}
names: [applicant..name]
request:
  a: {from: x, defualt: 1}
  b: {from: x, transform: uper}
  c: {from: x, transform: {table: gender}}
  d: {from: x, value: 1}
  e: {switch: mode, cases: [a, b]}
  f: {each: family}
  g: {from: x, when: {field: m, in: 1}}
  h: {from: x, required: "yes"}
  i.j: x
  i: y
  k: {from: 'a..b'}
  l: {from: x, transform: {date: {from: ISO, to: iso}}}
response:
  r: {from: x, transform: {phone: {region: TW}}}
"""


def test_every_problem_is_reported_at_once_in_line_order(
    problems: Problems, mappings_dir: Path
) -> None:
    """load_mapping lists every mistake of the file in one ConfigError, sorted by line."""
    found = problems(MANY)
    assert found == [
        at(
            2,
            "tabels: unknown key (did you mean 'tables'?); allowed here: allow, checks, description, "
            "headers, mapping, names, partner, report, request, response, service, status, "
            "status_query, supplement, tables",
        ),
        at(
            3,
            "tables.cert: code table file 'tables/missing.yaml' not found "
            f"(looked in {mappings_dir.resolve()})",
        ),
        at(4, "names[0]: bad field path: unexpected '.' at position 11 of 'applicant..name'"),
        at(
            6,
            f"request.a.defualt: unknown key (did you mean 'default'?); allowed here: {FIELD_KEYS}",
        ),
        at(
            7,
            "request.b.transform: unknown transform 'uper' (did you mean 'upper'?); "
            f"known: {KNOWN_TRANSFORMS}",
        ),
        at(8, "request.c.transform.table.name: no code table 'gender'; this mapping declares: sex"),
        at(
            9,
            "request.d: give exactly one of 'from' (a field of the input), 'value' (a constant), "
            "'format', 'concat', 'first', 'switch', 'each' or 'position'; found from, value",
        ),
        at(10, "request.e.cases: expected a mapping of keys, got a list"),
        at(11, "request.f: 'each' needs 'fields' (how to map every item)"),
        at(12, "request.g.when.in: 'in' takes a list of values"),
        at(13, "request.h.required: expected true or false, got text ('yes')"),
        at(15, "request.i: target 'i' overlaps 'i.j' (line 14)"),
        at(16, "request.k.from: bad source path: unexpected '.' at position 3 of 'a..b'"),
        at(17, f"request.l.transform.date.from: 'ISO' is not one of: {DATE_FORMATS}"),
        at(19, "response.r.transform.phone.region: 'TW' is not one of: CN, HK, MO"),
    ]
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
