"""What `tongban check` proves beyond loading, said in 简体, 繁體 and English: a `from:` path the
local application format lacks (with its did-you-mean, the fields there, or the warning for a
field only the golden examples carry), a scalar or a list written where the WSDL says otherwise,
a constant or a code table's value the partner's JSON Schema refuses, a generated example that
breaks the WSDL's XML Schema, and a fixed SOAP header value outside its XML Schema type. File:line,
key paths and the values, names and library messages quoted stay as they are; the English is word
for word what it was before these were translated."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.xsdtypes import BadValue, SimpleType, builtin, escape
from federation.api.i18n import translations
from federation.cli import lang
from federation.cli.main import main
from federation.domain.texts import Text
from tests.foreign.test_onboarding_soap import xroad_config
from tests.unit.test_check_contracts import REPO, edit

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
GZ = "mappings/gd/guangzhou-pension-transfer-in.yaml"
HK = "mappings/hk/td-vehicle-licence-renewal.yaml"
YN = "mappings/yn/kunming-branch-setup.yaml"
MO = "mappings/mo/dsi-criminal-record-certificate.yaml"
HKID = (
    "  owner.hkid.number: {from: applicant.documents.hk_id_card.number, required: true, "
    "transform: {hkid: number}}\n"
    "  owner.hkid.check_digit: {from: applicant.documents.hk_id_card.number, required: true, "
    "transform: {hkid: check}}\n"
)
Said = Mapping[str, str]


def run(root: Path, *args: str) -> dict[str, Result]:
    """`tongban --lang LANG ARGS` in ``root`` in each language, no locale set."""
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return {
            language: CliRunner().invoke(main, ["--lang", language, *args], env=quiet)
            for language in LANGUAGES
        }


def line_of(root: Path, name: str, text: str) -> int:
    """The 1-based line of ``name`` that holds ``text``."""
    rows = (root / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, row in enumerate(rows, 1) if text in row)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Result]]:
    """The shipped catalogue with each mistake below made once, and check's answers (one run
    per language: contract problems of every mapping are reported together)."""
    root = tmp_path_factory.mktemp("contracts") / "config"
    root.mkdir()
    shutil.copy(REPO / "partners.yaml", root / "partners.yaml")
    for part in ("mappings", "partners"):
        shutil.copytree(REPO / part, root / part)
    edit(root, GZ, "sqr.xm: {from: applicant.name,", "sqr.xm: {from: applicant.nmae,")
    edit(root, GZ, "sqr.txdz: applicant.address.text", "sqr.txdz: applicant.xyzzy")
    edit(root, HK, HKID, "  owner.hkid: {from: applicant.documents.hk_id_card.number}\n")
    edit(root, HK, "owner.email: applicant.email", "owner.email: attachments")
    edit(root, YN, "lyqd: {value: FZSJ}", "lyqd: {value: FZSX}")
    edit(root, "mappings/tables/mode-platform.yaml", '多地联办: "3"', '多地联办: "4"')
    edit(root, "mappings/tables/sex-mf.yaml", '"2": F', '"2": X')
    return root, run(root, "check")


TABLE = "代码表 mode（mappings/tables/mode-platform.yaml）"
YN_SCHEMA = "partners/schemas/yn-kunming-branch-setup.json"
# name → (file, the text on the field's line, key path, what it says)
CASES: dict[str, tuple[str, str, str, Said]] = {
    "a typo in a source path": (
        GZ,
        "sqr.xm:",
        "request.applicant.nmae: ",
        {
            "en": "'applicant.nmae' is not a field of the local application format "
            "(did you mean 'applicant.name'?)",
            "zh-Hans": "'applicant.nmae' 不是本地申请格式中的字段（是否想写 'applicant.name'？）",
            "zh-Hant": "'applicant.nmae' 不是本地申請格式中的欄位（是否想寫 'applicant.name'？）",
        },
    ),
    "a source path with no near name": (
        GZ,
        "sqr.txdz:",
        "request.applicant.xyzzy: ",
        {
            "en": "'applicant.xyzzy' is not a field of the local application format; "
            "fields here: address, birth_date,",
            "zh-Hans": "'applicant.xyzzy' 不是本地申请格式中的字段；此处的字段有：address, birth_date,",
            "zh-Hant": "'applicant.xyzzy' 不是本地申請格式中的欄位；此處的欄位有：address, birth_date,",
        },
    ),
    "a single value for an element with children": (
        HK,
        "owner.hkid:",
        "request.owner.hkid: ",
        {
            "en": "writes a single value to 'owner.hkid', which has child elements in "
            "hk operation RenewVehicleLicence",
            "zh-Hans": "把单个值写入 'owner.hkid'，但它在 hk 操作 RenewVehicleLicence 中带有子元素",
            "zh-Hant": "把單一值寫入 'owner.hkid'，但它在 hk 操作 RenewVehicleLicence 中具有子元素",
        },
    ),
    "a list for an element that occurs once": (
        HK,
        "owner.email:",
        "request.owner.email: ",
        {
            "en": "writes a list to 'owner.email', which occurs at most once in "
            "hk operation RenewVehicleLicence",
            "zh-Hans": "把列表写入 'owner.email'，但它在 hk 操作 RenewVehicleLicence 中最多只出现一次",
            "zh-Hant": "把清單寫入 'owner.email'，但它在 hk 操作 RenewVehicleLicence 中最多只出現一次",
        },
    ),
    "a constant the partner's schema refuses": (
        YN,
        "lyqd:",
        "request.lyqd: ",
        {
            "en": f"the constant 'FZSX', which {YN_SCHEMA} refuses for 'lyqd': 'FZSJ' was expected",
            "zh-Hans": f"常量 'FZSX'，而 {YN_SCHEMA} 不接受 'lyqd' 取此值：应为 'FZSJ'",
            "zh-Hant": f"常數 'FZSX'，而 {YN_SCHEMA} 不接受 'lyqd' 取此值：應為 'FZSJ'",
        },
    ),
    "a code table value the partner's schema refuses": (
        YN,
        "tbms:",
        "request.tbms: ",
        {
            "en": "code table mode (mappings/tables/mode-platform.yaml) maps '多地联办' to '4', "
            f"which {YN_SCHEMA} refuses for 'tbms': '4' is not one of ['1', '2', '3']",
            "zh-Hans": f"{TABLE}把 '多地联办' 映射为 '4'，而 {YN_SCHEMA} 不接受 'tbms' 取此值："
            "'4' 不在允许的值 ['1', '2', '3'] 之中",
            "zh-Hant": f"代碼表 mode（mappings/tables/mode-platform.yaml）把 '多地联办' 映射為 '4'，"
            f"而 {YN_SCHEMA} 不接受 'tbms' 取此值：'4' 不在允許的值 ['1', '2', '3'] 之中",
        },
    ),
    "a generated example that breaks the WSDL's facets": (  # lxml's words after it as they are
        MO,
        "requerente.sexo:",
        "request.requerente.sexo: ",
        {
            "en": "code table sex (mappings/tables/sex-mf.yaml) maps '2' to 'X': 'requerente.sexo' "
            "breaks the XML Schema of mo operation PedirCertificadoRegistoCriminal: Element ",
            "zh-Hans": "代码表 sex（mappings/tables/sex-mf.yaml）把 '2' 映射为 'X'：'requerente.sexo' "
            "不符合 mo 操作 PedirCertificadoRegistoCriminal 的 XML Schema：Element ",
            "zh-Hant": "代碼表 sex（mappings/tables/sex-mf.yaml）把 '2' 映射為 'X'：'requerente.sexo' "
            "不符合 mo 操作 PedirCertificadoRegistoCriminal 的 XML Schema：Element ",
        },
    ),
    "a golden example that breaks the WSDL's facets": (
        MO,
        "requerente.sexo:",
        "request.requerente.sexo: ",
        {
            "en": "a golden example: 'requerente.sexo' breaks the XML Schema of mo operation "
            "PedirCertificadoRegistoCriminal: Element '{urn:mo:gov:dsi:registo-criminal:2025}sexo'",
            "zh-Hans": "一个标准样例：'requerente.sexo' 不符合 mo 操作 PedirCertificadoRegistoCriminal "
            "的 XML Schema：Element '{urn:mo:gov:dsi:registo-criminal:2025}sexo'",
            "zh-Hant": "一個標準範例：'requerente.sexo' 不符合 mo 操作 PedirCertificadoRegistoCriminal "
            "的 XML Schema：Element '{urn:mo:gov:dsi:registo-criminal:2025}sexo'",
        },
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_check_says_each_contract_problem_in_the_readers_language(
    broken: tuple[Path, dict[str, Result]], case: str
) -> None:
    """Each mistake at its field's line and key path in every language, in the reader's words;
    the values, names and paths quoted as they are, the exit code 1 throughout."""
    root, results = broken
    name, text, path, said = CASES[case]
    where = f"{name}:{line_of(root, name, text)}: {path}"
    for language, result in results.items():
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert any(line.startswith(f"{where}{said[language]}") for line in lines), result.stderr
        if language != "en":
            assert said["en"] not in result.stderr  # said, not left in English


def test_the_same_problems_in_every_language(broken: tuple[Path, dict[str, Result]]) -> None:
    """One problem a line, as many in each language, with the same file:line and key path."""
    _root, results = broken
    where = {
        language: [line.split(": ")[0:2] for line in result.stderr.splitlines()[:-1]]
        for language, result in results.items()
    }
    assert where["zh-Hans"] == where["zh-Hant"] == where["en"]
    assert len(where["en"]) == 9


def test_a_field_only_the_golden_examples_carry_is_a_warning_in_each_language(
    tmp_path: Path,
) -> None:
    """The X-Road onboarding reads a field its golden examples carry but the format does not
    publish: a warning in the reader's words, and check still passes."""
    root = xroad_config(tmp_path / "xroad")
    where = "mappings/gd-amr/verify-certificate.yaml:11: "
    said = {
        "en": "warning: request.company.uscc: 'company' is not a field of the local application "
        "format (its golden examples carry it: publish it, or read a published field)\n",
        "zh-Hans": "警告：request.company.uscc: 'company' 不是本地申请格式中的字段（映射的标准样例"
        "带有它：请在格式中公布它，或改读已公布的字段）\n",
        "zh-Hant": "警告：request.company.uscc: 'company' 不是本地申請格式中的欄位（映射的標準範例"
        "帶有它：請在格式中公佈它，或改讀已公佈的欄位）\n",
    }
    for language, result in run(root, "check").items():
        assert result.exit_code == 0
        assert f"{where}{said[language]}" in result.stdout, result.stdout


