"""Configuration problems in 简体, 繁體 and English: `tongban check` and `tongban mapping test` on
broken files say each problem in the reader's language, with the same file:line, key path, quoted
values and exit code as in English; what has no translation stays in English, and JSON does not
change with the language."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.registry import protocols
from federation.api.i18n import translations
from federation.cli import lang
from federation.cli.main import main
from federation.config import load_config
from federation.config.recognised import schema_error
from federation.domain.errors import ConfigError, Problem
from federation.domain.ids import new_id
from federation.domain.texts import Text, said
from tests.integration.test_soap_lifecycle import catalogue_copy
from tests.unit.test_cli_languages import one_exchange
from tests.unit.test_config import partner as partners

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n"


Files = Mapping[str, str]
Run = Callable[..., Result]


@pytest.fixture
def tongban(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Files], Run]:
    """Write ``files`` (name → text) in a config folder made the working directory, and give a
    runner of ``tongban --lang LANG ARGS`` there (no locale set: only --lang decides)."""
    monkeypatch.chdir(tmp_path)

    def setup(files: Files) -> Run:
        for name, text in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")

        def run(language: str, *args: str) -> Result:
            quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
            return CliRunner().invoke(main, ["--lang", language, *args], env=quiet)

        return run

    return setup


# name → (files, where the problem is, what it says in each language)
CASES: dict[str, tuple[Files, str, dict[str, str]]] = {
    "missing file": (
        {},
        "partners.yaml: ",
        {"en": "file not found", "zh-Hans": "找不到文件", "zh-Hant": "找不到檔案"},
    ),
    "invalid YAML": (
        {"partners.yaml": "version: 1\npartners:\n  - id: hk\n    name: a: b\n"},
        "partners.yaml:4: ",
        {
            "en": "invalid YAML: mapping values are not allowed here",
            "zh-Hans": "YAML 无效：此处不允许出现键值",
            "zh-Hant": "YAML 無效：此處不允許出現鍵值",
        },
    ),
    "missing required key": (
        {"partners.yaml": partners(endpoint=""), "mappings/hk.yaml": MAPPING},
        "partners.yaml:3: partners[0]: ",
        {
            "en": "missing required key 'endpoint'",
            "zh-Hans": "缺少必需的键 'endpoint'",
            "zh-Hant": "缺少必要的鍵 'endpoint'",
        },
    ),
    "unknown key": (
        {"partners.yaml": partners(colour="colour: red"), "mappings/hk.yaml": MAPPING},
        "partners.yaml:8: partners[0].colour: ",
        {
            "en": "unknown key; allowed here: auth, breaker, concurrency",
            "zh-Hans": "未知的键；此处允许：auth, breaker, concurrency",
            "zh-Hant": "未知的鍵；此處允許：auth, breaker, concurrency",
        },
    ),
    "bad enum value": (
        {"partners.yaml": partners(protocol="protocol: ftp"), "mappings/hk.yaml": MAPPING},
        "partners.yaml:6: partners[0].protocol: ",
        {
            "en": "'ftp' is not one of: rest, soap",
            "zh-Hans": "'ftp' 不是以下之一：rest, soap",
            "zh-Hant": "'ftp' 不是以下其中之一：rest, soap",
        },
    ),
    "wrong type": (
        {"partners.yaml": partners(concurrency="concurrency: many"), "mappings/hk.yaml": MAPPING},
        "partners.yaml:8: partners[0].concurrency: ",
        {
            "en": "expected a whole number, got text ('many')",
            "zh-Hans": "应为整数，实为文本（'many'）",
            "zh-Hant": "應為整數，實為文字（'many'）",
        },
    ),
    "out of range": (
        {"partners.yaml": partners(concurrency="concurrency: 0"), "mappings/hk.yaml": MAPPING},
        "partners.yaml:8: partners[0].concurrency: ",
        {
            "en": "0 is outside 1..1024",
            "zh-Hans": "0 超出 1..1024 的范围",
            "zh-Hant": "0 超出 1..1024 的範圍",
        },
    ),
    "mapping file": (
        {"partners.yaml": partners(), "mappings/hk.yaml": MAPPING.replace("request", "requets")},
        "mappings/hk.yaml:2: requets: ",
        {
            "en": "unknown key (did you mean 'request'?); allowed here: allow, checks",
            "zh-Hans": "未知的键（是否想写 'request'？）；此处允许：allow, checks",
            "zh-Hant": "未知的鍵（是否想寫 'request'？）；此處允許：allow, checks",
        },
    ),
    "mapping field": (
        {
            "partners.yaml": partners(),
            "mappings/hk.yaml": MAPPING.replace(
                "applicant.name", "{from: applicant.name, transform: [uper]}"
            ),
        },
        "mappings/hk.yaml:3: request.holder.name.transform[0]: ",
        {
            "en": "unknown transform 'uper' (did you mean 'upper'?); known: bool, count",
            "zh-Hans": "未知的转换 'uper'（是否想写 'upper'？）；已知的有：bool, count",
            "zh-Hant": "未知的轉換 'uper'（是否想寫 'upper'？）；已知的有：bool, count",
        },
    ),
    "catalogue": (
        {
            "partners.yaml": partners(),
            "mappings/hk.yaml": MAPPING.replace("\n", "\npartner: mo\n", 1),
        },
        "mappings/hk.yaml:1: partner: ",
        {
            "en": "mapping declares partner 'mo' but partners.yaml uses it for hk / TD-VL-RENEW",
            "zh-Hans": "映射声明的 partner 为 'mo'，但 partners.yaml 将它用于 hk / TD-VL-RENEW",
            "zh-Hant": "映射宣告的 partner 為 'mo'，但 partners.yaml 將它用於 hk / TD-VL-RENEW",
        },
    ),
}
COUNT = {"en": "1 error(s)", "zh-Hans": "1 个错误", "zh-Hant": "1 個錯誤"}


@pytest.mark.parametrize("case", CASES)
def test_check_says_each_problem_in_the_readers_language(
    tongban: Callable[[Files], Run], case: str
) -> None:
    """tongban check on a broken file: the same file:line and key path, the same quoted values
    and the same exit code in every language; the words in 简体, 繁體 or English."""
    files, where, said = CASES[case]
    run = tongban(files)
    results = {language: run(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    for language, result in results.items():
        assert result.stdout == ""
        assert f"{where}{said[language]}" in result.stderr, result.stderr
        assert result.stderr.rstrip("\n").endswith(COUNT[language][1:])  # "N error(s)"
        if language != "en":
            assert said["en"] not in result.stderr  # said, not left in English
    shape = {len(r.stderr.splitlines()) for r in results.values()}
    assert len(shape) == 1  # the same problems, one a line


def test_english_output_is_each_problems_message(tongban: Callable[[Files], Run]) -> None:
    """In English, check prints str(problem) for every problem, as before: file:line, key path
    and the message that JSON, logs and the journal keep."""
    bad = partners(protocol="protocol: ftp", colour="colour: red", concurrency="concurrency: 0")
    run = tongban({"partners.yaml": bad, "mappings/hk.yaml": MAPPING})
    with pytest.raises(ConfigError) as info:
        load_config(Path("."), protocols())
    lines = [str(p) for p in info.value.problems]
    assert run("en", "check").stderr == "\n".join([*lines, "3 error(s)"]) + "\n"
    assert info.value.problems[0].to_dict() == {
        "message": "'ftp' is not one of: rest, soap",
        "path": "partners[0].protocol",
        "file": "partners.yaml",
        "line": 6,
    }


def test_target_schema_problems_are_said_by_kind(tongban: Callable[[Files], Run]) -> None:
    """mapping test against a partner's JSON Schema: jsonschema's wrong-type and not-one-of
    messages in each language, values quoted as jsonschema quotes them; the mapped request
    (JSON on stdout) the same in every language."""
    services = "services:\n      TD-VL-RENEW: {mapping: mappings/hk.yaml, schema: schemas/hk.json}"
    name = {"type": "string", "enum": ["A", "B"]}
    schema = {"type": "object", "properties": {"holder": {"properties": {"name": name}}}}
    run = tongban(
        {
            "partners.yaml": partners(services=services),
            "mappings/hk.yaml": MAPPING,
            "schemas/hk.json": json.dumps(schema),
            "sample.json": '{"applicant": {"name": 5}}',
        }
    )
    args = ("mapping", "test", "mappings/hk.yaml", "sample.json")
    results = {language: run(language, *args) for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    assert len({r.stdout for r in results.values()}) == 1
    assert json.loads(results["en"].stdout) == {"holder": {"name": 5}}
    where = "schemas/hk.json: holder.name: "
    said = {
        "en": ("does not satisfy schemas/hk.json: ", "5 is not of type 'string'"),
        "zh-Hans": ("不符合 schemas/hk.json：", "5 的类型不是 'string'"),
        "zh-Hant": ("不符合 schemas/hk.json：", "5 的類型不是 'string'"),
    }
    allowed = {
        "en": "5 is not one of ['A', 'B']",
        "zh-Hans": "5 不在允许的值 ['A', 'B'] 之中",
        "zh-Hant": "5 不在允許的值 ['A', 'B'] 之中",
    }
    for language, result in results.items():
        lead, wrong_type = said[language]
        assert f"{where}{lead}{wrong_type}" in result.stderr, result.stderr
        assert f"{where}{lead}{allowed[language]}" in result.stderr


def test_a_problem_without_translation_stays_in_english() -> None:
    """A message no catalogue has (a template made up here; in use, words of a library tongban
    does not recognise) is printed in English, word for word, in every language; only a
    warning's tag changes. (check's own messages are said in each language:
    test_cli_contract_languages.)"""
    problem = Problem(
        text=said("%(name)r is a message no catalogue has", name="x"),
        path="request.a",
        file="m.yaml",
        line=3,
        severity="warning",
    )
    for language, tag in (("en", "warning: "), ("zh_Hans", "警告："), ("zh_Hant", "警告：")):
        gettext = translations(language, "cli").gettext
        shown = problem.shown(gettext, warning=gettext("warning: "))
        assert shown == f"m.yaml:3: {tag}request.a: 'x' is a message no catalogue has"


def test_an_unrecognised_yaml_message_keeps_its_words(tongban: Callable[[Files], Run]) -> None:
    """PyYAML's message of a kind tongban does not know is quoted as PyYAML wrote it."""
    run = tongban({"partners.yaml": "version: 1\na: &x 1\nb: &x 2\n"})
    for language, lead in (("en", "invalid YAML: "), ("zh-Hant", "YAML 無效：")):
        result = run(language, "check")
        assert result.exit_code == 1
        assert f"partners.yaml:3: {lead}second occurrence" in result.stderr


