"""Richer expressions: steps in format placeholders and first alternatives, when against a code
table, string, width and byte-length steps, exact arithmetic, pick/count/position on arrays."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import ConfigError, MappingError, Problem
from federation.mapping import CompiledMapping, load_mapping

DISTRICTS = "table: 1\nvalues: {CW: Central and Western, YTM: Yau Tsim Mong, ST: Sha Tin}\n"


def compile_request(tmp_path: Path, fields: str) -> CompiledMapping:
    """A mapping whose request is ``fields``, with the HK district table as ``district``."""
    root = tmp_path / "mappings"
    (root / "tables").mkdir(parents=True, exist_ok=True)
    (root / "tables" / "district.yaml").write_text(DISTRICTS, encoding="utf-8")
    file = root / "expr.yaml"
    text = "mapping: 1\ntables: {district: tables/district.yaml}\nrequest:\n"
    file.write_text(text + textwrap.indent(textwrap.dedent(fields), "  "), encoding="utf-8")
    return load_mapping(file, display="mappings/expr.yaml")


def one(tmp_path: Path, field: str, data: dict[str, Any]) -> Any:
    """The value the single target ``a`` gets from ``data``."""
    return compile_request(tmp_path, f"a: {field}\n").map_request(data).get("a", "<absent>")


def problems(mapping: CompiledMapping, data: dict[str, Any]) -> list[Problem]:
    """The problems of a refused mapping."""
    with pytest.raises(MappingError) as caught:
        mapping.map_request(data)
    return list(caught.value.problems)


def load_problem(tmp_path: Path, field: str) -> str:
    """The text of the load error for a request field ``a``."""
    with pytest.raises(ConfigError) as caught:
        compile_request(tmp_path, f"a: {field}\n")
    return str(caught.value)


def test_placeholder_steps_fill_a_case_number(tmp_path: Path) -> None:
    """Each placeholder goes through its own steps: a date form, padding with a YAML flow map."""
    field = "{format: '{applied_on|date:YYYYMMDD}{serial|pad:{width: 4, fill: \"0\"}}'}"
    data = {"applied_on": "2025-04-03", "serial": 17}
    assert one(tmp_path, field, data) == "202504030017"


def test_placeholder_step_failure_names_the_placeholder(tmp_path: Path) -> None:
    """A placeholder whose step fails is refused at the field it read, describing the value's shape."""
    mapping = compile_request(tmp_path, "a: {format: 'N{born|date:YYYYMMDD}'}\n")
    [problem] = problems(mapping, {"born": "03/04/1990"})
    assert (problem.path, problem.line) == ("born", 4)
    assert problem.message.startswith("text shaped 99/99/9999")


def test_literal_braces_and_missing_placeholder(tmp_path: Path) -> None:
    """``{{``/``}}`` are braces; a missing placeholder value leaves the field out."""
    field = "{format: '{{{code|upper}}}'}"
    assert one(tmp_path, field, {"code": "ab"}) == "{AB}"
    assert one(tmp_path, field, {}) == "<absent>"


def test_first_transforms_only_the_chosen_alternative(tmp_path: Path) -> None:
    """An HKID is checked and split; a BIR, chosen when no HKID is held, is format-checked."""
    field = (
        "{first: [{from: hkid, transform: {hkid: number}}, {from: bir, transform: macau_bir}],"
        " required: true}"
    )
    mapping = compile_request(tmp_path, f"a: {field}\n")
    assert mapping.map_request({"hkid": "K802133(3)", "bir": "x"}) == {"a": "K802133"}
    assert mapping.map_request({"bir": "1234567(8)"}) == {"a": "1234567(8)"}
    [bad] = problems(mapping, {"hkid": "K802133(4)"})
    assert bad.path == "hkid" and "check character" in bad.message
    assert "required" in problems(mapping, {})[0].message


def test_when_tests_membership_of_a_code_table(tmp_path: Path) -> None:
    """in_table/not_in_table compare the value as text with the codes a table lists."""
    mapping = compile_request(
        tmp_path,
        """\
        hk: {value: HK, when: {field: district, in_table: district}}
        other: {from: district, when: {field: district, not_in_table: district}}
        """,
    )
    assert mapping.map_request({"district": "YTM"}) == {"hk": "HK"}
    assert mapping.map_request({"district": "花地瑪堂"}) == {"other": "花地瑪堂"}
    assert mapping.map_request({}) == {}
    assert "no code table 'parish'; this mapping declares: district" in load_problem(
        tmp_path, "{value: 1, when: {field: d, in_table: parish}}"
    )