XRD = "{http://x-road.eu/xsd/xroad.xsd}"


def test_a_fixed_header_value_of_the_wrong_type_in_each_language(tmp_path: Path) -> None:
    """A fixed value under soap: headers: that the header element's XML Schema type refuses (a
    boolean for xs:string): the element named as written, the reason in the reader's words."""
    root = xroad_config(tmp_path / "xroad")
    key = "      idempotency: {body: requestKey}"
    edit(root, "partners.yaml", key, f'      headers: {{"{XRD}protocolVersion": true}}\n{key}')
    where = f"partners.yaml:{line_of(root, 'partners.yaml', 'headers:')}: "
    path = f"partners[0].soap.headers.{XRD}protocolVersion: "
    said = {
        "en": f"{XRD}protocolVersion: expected text, got a boolean (true)",
        "zh-Hans": f"{XRD}protocolVersion：应为文本，实为布尔值（true）",
        "zh-Hant": f"{XRD}protocolVersion：應為文字，實為布林值（true）",
    }
    for language, result in run(root, "check").items():
        assert result.exit_code == 1
        assert result.stderr.startswith(f"{where}{path}{said[language]}\n"), result.stderr


def xs(name: str) -> SimpleType:
    """The XML Schema built-in type ``xs:name``."""
    found = builtin(name)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("write", "en", "hans", "hant"),
    [
        (
            lambda: xs("int").write("twelve"),
            "expected xs:int, got 'twelve'",
            "应为 xs:int，实为 'twelve'",
            "應為 xs:int，實為 'twelve'",
        ),
        (
            lambda: xs("unsignedByte").write(300),
            "int 300 is outside the range of xs:unsignedByte",
            "int 300 超出 xs:unsignedByte 的范围",
            "int 300 超出 xs:unsignedByte 的範圍",
        ),
        (
            lambda: xs("date").read("28/04/2025"),
            "'28/04/2025' is not xs:date",
            "'28/04/2025' 不是 xs:date",
            "'28/04/2025' 不是 xs:date",
        ),
        (
            lambda: xs("boolean").write({"a": 1}),
            "expected xs:boolean (true or false), got a mapping",
            "应为 xs:boolean（true 或 false），实为 键值映射",
            "應為 xs:boolean（true 或 false），實為 鍵值對應",
        ),
        (
            lambda: escape("A\x01"),
            "contains U+0001, which XML cannot carry",
            "含有 XML 无法承载的字符 U+0001",
            "含有 XML 無法承載的字元 U+0001",
        ),
    ],
)
def test_xml_schema_type_reasons_are_said_in_each_language(
    write: Callable[[], object], en: str, hans: str, hant: str
) -> None:
    """A value outside its XML Schema type: the English reason as before (logs, the journal),
    and the same reason from its template in 简体 and 繁體, the value quoted as it is."""
    with pytest.raises(BadValue) as info:
        write()
    reason = info.value.text
    assert str(info.value) == str(reason) == en
    assert isinstance(reason, Text)
    assert reason.render(translations("zh_Hans", "cli").gettext) == hans
    assert reason.render(translations("zh_Hant", "cli").gettext) == hant
