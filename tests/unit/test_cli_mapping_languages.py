"""What a mapping says about one application, in 简体, 繁體 and English: the engine's own problems
(a required field missing, a switch without the case, each without a list), what a transform finds
in a value, what an identity check finds in a number (and its warnings), and how a golden
example's check reports them. `tongban mapping test` says them in the reader's language, the
console's playground in the viewer's; file:line, key paths and the values quoted stay as they are,
the English is what it was before, and the Problem's message (logs, journal, JSON) stays English."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from federation.api.console.playground import said_in
from federation.cli import lang
from federation.cli.main import main
from federation.domain.errors import MappingError
from federation.mapping.engine import load_mapping

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
SEX = 'table: 1\nvalues:\n  M: "1"\n  F: "2"\n'
MAPPING = """\
mapping: 1
allow: {uscc: [91350211M0000XUF46]}
tables: {sex: tables/sex.yaml}
request:
  required: {from: a.missing, required: true}
  switched: {switch: code, cases: {A: one, B: two}}
  people: {each: people, fields: {n: name}}
  int: {from: int, transform: int}
  places: {from: places, transform: {decimal: {places: 2}}}
  count: {from: count, transform: count}
  table: {from: table, transform: {table: sex}}
  split: {from: split, transform: {split: {separator: '-', index: 3}}}
  bytes: {from: bytes, transform: {max_length: {bytes: 4, encoding: gbk}}}
  date: {from: date, transform: {date: {from: DD/MM/YYYY, to: iso}}}
  key: {from: key, transform: {decrypt: {cipher: sm4-cbc, key: '{file:keys/bad.hex}'}}}
  id: {from: id, transform: mainland_id}
  hkid: {from: hkid, transform: hkid}
  uscc: {from: uscc, transform: uscc}
