"""The last configuration problems said in 简体, 繁體 and English: the checks of partners.yaml's
``rest:`` and ``soap:`` sections (the WSDL's own problems included), the journal setting, and a
mapping's ``checks:`` section. File:line, key paths, quoted values and exit codes are the same in
every language, and the English is word for word what it was before these were translated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.wsdl import REFUSED_FORMS
from federation.api.i18n import translations
from federation.cli import lang
from federation.cli.main import main
from federation.config.recognised import recognise
from federation.domain.texts import Text
from tests.integration.test_soap_lifecycle import catalogue_copy
from tests.unit.test_config import partner as partners

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n"
Said = Mapping[str, str]


def tongban(language: str, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """``tongban --lang LANGUAGE ARGS`` in this process, no locale set (only --lang decides)."""
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", language, *args], env={**quiet, **(env or {})})


def said_in_each_language(results: Mapping[str, Result], where: str, said: Said) -> None:
    """Each language's output has ``where`` followed by its words; the Chinese ones are not the
    English left as it was."""
    for language, result in results.items():
        output = result.stderr + result.stdout
        assert f"{where}{said[language]}" in output, output
        if language != "en":
            assert said["en"] not in output


# -- partners.yaml: the soap: section and its WSDL -------------------------------------------------

HK_SOAP = "      service: VehicleLicensingService\n      port: VehicleLicensingSoap11Port\n"
# the line of hk's soap.wsdl in the shipped partners.yaml: the problems below are said at lines
# counted from it, so a comment added above hk's entry does not move what the tests expect
WSDL_LINE = 1 + (Path(__file__).resolve().parents[2] / "partners.yaml").read_text(
    encoding="utf-8"
).splitlines().index("      wsdl: partners/wsdl/hk-td-vehicle-licensing.wsdl")
# name → (what replaces HK_SOAP's lines or the WSDL, where the problem is, what it says)
SOAP_CASES: dict[str, tuple[Mapping[str, str], str, Said]] = {
    "no such service": (
        {"service: VehicleLicensingService": "service: Registo"},
        f"partners.yaml:{WSDL_LINE + 1}: partners[9].soap.service: ",
        {
            "en": "no service 'Registo' in the WSDL; it has: VehicleLicensingService",
            "zh-Hans": "WSDL 中没有服务 'Registo'；现有：VehicleLicensingService",
            "zh-Hant": "WSDL 中沒有服務 'Registo'；現有：VehicleLicensingService",
        },
    ),
    "no such port": (
        {"port: VehicleLicensingSoap11Port": "port: Soap12"},
        f"partners.yaml:{WSDL_LINE + 2}: partners[9].soap.port: ",
        {
            "en": "no SOAP port 'Soap12' in service 'VehicleLicensingService'; "
            "it has: VehicleLicensingSoap11Port",
            "zh-Hans": "服务 'VehicleLicensingService' 中没有 SOAP 端口 'Soap12'；"
            "现有：VehicleLicensingSoap11Port",
            "zh-Hant": "服務 'VehicleLicensingService' 中沒有 SOAP 連接埠 'Soap12'；"
            "現有：VehicleLicensingSoap11Port",
        },
    ),
    "no such operation": (
        {"operation: RenewVehicleLicence": "operation: Renew"},
        f"partners.yaml:{WSDL_LINE + 9}: partners[9].services.TD-VL-RENEW.operation: ",
        {
            "en": "no operation 'Renew' in port VehicleLicensingSoap11Port: RenewVehicleLicence, ",
            "zh-Hans": "端口 VehicleLicensingSoap11Port 中没有操作 'Renew'；现有：RenewVehicleLicence, ",
            "zh-Hant": "連接埠 VehicleLicensingSoap11Port 中沒有操作 'Renew'；現有：RenewVehicleLicence, ",
        },
    ),
    "WSDL file not found": (
        {"hk-td-vehicle-licensing.wsdl": "hk.wsdl"},
        f"partners.yaml:{WSDL_LINE}: partners[9].soap.wsdl: ",
        {
            "en": "WSDL file 'partners/wsdl/hk.wsdl' not found",
            "zh-Hans": "找不到 WSDL 文件 'partners/wsdl/hk.wsdl'",
            "zh-Hant": "找不到 WSDL 檔案 'partners/wsdl/hk.wsdl'",
        },
    ),
    "bad version": (
        {
            "port: VehicleLicensingSoap11Port": "port: VehicleLicensingSoap11Port\n      version: 1.3"
        },
        f"partners.yaml:{WSDL_LINE + 3}: partners[9].soap.version: ",
        {
            "en": "1.3 is not one of: 1.1, 1.2",
            "zh-Hans": "1.3 不是以下之一：1.1, 1.2",
            "zh-Hant": "1.3 不是以下其中之一：1.1, 1.2",
        },
    ),
    "polling half given": (
        {"        poll_every: 10m\n": ""},
        f"partners.yaml:{WSDL_LINE + 6}: partners[9].services.TD-VL-RENEW: ",
        {
            "en": "status_operation and poll_every go together (polling calls status_operation "
            "that often)",
            "zh-Hans": "status_operation 与 poll_every 须同时设置（轮询即按此间隔调用 "
            "status_operation）",
            "zh-Hant": "status_operation 與 poll_every 須同時設定（輪詢即按此間隔呼叫 "
            "status_operation）",
        },
    ),
    "WSDL with a DOCTYPE": (
        {"<!--": '<!DOCTYPE d [<!ENTITY a "b">]>\n<!--'},
        f"partners.yaml:{WSDL_LINE}: partners[9].soap.wsdl: ",
        {
            "en": "hk-td-vehicle-licensing.wsdl: document type declarations are not accepted",
            "zh-Hans": "hk-td-vehicle-licensing.wsdl：不接受文档类型声明（DOCTYPE）",
            "zh-Hant": "hk-td-vehicle-licensing.wsdl：不接受文件類型宣告（DOCTYPE）",
        },
    ),
    "WSDL not well-formed": (
        {"</wsdl:definitions>": "</wsdl:definition>"},
        f"partners.yaml:{WSDL_LINE}: partners[9].soap.wsdl: ",
        {
            "en": "hk-td-vehicle-licensing.wsdl: not well-formed XML: Opening and ending tag "
            "mismatch",
            "zh-Hans": "hk-td-vehicle-licensing.wsdl：XML 格式不正确：Opening and ending tag "
            "mismatch",
            "zh-Hant": "hk-td-vehicle-licensing.wsdl：XML 格式不正確：Opening and ending tag "
            "mismatch",
        },
    ),
}
HK_WSDL = "partners/wsdl/hk-td-vehicle-licensing.wsdl"


def broken_catalogue(root: Path, edits: Mapping[str, str]) -> Path:
    """The shipped catalogue in ``root`` with ``edits`` made once each, in partners.yaml when it
    has the text, else in hk's WSDL."""
    catalogue_copy(root)
    for old, new in edits.items():
        for name in ("partners.yaml", HK_WSDL):
            text = (root / name).read_text(encoding="utf-8")
            if old in text:
                (root / name).write_text(text.replace(old, new, 1), encoding="utf-8")
                break
        else:
            raise AssertionError(f"{old!r} is in neither file")
    return root


