"""More problems said in 简体, 繁體 and English: the SOAP ``headers:``, ``idempotency:`` and
``xroad:`` settings' checks, the applicant search key of ``journal search``, and the load-time
problems of the transforms a mapping's field names. File:line, key paths and quoted values are the
same in every language; the English is word for word what it was before these were translated."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation.cli import lang
from federation.cli.main import main
from tests.foreign.test_onboarding_soap import xroad_config

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
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