"""


def tongban(language: str, *args: str) -> Result:
    """``tongban --lang LANGUAGE ARGS`` in this process, no locale set (only --lang decides)."""
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", language, *args], env=quiet)


@pytest.fixture
def mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding mappings/t.yaml (a code table and a field key beside it), as cwd."""
    (tmp_path / "mappings/tables").mkdir(parents=True)
    (tmp_path / "mappings/keys").mkdir()
    (tmp_path / "mappings/t.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "mappings/tables/sex.yaml").write_text(SEX, encoding="utf-8")
    key = tmp_path / "mappings/keys/bad.hex"
    key.write_text("zzzzzzzz", encoding="utf-8")  # long enough to be read, and no hex
    os.chmod(key, 0o600)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(mapped: Path, sample: Any, *, name: str = "sample.json") -> dict[str, Result]:
    """``mapping test mappings/t.yaml SAMPLE`` in the three languages."""
    path = mapped / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
    return {
        language: tongban(language, "mapping", "test", "mappings/t.yaml", name)
        for language in LANGUAGES
    }


ENGINE = {"items": [], "code": "Z", "people": "x"}


def test_the_engines_problems_in_each_language(mapped: Path) -> None:
    """A required field missing, a switch value without a case and 'each' over a non-list: the
    English as before, the Chinese whole, with file:line, paths and quoted values kept."""
    results = run(mapped, ENGINE)
    assert {r.exit_code for r in results.values()} == {1}
    assert results["en"].stderr == (
        "mappings/t.yaml:5: a.missing: required, but missing (maps to required)\n"
        "mappings/t.yaml:6: code: no case for 'Z'; cases: A, B\n"
        "mappings/t.yaml:7: people: expected a list of items\n"
        "3 error(s)\n"
    )
    assert results["zh-Hans"].stderr == (
        "mappings/t.yaml:5: a.missing: 必填，但缺失（映射到 required）\n"
        "mappings/t.yaml:6: code: 没有对应 'Z' 的分支；cases 中有：A, B\n"
        "mappings/t.yaml:7: people: 应为由条目组成的列表\n"
        "3 个错误\n"
    )
    assert results["zh-Hant"].stderr == (
        "mappings/t.yaml:5: a.missing: 必填，但缺少（映射到 required）\n"
        "mappings/t.yaml:6: code: 沒有對應 'Z' 的分支；cases 中有：A, B\n"
        "mappings/t.yaml:7: people: 應為由項目組成的清單\n"
        "3 個錯誤\n"
    )


TRANSFORMS = {
    "a": {"missing": "x"},
    "int": True,
    "places": "1.234",
    "count": "x",
    "table": "Q",
    "split": "a-b",
    "bytes": "你好世界",
    "date": "99/99/9999",
    "key": "x",
}


def test_what_transforms_find_in_each_language(mapped: Path) -> None:
    """What a step says of a value (a kind, a number, a code table, parts, bytes, a date's shape,
    a field key): the words in the reader's language, the values the same in each."""
    results = run(mapped, TRANSFORMS)
    assert results["en"].stderr == (
        "mappings/t.yaml:8: int: a boolean is not a whole number\n"
        "mappings/t.yaml:9: places: 1.234 has more than 2 decimal places\n"
        "mappings/t.yaml:10: count: count needs a list, got text\n"
        "mappings/t.yaml:11: table: 'Q' is not in code table sex (mappings/tables/sex.yaml)\n"
        "mappings/t.yaml:12: split: has 2 part(s) separated by '-', no part 3\n"
        "mappings/t.yaml:13: bytes: takes 8 bytes in GBK, at most 4\n"
        "mappings/t.yaml:14: date: text shaped 99/99/9999 is not a date in the form DD/MM/YYYY"
        " (no such day)\n"
        "mappings/t.yaml:15: key: field key {file:keys/bad.hex} is not hex digits\n"
        "8 error(s)\n"
    )
    assert results["zh-Hans"].stderr == (
        "mappings/t.yaml:8: int: 布尔值不是整数\n"
        "mappings/t.yaml:9: places: 1.234 的小数超过 2 位\n"
        "mappings/t.yaml:10: count: count 需要列表，实为文本\n"
        "mappings/t.yaml:11: table: 'Q' 不在代码表 sex（mappings/tables/sex.yaml）中\n"
        "mappings/t.yaml:12: split: 按 '-' 分隔后有 2 个部分，没有序号为 3 的部分\n"
        "mappings/t.yaml:13: bytes: 以 GBK 写出占 8 字节，最多 4 字节\n"
        "mappings/t.yaml:14: date: 形如 99/99/9999 的文本不是 DD/MM/YYYY 格式的日期（没有这一天）\n"
        "mappings/t.yaml:15: key: 字段密钥 {file:keys/bad.hex} 不是十六进制数字\n"
        "8 个错误\n"
    )
    assert results["zh-Hant"].stderr == (
        "mappings/t.yaml:8: int: 布林值不是整數\n"
        "mappings/t.yaml:9: places: 1.234 的小數超過 2 位\n"
        "mappings/t.yaml:10: count: count 需要清單，實為文字\n"
        "mappings/t.yaml:11: table: 'Q' 不在代碼表 sex（mappings/tables/sex.yaml）中\n"
        "mappings/t.yaml:12: split: 按 '-' 分隔後有 2 個部分，沒有序號為 3 的部分\n"
        "mappings/t.yaml:13: bytes: 以 GBK 寫出佔 8 位元組，最多 4 位元組\n"
        "mappings/t.yaml:14: date: 形如 99/99/9999 的文字不是 DD/MM/YYYY 格式的日期（沒有這一天）\n"
        "mappings/t.yaml:15: key: 欄位密鑰 {file:keys/bad.hex} 不是十六進位數字\n"
        "8 個錯誤\n"
    )


IDS = {"a": {"missing": "x"}, "id": "110105194913310020", "hkid": "A123456(4)", "uscc": "Z"}


def test_what_identity_checks_find_in_each_language(mapped: Path) -> None:
    """An ID number's birth date, an HKID's check character and a USCC's length: the check
    named in words and its reason said, each in the reader's language."""
    results = run(mapped, IDS)
    assert results["en"].stderr == (
        "mappings/t.yaml:16: id: not a valid mainland id: birth date 19491331 is not a date\n"
        "mappings/t.yaml:17: hkid: not a valid hkid: check character is '4' but the number"
        " says '3'\n"
        "mappings/t.yaml:18: uscc: not a valid uscc: USCC must have 18 characters, not 1\n"
        "3 error(s)\n"
    )
    assert results["zh-Hans"].stderr == (
        "mappings/t.yaml:16: id: 不是有效的内地身份证号码：出生日期 19491331 不是有效日期\n"
        "mappings/t.yaml:17: hkid: 不是有效的香港身份证号码：校验位是 '4'，但按号码算应为 '3'\n"
        "mappings/t.yaml:18: uscc: 不是有效的统一社会信用代码：统一社会信用代码须为 18 个字符，"
        "而不是 1 个\n"
        "3 个错误\n"
    )
    assert results["zh-Hant"].stderr == (
        "mappings/t.yaml:16: id: 不是有效的內地身份證號碼：出生日期 19491331 不是有效日期\n"
        "mappings/t.yaml:17: hkid: 不是有效的香港身份證號碼：校驗位是 '4'，但按號碼算應為 '3'\n"
        "mappings/t.yaml:18: uscc: 不是有效的統一社會信用代碼：統一社會信用代碼須為 18 個字元，"
        "而不是 1 個\n"
        "3 個錯誤\n"
    )


WARNED = {"a": {"missing": "x"}, "id": "810000197804160214", "uscc": "91350211M0000XUF46"}


def test_warnings_of_a_mapped_application_in_each_language(mapped: Path) -> None:
    """A residence permit older than its region and an allow-listed USCC map, with warnings said
    in the reader's language; the mapped request on stdout is the same in each."""
    results = run(mapped, WARNED)
    assert {r.exit_code for r in results.values()} == {0}
    assert results["en"].stderr == (
        "mappings/t.yaml:16: warning: id: region 810000 did not exist in 1978 (residence permit"
        " issued from 2018-09-01: expected)\n"
        "mappings/t.yaml:18: warning: uscc: accepted by allow-list although its check character"
        " should be 'R'\n"
    )
    assert results["zh-Hans"].stderr == (
        "mappings/t.yaml:16: 警告：id: 地区代码 810000 在 1978 年尚不存在（居住证自 2018-09-01"
        " 起签发：属正常情况）\n"
        "mappings/t.yaml:18: 警告：uscc: 已按允许列表接受，尽管其校验位应为 'R'\n"
    )
    assert results["zh-Hant"].stderr == (
        "mappings/t.yaml:16: 警告：id: 地區代碼 810000 在 1978 年尚不存在（居住證自 2018-09-01"
        " 起簽發：屬正常情況）\n"
        "mappings/t.yaml:18: 警告：uscc: 已按允許清單接受，儘管其校驗位應為 'R'\n"
    )
    assert results["en"].stdout == results["zh-Hans"].stdout == results["zh-Hant"].stdout


def test_a_golden_examples_check_in_each_language(mapped: Path) -> None:
    """mapping test on a golden example: an error it expects but does not get, and those it
    gets unexpectedly, said in the reader's language around the located problems."""
    example = {
        "application": ENGINE,
        "expected_errors": [{"path": "code", "contains": "nothing"}],
    }
    results = run(mapped, example, name="mappings/t.examples/wrong.json")
    assert {r.exit_code for r in results.values()} == {1}
    assert results["en"].stderr == (
        "no error at 'code' containing 'nothing'\n"
        "unexpected error: mappings/t.yaml:5: a.missing: required, but missing (maps to required)\n"
        "unexpected error: mappings/t.yaml:7: people: expected a list of items\n"
    )
    assert results["zh-Hans"].stderr == (
        "'code' 处没有包含 'nothing' 的错误\n"
        "意外的错误：mappings/t.yaml:5: a.missing: 必填，但缺失（映射到 required）\n"
        "意外的错误：mappings/t.yaml:7: people: 应为由条目组成的列表\n"
    )
    assert results["zh-Hant"].stderr == (
        "'code' 處沒有包含 'nothing' 的錯誤\n"
        "意外的錯誤：mappings/t.yaml:5: a.missing: 必填，但缺少（映射到 required）\n"
        "意外的錯誤：mappings/t.yaml:7: people: 應為由項目組成的清單\n"
    )


def test_a_golden_example_that_fails_to_map_in_each_language(mapped: Path) -> None:
    """A golden example expecting a request the mapping cannot make: 'mapping failed' and the
    transform's reason in the reader's language."""
    example = {"application": {"a": {"missing": "x"}, "count": {}}, "expected": {}}
    results = run(mapped, example, name="mappings/t.examples/fails.json")
    where = "mappings/t.yaml:10: count: "
    assert f"mapping failed: {where}count needs a list, got an object\n" in results["en"].stderr
    assert f"映射失败：{where}count 需要列表，实为对象\n" in results["zh-Hans"].stderr
    assert f"映射失敗：{where}count 需要清單，實為物件\n" in results["zh-Hant"].stderr


def test_the_message_kept_for_logs_and_json_stays_english(mapped: Path) -> None:
    """The Problem a MappingError carries keeps the English message (to_dict, str): what logs,
    the journal and problem details hold is the same whatever the reader's language."""
    mapping = load_mapping(mapped / "mappings/t.yaml", display="mappings/t.yaml")
    with pytest.raises(MappingError) as caught:
        mapping.map_request({**ENGINE, "count": "x"})
    found = {p.path: p.to_dict()["message"] for p in caught.value.problems}
    assert found == {
        "a.missing": "required, but missing (maps to required)",
        "code": "no case for 'Z'; cases: A, B",
        "people": "expected a list of items",
        "count": "count needs a list, got text",
    }
    assert "a.missing: required, but missing (maps to required)" in str(caught.value)


def test_the_playground_says_them_in_the_viewers_language(mapped: Path) -> None:
    """The console's playground lists what the mapping found in the viewer's language, exactly
    the English lines in English."""
    mapping = load_mapping(mapped / "mappings/t.yaml", display="mappings/t.yaml")
    with pytest.raises(MappingError) as caught:
        mapping.map_request({"a": {"missing": "x"}, "date": "99/99/9999"})
    problems = caught.value.problems
    assert said_in("en", problems) == [str(p) for p in problems]
    assert said_in("zh_Hant", problems) == [
        "mappings/t.yaml:14: date: 形如 99/99/9999 的文字不是 DD/MM/YYYY 格式的日期（沒有這一天）"
    ]
    _out, warnings = mapping.map_request_checked(WARNED)
    assert said_in("zh_Hans", warnings)[1] == (
        "mappings/t.yaml:18: 警告：uscc: 已按允许列表接受，尽管其校验位应为 'R'"
    )
