"""What was left in English inside the CLI's Chinese output, now in 简体 and 繁體: the problems
today's mapping finds (journal show and the remap dry run's preview), a malformed field path in a
mapping, `mapping test`'s verdicts, summary and diff labels, and '… is not <what>' with a space
only where a Latin word needs one. The English stays what it was."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from federation.api.i18n import translations
from federation.domain.ids import new_id
from federation.domain.models import Event, State, StateChange
from federation.domain.texts import Text, said
from replay.factory import open_journal
from tests.conftest import REPO
from tests.integration.test_soap_lifecycle import catalogue_copy
from tests.unit.test_cli_languages import one_exchange
from tests.unit.test_cli_settings_languages import LANGUAGES, said_in_each_language, tongban
from tests.unit.test_config import partner as partners

MISSING = {
    "en": "local_reference: required, but missing (maps to external_reference)",
    "zh-Hans": "local_reference: 必填，但缺失（映射到 external_reference）",
    "zh-Hant": "local_reference: 必填，但缺少（映射到 external_reference）",
}


async def rejected_exchange(path: str, xid: str) -> None:
    """One exchange for hk, rejected, whose application today's mapping cannot map."""
    await one_exchange(path, xid, key="verdict-1")
    j = open_journal(path)
    await j.open()
    try:
        rejected = Event(exchange_id=xid, kind="rejected", at=1_790_000_001.0)
        change = StateChange(state=State.REJECTED, release_lease=True)
        await j.record(xid, [rejected], change, owner="test")
    finally:
        await j.close()


def test_todays_mapping_problems_in_journal_show_and_the_remap_preview(tmp_path: Path) -> None:
    """journal show --reveal lists what today's mapping finds in the reader's language; without
    --reveal (and in the remap dry run, which previews the first) where, not why: why can quote
    the application. The JSON of journal show keeps the English."""
    path, xid = str(tmp_path / "journal.sqlite"), new_id(1_790_000_000.0)
    asyncio.run(rejected_exchange(path, xid))
    config = ("--journal", path, "--config", str(REPO))
    revealed = ("--reveal", "--reason", "ticket 4471")
    shows = {
        language: tongban(language, "journal", "show", xid, *config, *revealed)
        for language in LANGUAGES
    }
    dry = ("replay", xid, "--mode", "remap", "--dry-run", *config)
    previews = {language: tongban(language, *dry) for language in LANGUAGES}
    masked = {
        language: tongban(language, "journal", "show", xid, *config) for language in LANGUAGES
    }
    said_in_each_language(shows, "mappings/hk/td-vehicle-licence-renewal.yaml:24: ", MISSING)
    where = "mappings/hk/td-vehicle-licence-renewal.yaml:24: local_reference: ‹redacted›"
    for run in (*previews.values(), *masked.values()):
        assert run.exit_code == 0 and where in run.stdout, run.output
        assert "external_reference" not in run.stdout
    assert "今日映射仍然拒绝：" in previews["zh-Hans"].stdout
    assert "今日映射仍然拒絕：" in previews["zh-Hant"].stdout
    shown = tongban("zh-Hant", "journal", "show", xid, "--format", "json", *config, *revealed)
    assert shown.exit_code == 0, shown.output
    assert (
        f"mappings/hk/td-vehicle-licence-renewal.yaml:24: {MISSING['en']}"
        in json.loads(shown.stdout)["today"]["problems"]
    )


BAD_PATHS = """\
mapping: 1
request:
  a: {from: "x..y"}
  b: {from: "x."}
  c: {from: "[0].x"}
  "d..e": {from: x}
"""


