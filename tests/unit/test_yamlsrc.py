"""YAML loading with line tracking and hand-edit-friendly scalars (federation.config.yamlsrc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.config.yamlsrc import Located, format_path, load_yaml, parse_yaml, walk
from federation.domain.errors import ConfigError


def parse(text: str) -> Located:
    return parse_yaml(text, display="partners.yaml")


def problems_of(text: str) -> list[str]:
    """The user-visible lines of the ConfigError that parsing ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


NESTED = """\
version: 1
partners:
  - id: hk
    region:
      code: "81"
  - id: mo
    services:
      MO-1: a.yaml
"""


def test_lines_of_keys_are_one_based_and_nested() -> None:
    """Every key, however deep, remembers the line it was written on."""
    doc = parse(NESTED)
    assert doc.line(("version",)) == 1
    assert doc.line(("partners",)) == 2
    assert doc.line(("partners", 0, "region", "code")) == 5
    assert doc.line(("partners", 1, "services", "MO-1")) == 8


def test_lines_of_list_items() -> None:
    """List items are located by index, at the line where the item starts."""
    doc = parse(NESTED)
    assert doc.line(("partners", 0)) == 3
    assert doc.line(("partners", 1)) == 6


def test_line_of_an_absent_path_falls_back_to_nearest_ancestor() -> None:
    """A missing key is reported at the line of the mapping that should have held it."""
    doc = parse(NESTED)
    assert doc.line(("partners", 1, "endpoint")) == 6
    assert doc.line(("partners", 1, "region", "code")) == 6
    assert doc.line(("nowhere",)) == 1


def test_problem_carries_file_line_and_formatted_path() -> None:
    """Located.problem renders as ``file:line: path: message``."""
    doc = parse(NESTED)
    problem = doc.problem(("partners", 0, "region", "code"), "not a code")
    assert str(problem) == "partners.yaml:5: partners[0].region.code: not a code"


def test_problem_can_be_a_warning() -> None:
    """A warning says so in its rendering."""
    problem = parse(NESTED).problem(("version",), "old", severity="warning")
    assert str(problem) == "partners.yaml:1: warning: version: old"


def test_duplicate_key_is_rejected_with_its_line() -> None:
    """A key written twice is an error at the second occurrence, not silently the last value."""
    assert problems_of("a: 1\nb: 2\na: 3\n") == ["partners.yaml:3: duplicate key 'a'"]


def test_every_duplicate_key_is_reported_with_its_path() -> None:
    """Duplicates in different mappings are all reported, each naming its enclosing path."""
    text = "a:\n  b: 1\n  b: 2\n  c:\n    - {x: 1, x: 2}\n"
    assert problems_of(text) == [
        "partners.yaml:3: a: duplicate key 'b'",
        "partners.yaml:5: a.c[0]: duplicate key 'x'",
    ]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("NO", "NO"),  # Norway, not false
        ("no", "no"),
        ("yes", "yes"),
        ("Yes", "Yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("12:30", "12:30"),  # would be sexagesimal 750 in YAML 1.1
        ("1_000", "1_000"),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("0x1F", 31),
        ("0o17", 15),
        ("012", 12),  # decimal, not octal
        ("08", 8),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("~", None),
        ("null", None),
        ("", None),
        ('"81"', "81"),
    ],
)
def test_scalars_follow_yaml_1_2_core(scalar: str, expected: object) -> None:
    """Only true/false are booleans, dates and YAML 1.1 words stay text, numbers are numbers."""
    value = parse(f"k: {scalar}\n").data["k"]
    assert value == expected
    assert type(value) is type(expected)


def test_syntax_error_names_file_and_line() -> None:
    """A YAML syntax error is a ConfigError pointing at file:line."""
    text = "version: 1\npartners:\n  - id: hk\n    name: a: b\n"
    assert problems_of(text) == [
        "partners.yaml:4: invalid YAML: mapping values are not allowed here"
    ]


def test_tab_indentation_is_a_syntax_error_with_line() -> None:
    """A tab used for indentation is reported on its line."""
    (problem,) = problems_of("version: 1\n\t- x\n")
    assert problem.startswith("partners.yaml:2: invalid YAML:")


def test_second_document_is_rejected() -> None:
    """A file with two YAML documents is an error rather than half-read."""
    (problem,) = problems_of("a: 1\n---\nb: 2\n")
    assert problem.startswith("partners.yaml:2: invalid YAML:")


@pytest.mark.parametrize(
    "value", ["!include other.yaml", "!!int abc", "!!float x", "!!python/object:os.system x"]
)
def test_unusable_tags_are_config_errors_with_line(value: str) -> None:
    """A tag tongban cannot use (``!include``, ``!!int abc``) is reported at its line, not raised."""
    (problem,) = problems_of(f"version: 1\nendpoint: {value}\n")
    assert problem.startswith("partners.yaml:2: ")


def test_merge_keys_from_two_anchors() -> None:
    """``<<: [*a, *b]`` merges both; the first anchor wins where they share a key."""
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n"
    assert parse(text).data["c"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("true: x\n", "True"),
        ("null: x\n", "None"),
        ("1.5: x\n", "1.5"),
        ("? [1, 2]\n: x\n", "[]"),
    ],
)
def test_non_text_keys_are_rejected_with_line(text: str, shown: str) -> None:
    """Keys that are booleans, nulls, floats or collections are errors naming the key."""
    assert problems_of(text) == [f"partners.yaml:1: keys must be text, not {shown}"]


def test_integer_keys_become_text() -> None:
    """An integer key such as a year or a code is read as its text."""
    doc = parse("2024: a\n81: b\n")
    assert doc.data == {"2024": "a", "81": "b"}
    assert doc.line(("81",)) == 2