def test_warnings_are_tagged_in_the_readers_language(tongban: Callable[[Files], Run]) -> None:
    """A warning's tag and words change with the language, its file:line and key path do not;
    check still passes."""
    auth = "auth: {bearer: '{env:TB_LANG_TEST_UNSET}'}"
    run = tongban({"partners.yaml": partners(auth=auth), "mappings/hk.yaml": MAPPING})
    where = "partners.yaml:8: "
    path = "partners[0].auth.bearer: "
    said = {
        "en": f"{where}warning: {path}secret {{env:TB_LANG_TEST_UNSET}}: environment variable",
        "zh-Hans": f"{where}警告：{path}密钥 {{env:TB_LANG_TEST_UNSET}}：环境变量",
        "zh-Hant": f"{where}警告：{path}密鑰 {{env:TB_LANG_TEST_UNSET}}：環境變數",
    }
    for language in LANGUAGES:
        result = run(language, "check")
        assert result.exit_code == 0, result.output
        assert said[language] in result.stdout, result.stdout


def test_json_keeps_the_english_problems_in_every_language(
    tongban: Callable[[Files], Run], tmp_path: Path
) -> None:
    """journal show --format json on a broken catalogue: the same JSON, its problems in English
    with their file:line, whatever the language; journal show's text says them in 繁體."""
    run = tongban(
        {"partners.yaml": partners(protocol="protocol: ftp"), "mappings/hk.yaml": MAPPING}
    )
    path = str(tmp_path / "journal.sqlite")
    xid = new_id(1_790_000_000.0)
    asyncio.run(one_exchange(path, xid, "lang-config-1"))
    args = ("journal", "show", xid, "--journal", path, "--config", ".", "--format", "json")
    outputs = {language: run(language, *args) for language in LANGUAGES}
    assert {r.exit_code for r in outputs.values()} == {0}
    assert len({r.stdout for r in outputs.values()}) == 1
    today = json.loads(outputs["zh-Hant"].stdout)["today"]
    english = "partners.yaml:6: partners[0].protocol: 'ftp' is not one of: rest, soap"
    assert english in today["problems"]
    text = run("zh-Hant", *args[:-2]).stdout  # the same, for people
    assert "無法載入 --config . 處的設定：partners.yaml:6: partners[0].protocol: 'ftp' 不是" in text
    assert "  - partners.yaml:6: partners[0].protocol: 'ftp' 不是以下其中之一：rest, soap" in text