def test_a_malformed_path_in_a_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad from: or target path says what is wrong with it in the reader's language, the path
    quoted as written."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/p.yaml").write_text(BAD_PATHS, encoding="utf-8")
    (tmp_path / "sample.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = {
        language: tongban(language, "mapping", "test", "mappings/p.yaml", "sample.json")
        for language in LANGUAGES
    }
    cases = {
        "mappings/p.yaml:3: request.a.from: ": {
            "en": "bad source path: unexpected '.' at position 3 of 'x..y'",
            "zh-Hans": "来源路径有误：'x..y' 的第 3 个字符是意外的 '.'",
            "zh-Hant": "來源路徑有誤：'x..y' 的第 3 個字元是意外的 '.'",
        },
        "mappings/p.yaml:4: request.b.from: ": {
            "en": "bad source path: 'x.' ends with '.'",
            "zh-Hans": "来源路径有误：'x.' 以 '.' 结尾",
            "zh-Hant": "來源路徑有誤：'x.' 以 '.' 結尾",
        },
        "mappings/p.yaml:5: request.c.from: ": {
            "en": "bad source path: '[0].x' starts with an index; name the field first",
            "zh-Hans": "来源路径有误：'[0].x' 以数组下标开头；请先写出字段名",
            "zh-Hant": "來源路徑有誤：'[0].x' 以陣列索引開頭；請先寫出欄位名稱",
        },
        "mappings/p.yaml:6: request.d..e: ": {
            "en": "bad target path: unexpected '.' at position 3 of 'd..e'",
            "zh-Hans": "目标路径有误：'d..e' 的第 3 个字符是意外的 '.'",
            "zh-Hant": "目標路徑有誤：'d..e' 的第 3 個字元是意外的 '.'",
        },
    }
    for where, words in cases.items():
        said_in_each_language(results, where, words)


def test_mapping_tests_verdicts_summary_and_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mapping test --all and on one golden example: the verdicts, the summary and the diff's
    labels in the reader's language, the file names and the JSON diff as they are."""
    root = catalogue_copy(tmp_path / "config")
    monkeypatch.chdir(root)
    mapping = "mappings/hk/td-vehicle-licence-renewal.yaml"
    example = "mappings/hk/td-vehicle-licence-renewal.examples/01-kiosk-guangzhou-12-months.json"
    data = json.loads((root / example).read_text(encoding="utf-8"))
    data["expected"]["application_date"] = "CHANGED"
    (root / example).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    one = {
        language: tongban(language, "mapping", "test", "--config", str(root), mapping, example)
        for language in LANGUAGES
    }
    every = {
        language: tongban(language, "mapping", "test", "--all", "--config", str(root))
        for language in LANGUAGES
    }
    labels = {
        "en": ("expected", "mapped"),
        "zh-Hans": ("预期", "映射结果"),
        "zh-Hant": ("預期", "映射結果"),
    }
    diff = {k: f"--- {a}\n+++ {b}\n@@ -1,5 +1,5 @@\n" for k, (a, b) in labels.items()}
    said_in_each_language(one, "", diff)
    said_in_each_language(
        one, example, {"en": ": FAILED", "zh-Hans": "：失败", "zh-Hant": "：失敗"}
    )
    # --all: a verdict, then what failed indented under the name
    name = f"{mapping} ← td-vehicle-licence-renewal.examples/01-kiosk-guangzhou-12-months.json"
    failed = {"en": "FAIL", "zh-Hans": "失败", "zh-Hant": "失敗"}
    said_in_each_language(
        every,
        "",
        {k: f"{failed[k]} {name}\n     --- {a}\n     +++ {b}\n" for k, (a, b) in labels.items()},
    )
    ok = f"{mapping} ← td-vehicle-licence-renewal.examples/02-four-month-goods-vehicle.json"
    said_in_each_language(
        every, "", {"en": f"ok   {ok}", "zh-Hans": f"通过 {ok}", "zh-Hant": f"通過 {ok}"}
    )
    said_in_each_language(
        every,
        "",
        {
            "en": "golden examples, 1 failed",
            "zh-Hans": "个标准样例，1 个未通过",
            "zh-Hant": "個標準範例，1 個未通過",
        },
    )
    assert all(r.exit_code == 1 for r in (*one.values(), *every.values()))


# Every 'what' the configuration's checks of a text give '… is not <what>' (as said where
# Reader.text is called with a pattern), and one given as plain English.
WHATS: list[str | Text] = [
    said("a URL path"),
    said("an HTTP header name"),
    said("a header or parameter name"),
    said("an id (a-z, 0-9, -)"),
    said("a GB/T 2260 code"),
    said("a sha256 hex digest"),
    said("a URL path starting with /"),
    said("a variable name"),
    said("a namespaced element name such as %(example)s", example="{urn:x}RequestId"),
    "a sha256 hex digest",
]
# A Han character against a Latin letter or digit, with no space between
CRAMPED = re.compile(r"[\u4e00-\u9fff][A-Za-z0-9]|[A-Za-z0-9][\u4e00-\u9fff]")


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant"])
@pytest.mark.parametrize("what", WHATS, ids=str)
def test_is_not_what_reads_naturally(language: str, what: str | Text) -> None:
    """'… is not <what>' leaves no Han character against a Latin word, whichever 'what' it gets."""
    text = said("%(value)r is not %(what)s", value="x y", what=what)
    shown = text.render(translations(language, "cli").gettext)
    assert shown.startswith("'x y' ") and "is not" not in shown
    assert not CRAMPED.search(shown), shown