def test_empty_document_is_none() -> None:
    """An empty or comment-only file parses to None rather than failing."""
    assert parse("").data is None
    assert parse("# nothing here\n").data is None


def test_merge_key_copies_an_anchor_and_own_keys_override() -> None:
    """``<<: *defaults`` merges the anchored mapping; keys written beside it win."""
    text = "defaults: &d {connect: 1s, read: 5s}\nhk:\n  <<: *d\n  read: 9s\n"
    assert parse(text).data["hk"] == {"connect": "1s", "read": "9s"}


def test_load_yaml_reads_a_file(tmp_path: Path) -> None:
    """load_yaml parses a UTF-8 file and shows the display name in problems."""
    file = tmp_path / "partners.yaml"
    file.write_text("name: {zh: 香港, en: Hong Kong}\n", encoding="utf-8")
    doc = load_yaml(file, display="cfg/partners.yaml")
    assert doc.data == {"name": {"zh": "香港", "en": "Hong Kong"}}
    assert doc.file == "cfg/partners.yaml"


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError saying so, not a traceback."""
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path / "nope.yaml", display="nope.yaml")
    assert str(info.value) == "nope.yaml: file not found"


def test_load_yaml_non_utf8_file(tmp_path: Path) -> None:
    """A file in another encoding (GBK) is reported at the line and column of its first byte
    that is not UTF-8."""
    file = tmp_path / "gbk.yaml"
    file.write_bytes("name: 广东\n".encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_yaml(file, display="gbk.yaml")
    assert str(info.value) == (
        "gbk.yaml:1: not UTF-8 text: byte 0xb9 at column 7; save the file as UTF-8"
    )


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("version",), "version"),
        (("partners", 3, "endpoint"), "partners[3].endpoint"),
        (
            ("partners", 0, "services", "TD-VL-RENEW", "mapping"),
            "partners[0].services.TD-VL-RENEW.mapping",
        ),
        ((0, "a"), "[0].a"),
        (("a", 1, 2), "a[1][2]"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    """Key paths render the way problems show them."""
    assert format_path(path) == text


def test_walk_visits_parents_before_children() -> None:
    """walk yields every value with its path, each parent before what it contains."""
    paths = [p for p, _ in walk(parse("a:\n  - b: 1\nc: 2\n").data)]
    assert paths == [(), ("a",), ("a", 0), ("a", 0, "b"), ("c",)]


def laughs(levels: int, *, indent: str = "") -> str:
    """A "billion laughs": nine 'lol's, then each line nine aliases of the line before."""
    lines = [f'{indent}a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{indent}a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    """Eight levels of nine aliases (billions of values once expanded) is one error naming the
    line of the first alias past 100,000 values, not a parse that eats the machine's memory."""
    assert problems_of("version: 1\n" + laughs(8)) == [
        "partners.yaml:7: aliases expand this file past 100000 values; "
        "write the repeated part out once"
    ]


def test_merge_keys_of_merge_keys_count_too() -> None:
    """``<<:`` merges of nine merges of the line before are refused the same way."""
    lines = ["a0: &a0 {k: 1}"]
    lines += [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 12)]
    (problem,) = problems_of("\n".join(lines) + "\n")
    assert problem.startswith("partners.yaml:6: aliases expand this file past 100000 values")


def test_aliases_below_the_limit_still_expand() -> None:
    """Four levels of the same (some 74,000 values) load: the limit is on size, not on aliases."""
    doc = parse(laughs(4))
    assert len(doc.data["a4"]) == 9 and doc.data["a4"][8][8][8][8] == ["lol"] * 9


def test_an_alias_and_a_merge_used_as_configuration_does() -> None:
    """Shared timeouts by alias and by merge key: each use is its own copy with its own line."""
    text = (
        "defaults: &t {connect: 1s, read: 5s}\n"
        "partners:\n"
        "  - {id: hk, timeouts: *t}\n"
        "  - id: mo\n"
        "    timeouts: {<<: *t, read: 9s}\n"
    )
    doc = parse(text)
    assert doc.data["partners"][0]["timeouts"] == {"connect": "1s", "read": "5s"}
    assert doc.data["partners"][1]["timeouts"] == {"connect": "1s", "read": "9s"}
    assert doc.line(("partners", 1, "timeouts", "read")) == 5


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: &a [1, *a]\n", "1: alias *a"),
        ("a:\n  b: &b\n    c: *b\n", "3: alias *b"),
        ("a: &m {<<: *m}\n", "1: alias *m"),
    ],
)
def test_an_alias_inside_its_own_anchor_is_an_error_with_line(text: str, said: str) -> None:
    """A value that contains itself is refused at the alias, not a RecursionError traceback."""
    assert problems_of(text) == [f"partners.yaml:{said} is inside its own anchor"]


def test_nesting_too_deep_is_an_error_with_line() -> None:
    """Three thousand nested lists, or aliases that nest past 100 levels together, are refused
    with the line, not a RecursionError traceback."""
    assert problems_of("a: " + "[" * 3000 + "]" * 3000 + "\n") == [
        "partners.yaml:1: nested more than 100 levels deep"
    ]
    deep = "[" * 60 + "]" * 60
    assert parse(f"a: &a {deep}\nb: [[[[[*a]]]]]\nc: &c {deep}\nd: [*a, *c]\n").data["d"][1]
    assert problems_of(f"a: &a {deep}\nb: {'[' * 60}*a{']' * 60}\n") == [
        "partners.yaml:2: nested more than 100 levels deep"
    ]