def test_a_translation_that_does_not_fit_falls_back_to_english() -> None:
    """A translation whose placeholders do not fit the values, or a message changed after its
    template was made, prints the English message rather than a broken one."""
    text = said("missing required key %(key)r", key="endpoint")
    wrong = {"missing required key %(key)r": "缺少 %(name)s"}.get
    assert text.render(lambda m: wrong(m) or m) == "missing required key 'endpoint'"
    problem = Problem(text=text, path="partners[0]", file="partners.yaml", line=3)
    assert problem.message == "missing required key 'endpoint'"
    assert "text" not in problem.to_dict()
    moved = replace(problem, message="something else")  # a template that no longer says it
    hant = translations("zh_Hant", "cli").gettext
    assert moved.shown(hant) == "partners.yaml:3: partners[0]: something else"
    assert problem.shown(hant) == "partners.yaml:3: partners[0]: 缺少必要的鍵 'endpoint'"


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("required", "'name' is a required property"),
        ("type", "5 is not of type 'string', 'null'"),
        ("enum", "'x' is not one of ['a', 'b']"),
        (
            "additionalProperties",
            "Additional properties are not allowed ('y', 'z' were unexpected)",
        ),
        ("pattern", "'a' does not match '^[0-9]+$'"),
        ("maximum", "9 is greater than the maximum of 5"),
        ("minLength", "'' should be non-empty"),
    ],
)
def test_jsonschema_messages_are_recognised_with_their_values(keyword: str, message: str) -> None:
    """Each kind of jsonschema message is said in 简体 with the values it quotes kept verbatim;
    an unknown keyword's message is left as it is."""
    text = schema_error(keyword, message)
    assert isinstance(text, Text) and str(text) == message
    hans = text.render(translations("zh_Hans", "cli").gettext)
    assert hans != message
    assert all(value in hans for _name, value in text.values)
    assert schema_error("dependentRequired", message) == message


