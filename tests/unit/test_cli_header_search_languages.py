"""More problems said in 简体, 繁體 and English: the SOAP ``headers:``, ``idempotency:`` and
``xroad:`` settings' checks, the applicant search key of ``journal search``, and the load-time
problems of the transforms a mapping's field names. File:line, key paths and quoted values are the
same in every language; the English is word for word what it was before these were translated."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest

from federation.domain.ids import new_id
from tests.foreign.test_onboarding_soap import xroad_config
from tests.unit.test_cli_languages import one_exchange
from tests.unit.test_cli_settings_languages import said_in_each_language, tongban
from tests.unit.test_config import partner as partners

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
Said = Mapping[str, str]


# -- partners.yaml: a SOAP partner's header settings ------------------------------------------------

KEY = "      idempotency: {body: requestKey}"
XRD = "{http://x-road.eu/xsd/xroad.xsd}"
# name → (what replaces what in the X-Road onboarding's partners.yaml, the line's text, key path,
# what it says)
HEADER_CASES: dict[str, tuple[tuple[str, str], str, str, Said]] = {
    "a header path the WSDL lacks": (
        (KEY, f'      headers: {{"{XRD}client/memberCod": X}}\n{KEY}'),
        "headers:",
        f"partners[0].soap.headers.{XRD}client/memberCod: ",
        {
            "en": "operation verifyCertificate: client has no 'memberCod'; it has: ",
            "zh-Hans": "操作 verifyCertificate：client 中没有 'memberCod'；现有：",
            "zh-Hant": "操作 verifyCertificate：client 中沒有 'memberCod'；現有：",
        },
    ),
    "a fixed value for a part that holds elements": (
        (KEY, f'      headers: {{"{XRD}service": X}}\n{KEY}'),
        "headers:",
        f"partners[0].soap.headers.{XRD}service: ",
        {
            "en": "service holds elements (",
            "zh-Hans": "service 包含的是元素（",
            "zh-Hant": "service 包含的是元素（",
        },
    ),
    "the key aimed at an attribute of the body": (
        (KEY, "      idempotency: {body: '@requestKey'}"),
        "idempotency:",
        "partners[0].soap.idempotency.body: ",
        {
            "en": "operation verifyCertificate: the idempotency key goes into an element of the "
            "body, not an attribute",
            "zh-Hans": "操作 verifyCertificate：幂等键须放入正文的元素中，而不是属性中",
            "zh-Hant": "操作 verifyCertificate：冪等鍵須放入正文的元素中，而不是屬性中",
        },
    ),
    "a malformed key path": (
        (KEY, "      idempotency: {header: 'a//b'}"),
        "idempotency:",
        "partners[0].soap.idempotency.header: ",
        {
            "en": "'a//b': '/b' is not an element name, {namespace}Name or @attribute",
            "zh-Hans": "'a//b'：'/b' 不是元素名、{namespace}Name 或 @attribute",
            "zh-Hant": "'a//b'：'/b' 不是元素名稱、{namespace}Name 或 @attribute",
        },
    ),
    "an xroad: section without the profile": (
        ("      profile: xroad\n", ""),
        "xroad:",
        "partners[0].soap.xroad: ",
        {
            "en": "an xroad: section needs profile: xroad",
            "zh-Hans": "xroad: 段落需要 profile: xroad",
            "zh-Hant": "xroad: 段落需要 profile: xroad",
        },
    ),
}


@pytest.mark.parametrize("case", HEADER_CASES)
def test_soap_header_settings_problems_in_each_language(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tongban check on the X-Road onboarding with its header settings broken: the problem at
    the setting's line and key path in every language, paths and names as written."""
    (old, new), line_text, path, said = HEADER_CASES[case]
    root = xroad_config(tmp_path / "xroad")
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    assert old in text
    partners.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = next(i for i, row in enumerate(partners.read_text().splitlines(), 1) if line_text in row)
    monkeypatch.chdir(root)
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    said_in_each_language(results, f"partners.yaml:{line}: {path}", said)


# -- journal search --applicant: the search key ----------------------------------------------------