@pytest.mark.parametrize(
    ("steps", "given", "expected"),
    [
        ("{pad: 6}", "42", "    42"),
        ("{pad: {width: 8, fill: '0'}}", 1234, "00001234"),
        ("{pad: {width: 5, fill: '*', side: right}}", "ab", "ab***"),
        ("{pad: 2}", "longer", "longer"),
        ("{substring: {start: 0, length: 6}}", "440304199001011234", "440304"),
        ("{substring: {start: 2}}", "陳大文", "文"),
        ("{replace: {old: '-', new: ''}}", "2025-04-03", "20250403"),
        (r"{regex_replace: {pattern: '^(\d{4})(\d{4})$', with: '\1 \2'}}", "91234567", "9123 4567"),
        ("halfwidth", "Ａ１２３４５６（３）　", "A123456(3) "),
        ("fullwidth", "A1 (3)", "Ａ１　（３）"),
        ("{max_length: 3}", "陳大文", "陳大文"),
        ("{max_length: {characters: 2, cut: true}}", "陳大文", "陳大"),
        ("{max_length: {bytes: 6, encoding: gbk}}", "陈大文", "陈大文"),
        ("{max_length: {bytes: 5, encoding: gbk, cut: true}}", "陈大文", "陈大"),
        ("{max_length: {bytes: 7, encoding: big5, cut: true}}", "陳大文A", "陳大文A"),
        ("{max_length: {bytes: 7, encoding: utf-8, cut: true}}", "陳大文", "陳大"),
    ],
)
def test_string_steps(tmp_path: Path, steps: str, given: Any, expected: str) -> None:
    """Padding, pieces, replacements, full/half width and length limits do what documents ask."""
    assert one(tmp_path, f"{{from: x, transform: {steps}}}", {"x": given}) == expected


@pytest.mark.parametrize(
    ("steps", "given", "message"),
    [
        ("{max_length: 2}", "陳大文", "has 3 characters, at most 2"),
        ("{max_length: {bytes: 5, encoding: gbk}}", "陈大文", "takes 6 bytes in GBK, at most 5"),
        ("{max_length: {bytes: 9, encoding: utf-8}}", "陳大文A", "takes 10 bytes in UTF-8"),
        (
            "{max_length: {bytes: 20, encoding: gbk}}",
            "李𨋢",
            "character 2 cannot be written in GBK",
        ),
        (
            "{max_length: {bytes: 20, encoding: big5}}",
            "陈",
            "character 1 cannot be written in Big5",
        ),
        ("{substring: {start: 5}}", "abc", "has 3 character(s), none from position 6"),
        ("{multiply: 100}", "12.3.4", "is not a number"),
        ("{divide: 3}", "100", "not an exact decimal"),
        ("{multiply: 100}", "9E+999999", "not a number in plain decimal notation"),  # no traceback
        ("count", "abc", "count needs a list, got text"),
    ],
)
def test_string_and_number_step_errors(
    tmp_path: Path, steps: str, given: Any, message: str
) -> None:
    """Too long, not encodable, too short or inexact values are refused at the field."""
    mapping = compile_request(tmp_path, f"a: {{from: x, transform: {steps}}}\n")
    [problem] = problems(mapping, {"x": given})
    assert message in problem.message
    assert problem.path == "x"


def test_big5_counts_hkscs_only_in_big5hkscs(tmp_path: Path) -> None:
    """𨋢 (lift) is in Big5-HKSCS (2 bytes) but not in plain Big5."""
    assert (
        one(
            tmp_path,
            "{from: x, transform: {max_length: {bytes: 2, encoding: big5hkscs}}}",
            {"x": "𨋢"},
        )
        == "𨋢"
    )


def test_fen_and_yuan_in_exact_decimals(tmp_path: Path) -> None:
    """Yuan → fen multiplies by 100 to a whole number; fen → yuan divides, 2 places kept."""
    mapping = compile_request(
        tmp_path,
        """\
        fen: {from: yuan, transform: [{multiply: 100}, int]}
        yuan: {from: fen, transform: [{divide: 100}, {decimal: {places: 2}}]}
        """,
    )
    out = mapping.map_request({"yuan": "48236.52", "fen": 1230})
    assert out == {"fen": 4823652, "yuan": Decimal("12.30")}
    assert str(out["yuan"]) == "12.30"
    [problem] = problems(mapping, {"yuan": "0.125"})
    assert "not a whole number" in problem.message