def test_a_mapping_checked_against_a_soap_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped catalogue with a status query target the operation does not have: both of
    its problems in each language, the operation's and the elements' names as they are."""
    root = catalogue_copy(tmp_path / "config")
    mapping = root / "mappings/hk/td-vehicle-licence-renewal.yaml"
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(text.replace("  ref_no: {from", "  refno: {from", 1), encoding="utf-8")
    monkeypatch.chdir(root)
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    said = {
        "en": (
            "target 'refno' is not an element of the input of hk operation GetRenewalStatus",
            "the input of hk operation GetRenewalStatus requires 'ref_no', which no field of "
            "the mapping's status_query: section writes",
        ),
        "zh-Hans": (
            "目标 'refno' 不是 hk 操作 GetRenewalStatus 的输入中的元素",
            "hk 操作 GetRenewalStatus 的输入要求 'ref_no'，但映射的 status_query: 段落中没有"
            "任何字段写出它",
        ),
        "zh-Hant": (
            "目標 'refno' 不是 hk 操作 GetRenewalStatus 的輸入中的元素",
            "hk 操作 GetRenewalStatus 的輸入要求 'ref_no'，但映射的 status_query: 段落中沒有"
            "任何欄位寫出它",
        ),
    }
    for language in LANGUAGES:
        result = CliRunner().invoke(main, ["--lang", language, "check"], env=quiet)
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        for message in said[language]:
            [line] = [line for line in lines if line.endswith(f"status_query: {message}")]
            assert line.startswith("mappings/hk/td-vehicle-licence-renewal.yaml:")


def test_a_broken_golden_example_is_said_in_each_language(tongban: Callable[[Files], Run]) -> None:
    """mapping test on a golden example with a misspelt section: the example file named the same
    way, the key and the hint quoted as written, the exit code 1 in every language."""
    example = '{"application": {}, "expected": {}, "respons": {}}'
    run = tongban({"partners.yaml": partners(), "mappings/hk.yaml": MAPPING, "ex.json": example})
    said = {
        "en": "ex.json: unknown key 'respons' (did you mean 'response'?); sections with cases: ",
        "zh-Hans": "ex.json: 未知的键 'respons'（是否想写 'response'？）；可含用例的段落：",
        "zh-Hant": "ex.json: 未知的鍵 'respons'（是否想寫 'response'？）；可含測試案例的段落：",
    }
    for language in LANGUAGES:
        result = run(language, "mapping", "test", "mappings/hk.yaml", "ex.json")
        assert result.exit_code == 1
        assert result.stderr.startswith(said[language]), result.stderr