def test_search_by_applicant_without_a_key_in_each_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """journal search --applicant on a journal with no search key beside it: refused, exit 2,
    the key file and the variable named as they are; English exactly as before."""
    journal = tmp_path / "j.sqlite"
    asyncio.run(one_exchange(str(journal), new_id()))
    monkeypatch.chdir(tmp_path)
    args = ("journal", "search", "--journal", "j.sqlite", "--applicant", "A123456(7)")
    results = {
        language: tongban(language, *args, env={"TONGBAN_SEARCH_KEY": None})
        for language in LANGUAGES
    }
    assert {r.exit_code for r in results.values()} == {2}
    assert results["en"].stderr == (
        "Error: cannot search by applicant: no search key (j.sqlite.key or TONGBAN_SEARCH_KEY); "
        "the broker makes the key file when partners.yaml sets search.applicant_fields\n"
    )
    said = {
        "en": "cannot search by applicant: no search key (j.sqlite.key or TONGBAN_SEARCH_KEY)",
        "zh-Hans": "无法按申请人查询：没有查询密钥（j.sqlite.key 或 TONGBAN_SEARCH_KEY）",
        "zh-Hant": "無法按申請人查詢：沒有查詢密鑰（j.sqlite.key 或 TONGBAN_SEARCH_KEY）",
    }
    said_in_each_language(results, "", said)


def test_an_unreadable_search_key_in_each_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search key file that is not a key: refused with the reader's words around the
    library's own."""
    journal = tmp_path / "j.sqlite"
    asyncio.run(one_exchange(str(journal), new_id()))
    key = tmp_path / "j.sqlite.key"
    key.write_text("zz", encoding="utf-8")
    key.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    args = ("journal", "search", "--journal", "j.sqlite", "--applicant", "A123456(7)")
    results = {language: tongban(language, *args) for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {2}
    said = {
        "en": "cannot read the search key: ",
        "zh-Hans": "无法读取查询密钥：",
        "zh-Hant": "無法讀取查詢密鑰：",
    }
    said_in_each_language(results, "", said)


# -- a mapping field's transform, as it loads -------------------------------------------------------

# name → (the field's transform, the key path below the field, what it says)
TRANSFORM_CASES: dict[str, tuple[str, str, Said]] = {
    "a factor that is not a number": (
        "{multiply: abc}",
        "transform.multiply: ",
        {"en": "'abc' is not a number", "zh-Hans": "'abc' 不是数字", "zh-Hant": "'abc' 不是數字"},
    ),
    "an unknown time zone": (
        "{date: {from: epoch_s, to: iso, zone: Mars/Olympus}}",
        "transform.date.zone: ",
        {
            "en": "'Mars/Olympus' is not a time zone name (e.g. Asia/Hong_Kong)",
            "zh-Hans": "'Mars/Olympus' 不是时区名称（例如 Asia/Hong_Kong）",
            "zh-Hant": "'Mars/Olympus' 不是時區名稱（例如 Asia/Hong_Kong）",
        },
    ),
    "a fill of two characters": (
        "{pad: {width: 3, fill: ab}}",
        "transform.pad.fill: ",
        {
            "en": "the fill is one character",
            "zh-Hans": "填充字符须为一个字符",
            "zh-Hant": "填充字元須為一個字元",
        },
    ),
}


@pytest.mark.parametrize("case", TRANSFORM_CASES)
def test_transform_problems_in_each_language(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tongban check on a mapping whose field's transform is wrong: the problem at the field's
    line in every language; in English exactly the line and count it printed before."""
    transform, below, said = TRANSFORM_CASES[case]
    (tmp_path / "mappings").mkdir()
    mapping = (
        f"mapping: 1\nrequest:\n  holder.name: {{from: applicant.name, transform: {transform}}}\n"
    )
    (tmp_path / "mappings/hk.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(partners(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = {language: tongban(language, "check") for language in LANGUAGES}
    assert {r.exit_code for r in results.values()} == {1}
    where = f"mappings/hk.yaml:3: request.holder.name.{below}"
    assert results["en"].stderr == f"{where}{said['en']}\n1 error(s)\n"
    said_in_each_language(results, where, said)