def test_pick_count_and_position(tmp_path: Path) -> None:
    """pick finds the attachment of a kind (or leaves the field to its default), count counts,
    position numbers the items of each from 1."""
    mapping = compile_request(
        tmp_path,
        """\
        photo: {from: files, transform: {pick: {where: {field: kind, equals: PHOTO}, take: url}}}
        proof: {from: files, default: NONE, transform: {pick: {where: [{field: kind, in: [PROOF]}]}}}
        hk: {from: files, transform: {pick: {where: {field: district, in_table: district}, take: url}}}
        must: {from: files, required: true, transform: {pick: {where: {field: kind, equals: X}}}}
        n: {from: files, transform: count}
        files_out:
          each: files
          fields:
            xh: {position: 1}
            lx: kind
        """,
    )
    files = [{"kind": "ID", "url": "u1", "district": "ST"}, {"kind": "PHOTO", "url": "u2"}]
    [problem] = problems(mapping, {"files": files})
    assert (problem.path, problem.message) == ("files", "required, but missing (maps to must)")
    files.append({"kind": "X"})
    assert mapping.map_request({"files": files}) == {
        "photo": "u2",
        "proof": "NONE",
        "hk": "u1",
        "must": {"kind": "X"},
        "n": 3,
        "files_out": [{"xh": 1, "lx": "ID"}, {"xh": 2, "lx": "PHOTO"}, {"xh": 3, "lx": "X"}],
    }


def test_error_paths_inside_each_read_like_the_yaml(tmp_path: Path) -> None:
    """A ``$.`` field failing inside each is named family[1].ref, not family[1].$.ref."""
    mapping = compile_request(
        tmp_path,
        """\
        family:
          each: family
          fields:
            ref: {from: $.ref, required: true}
            name: {from: name, required: true}
        """,
    )
    found = problems(mapping, {"family": [{"name": "陳小文"}, {}]})
    assert [(p.path, p.line) for p in found] == [
        ("family[0].ref", 7),
        ("family[1].ref", 7),
        ("family[1].name", 8),
    ]
    assert all(str(p).startswith("mappings/expr.yaml:") for p in found)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("{format: '{x|}'}", "bad format text: an empty step"),
        ("{format: '{x|pad:[}'}", "bad format text: the argument of 'pad'"),
        ("{format: 'a}b {x}'}", "a single '}'"),
        ("{format: '{x|uper}'}", "request.a.format: unknown transform 'uper'"),
        ("{first: [{from: a, transform: {pad: 0}}, b]}", "request.a.first[0].transform.pad.width"),
        ("{first: [{from: a, transform: upper}]}", "'first' needs a list of at least two"),
        ("{first: [{value: a}, b]}", "request.a.first[0]: missing required key 'from'"),
        ("{position: 1}", "'position' numbers the items of an array: use it inside 'each'"),
        ("{from: x, transform: {pad: {width: 3, fill: '00'}}}", "the fill is one character"),
        ("{from: x, transform: {regex_replace: {pattern: '(', with: ''}}}", "not a regular expr"),
        ("{from: x, transform: {regex_replace: {pattern: 'a', with: '\\2'}}}", "bad replacement"),
        ("{from: x, transform: {max_length: {bytes: 3, encoding: latin1}}}", "'latin1' is not one"),
        (
            "{from: x, transform: {max_length: {characters: 3, encoding: gbk}}}",
            "an encoding counts",
        ),
        ("{from: x, transform: {max_length: {}}}", "give 'characters' or 'bytes'"),
        ("{from: x, transform: {divide: 0}}", "a finite number other than 0"),
        ("{from: x, transform: {pick: {where: {field: k}}}}", "a condition needs exactly one of"),
        ("{from: x, transform: {replace: {old: '', new: a}}}", "must not be empty"),
        (
            "{from: x, transform: {pick: {where: {field: k, in_table: parish}}}}",
            "pick.where.in_table: no code table 'parish'",
        ),
    ],
)
def test_mistakes_stop_the_mapping_loading(tmp_path: Path, field: str, message: str) -> None:
    """Every mistake in the new constructs is reported with file:line when the mapping loads."""
    text = load_problem(tmp_path, field)
    assert message in text
    assert "mappings/expr.yaml:4:" in text


def test_an_alias_bomb_in_a_format_argument_is_refused(tmp_path: Path) -> None:
    """A step's argument is YAML, so aliases of aliases fit in one placeholder: refused when the
    mapping loads, at the field's line, by the limit every YAML tongban reads is held to."""
    levels = ["&a0 [l,l,l,l,l,l,l,l,l]"]
    levels += [f"&a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError) as caught:
        compile_request(tmp_path, f'a: {{format: "{{x|pad:[{", ".join(levels)}]}}"}}\n')
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("mappings/expr.yaml", 4)
    assert "aliases expand this file past 100000 values" in str(problem)