def test_is_not_what_on_the_command_line(tmp_path: Path) -> None:
    """tongban check on a bad region code and header name: the words around the value in the
    reader's language, a space only where a Latin word follows."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/hk.yaml").write_text(
        "mapping: 1\nrequest:\n  holder.name: applicant.name\n", encoding="utf-8"
    )
    yaml = partners(
        region='region: {code: "8X1", iso: CN-HK}', rest='rest: {idempotency_header: "bad name"}'
    )
    (tmp_path / "partners.yaml").write_text(yaml, encoding="utf-8")
    results = {
        language: tongban(language, "check", "--config", str(tmp_path)) for language in LANGUAGES
    }
    said_in_each_language(
        results,
        "partners.yaml:5: partners[0].region.code: ",
        {
            "en": "'8X1' is not a GB/T 2260 code",
            "zh-Hans": "'8X1' 无效，应为：GB/T 2260 代码",
            "zh-Hant": "'8X1' 無效，應為：GB/T 2260 代碼",
        },
    )
    said_in_each_language(
        results,
        "partners.yaml:8: partners[0].rest.idempotency_header: ",
        {
            "en": "'bad name' is not an HTTP header name",
            "zh-Hans": "'bad name' 无效，应为：HTTP 标头名称",
            "zh-Hant": "'bad name' 無效，應為：HTTP 標頭名稱",
        },
    )


OTHER_BAD_PATHS = """\
mapping: 1
names: ["x..y"]
request:
  a: {from: items, transform: {pick: {where: {field: "k.", equals: 1}, take: v}}}
"""


def test_a_malformed_path_in_names_and_a_pick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed path under names: and in a pick's condition: what is wrong with it in the
    reader's language too, not only the words before it."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/p.yaml").write_text(OTHER_BAD_PATHS, encoding="utf-8")
    (tmp_path / "sample.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = {
        language: tongban(language, "mapping", "test", "mappings/p.yaml", "sample.json")
        for language in LANGUAGES
    }
    english = results["en"].stderr + results["en"].stdout
    assert "bad field path: unexpected '.' at position 3 of 'x..y'" in english, english
    assert "'k.' ends with '.'" in english, english
    for language, ends, odd in (
        ("zh-Hans", "'k.' 以 '.' 结尾", "'x..y' 的第 3 个字符是意外的 '.'"),
        ("zh-Hant", "'k.' 以 '.' 結尾", "'x..y' 的第 3 個字元是意外的 '.'"),
    ):
        output = results[language].stderr + results[language].stdout
        assert ends in output and odd in output, output
        assert "ends with" not in output and "unexpected" not in output


def test_a_principals_key_digest_that_is_not_one(tmp_path: Path) -> None:
    """A principal's key_sha256 that is no digest: what it should be is said in the reader's
    language too (it was the one 'is not' whose 'what' stayed English)."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/hk.yaml").write_text(
        "mapping: 1\nrequest:\n  holder.name: applicant.name\n", encoding="utf-8"
    )
    principal = "principals:\n  - {id: ops-1, role: support, key_sha256: not-a-digest}\n"
    (tmp_path / "partners.yaml").write_text(partners() + principal, encoding="utf-8")
    results = {
        language: tongban(language, "check", "--config", str(tmp_path)) for language in LANGUAGES
    }
    said_in_each_language(
        results,
        "principals[0].key_sha256: ",
        {
            "en": "'not-a-digest' is not a sha256 hex digest",
            "zh-Hans": "'not-a-digest' 无效，应为：sha256 十六进制摘要",
            "zh-Hant": "'not-a-digest' 無效，應為：sha256 十六進位摘要",
        },
    )
