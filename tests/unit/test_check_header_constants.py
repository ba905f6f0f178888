"""`tongban check` and the SOAP header values a mapping's ``headers:`` section writes, against the
facets of the WSDL's XML Schema, imported schemas included.

Guangdong's X-Road onboarding (the WSDL as published, its imports mapped by partners.yaml's schema
catalogue) with a deployment's copy of xroad.xsd that gives ``xrd:issue`` the province's
case-number pattern. A constant of the mapping's ``headers:`` off that pattern, an ``@objectType``
constant outside identifiers.xsd's enumeration (its header part written with the profile's client
identifiers beside it), a code table value that breaks the pattern, a golden example's case number
off it, and a constant its element's type refuses: each would be refused at every send (nothing
sent, rejected with reason=contract), and check refuses it up front, at the mapping's line, in each
language. Before, check passed them all.

And Macau's office, whose WSDL (as its spyne service publishes it) declares the header part
Cabecalho in its own types: a mapped Remetente constant over maxLength 100, written beside the
idempotency key partners.yaml places in the same part, is refused the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.foreign.spyne_nested_header import ServicoPedidosMacau
from tests.foreign.test_onboarding_soap import spyne_config, xroad_config
from tests.unit.test_check_contracts import edit
from tests.unit.test_cli_contract_languages import run
from tests.unit.test_header_schema_imports import restricted

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

MAPPING = "mappings/gd-amr/verify-certificate.yaml"
ISSUE = "  issue: {from: case_number, required: true}"
EXAMPLE = "mappings/gd-amr/verify-certificate.examples/01-valid-uscc.json"
WHAT = {
    "en": "in the SOAP headers of gd-amr-xroad operation verifyCertificate",
    "zh-Hans": "gd-amr-xroad 操作 verifyCertificate 的 SOAP 标头",
    "zh-Hant": "gd-amr-xroad 操作 verifyCertificate 的 SOAP 標頭",
}


CONSTANT = {"en": "the constant", "zh-Hans": "常量", "zh-Hant": "常數"}


def said(language: str, value: str, path: str, facet: str) -> str:
    """What check says of a header value breaking ``facet``, in ``language``."""
    what = WHAT[language]
    if language == "en":
        return f"{value}: header {path} breaks the WSDL's XML Schema facet {facet} {what}"
    breaks = "违反" if language == "zh-Hans" else "違反"
    limit = "约束" if language == "zh-Hans" else "約束"
    return f"{value}：{what} {path} {breaks} WSDL 的 XML Schema {limit} {facet}"


@pytest.fixture
def xroad(tmp_path: Path) -> Path:
    """The X-Road onboarding with xrd:issue restricted to a case-number pattern."""
    root = xroad_config(tmp_path / "xroad")
    restricted(root, "issue", '<xs:pattern value="GZ-[0-9]{4}-[0-9]{6}"/>')
    return root


def test_header_constants_that_break_facets_are_refused_at_their_lines(xroad: Path) -> None:
    """issue: GZ-26-1 (off the pattern) and client.@objectType: PERSON (not in the enumeration of
    identifiers.xsd, written beside the profile's client): each refused at its line, naming the
    element and the facet; constants that fit pass."""
    line = edit(
        xroad,
        MAPPING,
        ISSUE,
        "  issue: {value: GZ-26-1}\n  client.@objectType: {value: PERSON}",
    )
    for language, result in run(xroad, "check").items():
        assert result.exit_code == 1, result.output
        issue = said(language, f"{CONSTANT[language]} 'GZ-26-1'", "issue", "pattern")
        kind = said(language, f"{CONSTANT[language]} 'PERSON'", "client.@objectType", "enumeration")
        assert f"{MAPPING}:{line}: headers.issue: {issue}\n" in result.output, result.output
        assert f"{MAPPING}:{line + 1}: headers.client.@objectType: {kind}\n" in result.output
    edit(xroad, MAPPING, "GZ-26-1", "GZ-2026-000321")
    edit(xroad, MAPPING, "PERSON", "SUBSYSTEM")
    for result in run(xroad, "check").values():
        assert result.exit_code == 0, result.output
        assert "headers." not in result.output


def test_a_code_table_value_that_breaks_a_header_facet_is_refused(xroad: Path) -> None:
    """issue from the application's mode through a code table: the one value off the pattern is
    refused, naming the table, its key and value, at the field's line; the others are not."""
    (xroad / "mappings" / "tables").mkdir()
    (xroad / "mappings" / "tables" / "issue.yaml").write_text(
        "table: 1\ndescription: case numbers by mode\nvalues:\n"
        "  全程网办: GZ-2026-000001\n  异地代收代办: GZ-2026-000002\n  多地联办: GZ-26-3\n",
        encoding="utf-8",
    )
    edit(xroad, MAPPING, "request:\n", "tables:\n  issue: tables/issue.yaml\nrequest:\n")
    line = edit(xroad, MAPPING, ISSUE, "  issue: {from: mode, transform: {table: issue}}")
    table = {
        "en": "code table issue (mappings/tables/issue.yaml) maps '多地联办' to 'GZ-26-3'",
        "zh-Hans": "代码表 issue（mappings/tables/issue.yaml）把 '多地联办' 映射为 'GZ-26-3'",
        "zh-Hant": "代碼表 issue（mappings/tables/issue.yaml）把 '多地联办' 映射為 'GZ-26-3'",
    }
    for language, result in run(xroad, "check").items():
        assert result.exit_code == 1, result.output
        found = said(language, table[language], "issue", "pattern")
        assert f"{MAPPING}:{line}: headers.issue: {found}\n" in result.output, result.output
        assert "GZ-2026-00000" not in result.output
        assert result.output.count("headers.issue") == 1


def test_a_golden_example_value_that_breaks_a_header_facet_is_refused(xroad: Path) -> None:
    """The golden example's case number off the pattern: refused at the field's line (the value,
    the application's, is not quoted)."""
    edit(xroad, EXAMPLE, '"case_number": "GZ-2026-000321"', '"case_number": "GZ-26-321"')
    edit(xroad, EXAMPLE, '{"issue": "GZ-2026-000321"}', '{"issue": "GZ-26-321"}')
    line = edit(xroad, MAPPING, ISSUE, ISSUE)
    golden = {"en": "a golden example", "zh-Hans": "一个标准样例", "zh-Hant": "一個標準範例"}
    for language, result in run(xroad, "check").items():
        assert result.exit_code == 1, result.output
        found = said(language, golden[language], "issue", "pattern")
        assert f"{MAPPING}:{line}: headers.issue: {found}\n" in result.output, result.output
        assert "GZ-26-321" not in result.output


def test_a_header_constant_its_type_refuses_is_refused(xroad: Path) -> None:
    """identifiers.xsd giving subsystemCode xs:int (the profile's subsystems written as numbers):
    a constant 'abc' for client.subsystemCode, which the writer refuses at every send, is refused
    at its line; '42' passes."""
    ids = "partners/xroad/identifiers.xsd"
    edit(xroad, ids, 'name="subsystemCode" type="xs:string"', 'name="subsystemCode" type="xs:int"')
    edit(xroad, "partners.yaml", "subsystem: tongban}", "subsystem: '7'}")
    edit(xroad, "partners.yaml", "subsystem: certificate-verification", "subsystem: '8'")
    line = edit(xroad, MAPPING, ISSUE, "  client.subsystemCode: {value: abc}\n" + ISSUE)
    allows = {
        "en": "header client.subsystemCode is not a value its XML Schema type allows " + WHAT["en"],
        "zh-Hans": WHAT["zh-Hans"] + " client.subsystemCode 的 XML Schema 类型不允许该值",
        "zh-Hant": WHAT["zh-Hant"] + " client.subsystemCode 的 XML Schema 類型不允許該值",
    }
    for language, result in run(xroad, "check").items():
        assert result.exit_code == 1, result.output
        colon = ": " if language == "en" else "："
        found = f"{CONSTANT[language]} 'abc'{colon}{allows[language]}"
        assert f"{MAPPING}:{line}: headers.client.subsystemCode: {found}\n" in result.output
    edit(xroad, MAPPING, "{value: abc}", "{value: '42'}")
    for result in run(xroad, "check").values():
        assert result.exit_code == 0, result.output


def test_a_header_constant_over_the_wsdls_own_max_length_is_refused(tmp_path: Path) -> None:
    """Remetente (maxLength 100) given by the mapping's headers: instead of partners.yaml: 101
    characters refused at its line, 100 pass."""
    too_long = "TONGBAN-GZ-" + "W" * 90
    with ServicoPedidosMacau() as servico:
        root = spyne_config(tmp_path / "spyne", servico)
    literal = '        "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/Remetente": TONGBAN-GZ'
    edit(root, "partners.yaml", literal, "        {}")
    mapping = "mappings/mo-dsi/submeter-pedido.yaml"
    edit(
        root,
        mapping,
        "response:\n",
        f"headers:\n  Cabecalho.Remetente: {{value: {too_long}}}\nresponse:\n",
    )
    line = edit(root, mapping, "  Cabecalho.Remetente:", "  Cabecalho.Remetente:")
    what = {
        "en": "in the SOAP headers of mo-dsi-pedidos operation SubmeterPedido",
        "zh-Hans": "mo-dsi-pedidos 操作 SubmeterPedido 的 SOAP 标头",
        "zh-Hant": "mo-dsi-pedidos 操作 SubmeterPedido 的 SOAP 標頭",
    }
    for language, result in run(root, "check").items():
        assert result.exit_code == 1, result.output
        value = f"{CONSTANT[language]} {too_long!r}"
        found = said(language, value, "Cabecalho.Remetente", "maxLength").replace(
            WHAT[language], what[language]
        )
        assert f"{mapping}:{line}: headers.Cabecalho.Remetente: {found}\n" in result.output, (
            result.output
        )
    edit(root, mapping, too_long, too_long[:100])
    for result in run(root, "check").values():
        assert result.exit_code == 0, result.output