@pytest.mark.parametrize("case", SOAP_CASES)
def test_soap_section_problems_in_each_language(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tongban check on the shipped catalogue with hk's soap: section or WSDL broken: the
    problem at the same line and key path in every language, the WSDL's names as they are."""
    edits, where, said = SOAP_CASES[case]
    monkeypatch.chdir(broken_catalogue(tmp_path / "config", edits))
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    said_in_each_language(results, where, said)


def test_a_soap_warning_in_each_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version that overrides the WSDL binding's: a warning, check passes in every language."""
    port = "port: VehicleLicensingSoap11Port"
    monkeypatch.chdir(
        broken_catalogue(tmp_path / "config", {port: f'{port}\n      version: "1.2"'})
    )
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {0}
    where = f"partners.yaml:{WSDL_LINE + 3}: "
    said = {
        "en": "warning: partners[9].soap.version: overrides the WSDL binding's SOAP 1.1",
        "zh-Hans": "警告：partners[9].soap.version: 覆盖 WSDL 绑定所用的 SOAP 1.1",
        "zh-Hant": "警告：partners[9].soap.version: 覆寫 WSDL 綁定所用的 SOAP 1.1",
    }
    said_in_each_language(results, where, said)


@pytest.mark.parametrize(
    "message",
    [
        "refusing to read /srv/other/a.xsd: it is outside /srv/config",
        "cannot read partners/wsdl/a.xsd: Permission denied",
        "a.wsdl: not well-formed XML: Premature end of data in tag definitions line 2",
        "a.wsdl: unreadable XML: unknown encoding 'x'",
        "a.wsdl: document type declarations are not accepted",
        "a.wsdl: document of 20971521 bytes is over 20971520",
        "a.wsdl: elements nested deeper than 256 levels",
        "a.wsdl: a text node is longer than 10000000 characters",
        "a.wsdl: encoding latin-1 is not accepted (UTF-8 or UTF-16)",
    ],
)
def test_the_wsdl_loaders_refusals_are_recognised(message: str) -> None:
    """Each kind of refusal of the hardened WSDL loader is said in 繁體 with the file names,
    sizes and the parser's own words kept; a refusal of another kind is left as it is."""
    text = recognise(message, REFUSED_FORMS)
    assert isinstance(text, Text) and str(text) == message
    hant = text.render(translations("zh_Hant", "cli").gettext)
    assert hant != message
    assert all(str(value) in hant for _name, value in text.values)
    assert recognise("the WSDL transport sends nothing", REFUSED_FORMS) == (
        "the WSDL transport sends nothing"
    )


# -- partners.yaml: the rest: section ----------------------------------------------------------------

REST_CASES: dict[str, tuple[Mapping[str, str], str, Said]] = {
    "header name": (
        {"rest": 'rest: {headers: {"bad name": x}}'},
        "partners.yaml:8: partners[0].rest.headers.bad name: ",
        {
            "en": "not an HTTP header name",
            "zh-Hans": "不是 HTTP 标头名称",
            "zh-Hant": "不是 HTTP 標頭名稱",
        },
    ),
    "idempotency header": (
        {"rest": 'rest: {idempotency_header: "bad name"}'},
        "partners.yaml:8: partners[0].rest.idempotency_header: ",
        {
            "en": "'bad name' is not an HTTP header name",
            "zh-Hans": "'bad name' 无效，应为：HTTP 标头名称",
            "zh-Hant": "'bad name' 無效，應為：HTTP 標頭名稱",
        },
    ),
    "path": (
        {"services": "services:\n      TD-VL-RENEW: {mapping: mappings/hk.yaml, path: renew}"},
        "partners.yaml:9: partners[0].services.TD-VL-RENEW.path: ",
        {
            "en": "'renew' is not a URL path starting with /",
            "zh-Hans": "'renew' 无效，应为：以 / 开头的 URL 路径",
            "zh-Hant": "'renew' 無效，應為：以 / 開頭的 URL 路徑",
        },
    ),
    "polling half given": (
        {"services": "services:\n      TD-VL-RENEW: {mapping: mappings/hk.yaml, status_path: /s}"},
        "partners.yaml:9: partners[0].services.TD-VL-RENEW: ",
        {
            "en": "status_path and poll_every go together (polling asks status_path that often)",
            "zh-Hans": "status_path 与 poll_every 须同时设置（轮询即按此间隔查询 status_path）",
            "zh-Hant": "status_path 與 poll_every 須同時設定（輪詢即按此間隔查詢 status_path）",
        },
    ),
}


@pytest.mark.parametrize("case", REST_CASES)
def test_rest_section_problems_in_each_language(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tongban check on a REST partner with a broken rest: key: one problem, said in each
    language; in English exactly the line and count it printed before."""
    overrides, where, said = REST_CASES[case]
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/hk.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(partners(**overrides), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    assert results["en"].stderr == f"{where}{said['en']}\n1 error(s)\n"
    said_in_each_language(results, where, said)


# -- the journal setting -----------------------------------------------------------------------------

SCHEMES = "memory:, postgres:, postgresql:, sqlite:"
# name → (the command, its whole English stderr as before, what the other languages say)
JOURNAL_CASES: dict[str, tuple[tuple[str, ...], str, Said]] = {
    "unknown scheme": (
        ("journal", "search", "--journal", "foo://x/y"),
        "Error: journal foo://…: unknown scheme (use {known})\n",
        {
            "zh-Hans": "错误：日志库 foo://…：未知的协议名（请用 {known}）\n",
            "zh-Hant": "錯誤：日誌庫 foo://…：未知的協定名稱（請用 {known}）\n",
        },
    ),
    "SQLite journal with a host": (
        ("journal", "migrate", "--journal", "sqlite://host/j.sqlite"),
        "Error: journal sqlite://host/j.sqlite: a SQLite journal is a file: sqlite:///PATH\n",
        {
            "zh-Hans": "错误：日志库 sqlite://host/j.sqlite：SQLite 日志库是一个文件，"
            "请写 sqlite:///PATH\n",
            "zh-Hant": "錯誤：日誌庫 sqlite://host/j.sqlite：SQLite 日誌庫是一個檔案，"
            "請寫 sqlite:///PATH\n",
        },
    ),
    "schema name": (
        ("journal", "search", "--journal", "postgresql://u@127.0.0.1:1/db?schema=a-b"),
        "Error: schema 'a-b': use letters, digits and _ only\n",
        {
            "zh-Hans": "错误：schema 'a-b'：只能使用字母、数字和 _\n",
            "zh-Hant": "錯誤：schema 'a-b'：只能使用字母、數字和 _\n",
        },
    ),
    "serve on a SQLite journal with a host": (
        ("serve", "--journal", "sqlite://host/j.sqlite", "--port", "0"),
        "journal sqlite://host/j.sqlite: a SQLite journal is a file: sqlite:///PATH\n1 error(s)\n",
        {
            "zh-Hans": "日志库 sqlite://host/j.sqlite：SQLite 日志库是一个文件，请写 sqlite:///PATH\n"
            "1 个错误\n",
            "zh-Hant": "日誌庫 sqlite://host/j.sqlite：SQLite 日誌庫是一個檔案，請寫 sqlite:///PATH\n"
            "1 個錯誤\n",
        },
    ),
    "workers on the in-memory journal": (
        ("serve", "--journal", "memory:", "--workers", "2", "--port", "0"),
        "journal memory:: --workers needs a journal the workers share: a SQLite file or "
        "PostgreSQL\n1 error(s)\n",
        {
            "zh-Hans": "日志库 memory:：--workers 需要各代理进程共享的日志库：SQLite 文件或 "
            "PostgreSQL\n1 个错误\n",
            "zh-Hant": "日誌庫 memory:：--workers 需要各代理程序共用的日誌庫：SQLite 檔案或 "
            "PostgreSQL\n1 個錯誤\n",
        },
    ),
}


@pytest.mark.parametrize("case", JOURNAL_CASES)
def test_journal_setting_problems_in_each_language(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal setting tongban cannot use, given to journal commands and serve: exit 2 and
    the setting quoted as given in every language; English exactly as before."""
    args, english, said = JOURNAL_CASES[case]
    monkeypatch.chdir(catalogue_copy(tmp_path / "config"))
    results = {language: tongban(language, *args) for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {2}
    # the schemes registered now: the built-in ones, and any a test registered before this one
    known = re.search(r"\(use ([^)]*)\)", results["en"].stderr)
    schemes = known.group(1) if known else ""
    assert not known or schemes.startswith(SCHEMES)
    assert results["en"].stderr == english.replace("{known}", schemes)
    for language in ("zh-Hans", "zh-Hant"):
        assert results[language].stderr == said[language].replace("{known}", schemes)
    assert not any(r.stdout for r in results.values())


# -- a mapping's checks: section -----------------------------------------------------------------------


def mapping_with(tmp_path: Path, checks: str, sample: str = "{}") -> None:
    """A REST partner whose mapping has ``checks``, and a sample application, in ``tmp_path``."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/hk.yaml").write_text(MAPPING + checks, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(partners(), encoding="utf-8")
    (tmp_path / "sample.json").write_text(sample, encoding="utf-8")


def test_a_broken_checks_section_in_each_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tongban check on a mapping whose checks: section names two rules in one check and a
    rule without an array: both problems at their lines, the rule names as written."""
    checks = (
        "checks:\n  both:\n    sum: {lines: 'a[].b', total: c}\n    date_order: {start: a, end: b}\n"
        "  flat:\n    sum: {lines: a.b, total: c}\n"
    )
    mapping_with(tmp_path, checks)
    monkeypatch.chdir(tmp_path)
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    assert results["en"].stderr == (
        "mappings/hk.yaml:5: checks.both: a check names exactly one rule: id_sex, id_birth_date, "
        "date_order, sum\n"
        "mappings/hk.yaml:9: checks.flat.sum.lines: name one array and the amount in each item: "
        "items[].amount\n2 error(s)\n"
    )
    rules = "id_sex, id_birth_date, date_order, sum"
    said_in_each_language(
        results,
        "mappings/hk.yaml:5: checks.both: ",
        {
            "en": f"a check names exactly one rule: {rules}",
            "zh-Hans": f"一项检查须恰好指定一条规则：{rules}",
            "zh-Hant": f"一項檢查須恰好指定一條規則：{rules}",
        },
    )
    said_in_each_language(
        results,
        "mappings/hk.yaml:9: checks.flat.sum.lines: ",
        {
            "en": "name one array and the amount in each item: items[].amount",
            "zh-Hans": "请指定一个数组及其每项中的金额：items[].amount",
            "zh-Hant": "請指定一個陣列及其每項中的金額：items[].amount",
        },
    )


CHECKS = """\
checks:
  dates:
    date_order: {start: applicant.from, end: applicant.to}
  total:
    sum: {lines: 'applicant.lines[].amount', total: applicant.total}
  named:
    date_order: {start: applicant.from, end: applicant.to}
    message: {zh-Hans: 日期不对, en: dates wrong}
"""
SAMPLE = (
    '{"applicant": {"name": "x", "from": "2025-02-01", "to": "2025-01-01",'
    ' "lines": [{"amount": "1"}, {"amount": "x"}], "total": "3"}}'
)


def test_what_checks_find_in_an_application_in_each_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mapping test on an application the checks refuse: each check's default message and
    name in the reader's language; a message the mapping writes itself is kept as written."""
    mapping_with(tmp_path, CHECKS, SAMPLE)
    monkeypatch.chdir(tmp_path)
    args = ("mapping", "test", "mappings/hk.yaml", "sample.json")
    results = {language: tongban(language, *args) for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    assert results["en"].stderr == (
        "mappings/hk.yaml:5: applicant.to: the end date is before the start date (check dates)\n"
        "mappings/hk.yaml:7: applicant.lines[1].amount: is not an amount (check total)\n"
        "mappings/hk.yaml:9: applicant.to: 日期不对 / dates wrong (check named)\n"
        "3 error(s)\n"
    )
    said = {
        "zh-Hans": (
            "mappings/hk.yaml:5: applicant.to: 结束日期早于开始日期（检查 dates）\n"
            "mappings/hk.yaml:7: applicant.lines[1].amount: 不是金额（检查 total）\n"
            "mappings/hk.yaml:9: applicant.to: 日期不对 / dates wrong（检查 named）\n"
            "3 个错误\n"
        ),
        "zh-Hant": (
            "mappings/hk.yaml:5: applicant.to: 結束日期早於開始日期（檢查 dates）\n"
            "mappings/hk.yaml:7: applicant.lines[1].amount: 不是金額（檢查 total）\n"
            "mappings/hk.yaml:9: applicant.to: 日期不对 / dates wrong（檢查 named）\n"
            "3 個錯誤\n"
        ),
    }
    for language, text in said.items():
        assert results[language].stderr == text
