"""SOAP header values against their WSDL facets (adapters.headerfacets, adapters.headerplan): the
verdict on one value is libxml2's on the whole header block, and a secret that breaks a facet is
refused before sending, named by its element, reference and facet, never by its value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.base import OutboundRequest
from adapters.body import BodyInvalid
from adapters.envelope import SOAP11
from adapters.headerfacets import value_check, wsdl_facets
from adapters.headerplan import HeaderSettings, plan_for
from adapters.soapheaders import HeaderParts, render
from adapters.wsdl import compile_operation, find_port, load_document
from federation.config.secrets import SecretRef

NS = "urn:tongban:test:header-facets"
WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:t="{NS}" targetNamespace="{NS}">
  <wsdl:types><xs:schema targetNamespace="{NS}" elementFormDefault="qualified">
    <xs:simpleType name="Key"><xs:restriction base="xs:string">
      <xs:pattern value="[A-Z]{{2}}-[0-9]{{4}}"/></xs:restriction></xs:simpleType>
    <xs:simpleType name="Name"><xs:restriction base="xs:string">
      <xs:pattern value="\\p{{Lu}}\\p{{Ll}}+"/></xs:restriction></xs:simpleType>
    <xs:simpleType name="Level"><xs:restriction base="xs:string">
      <xs:enumeration value="low"/><xs:enumeration value="high"/></xs:restriction></xs:simpleType>
    <xs:simpleType name="Pin"><xs:restriction base="xs:int">
      <xs:minInclusive value="1000"/><xs:maxInclusive value="9999"/></xs:restriction></xs:simpleType>
    <xs:element name="Cred"><xs:complexType><xs:sequence>
      <xs:element name="key" type="t:Key"/>
      <xs:element name="name" type="t:Name"/>
      <xs:element name="level" type="t:Level"/>
      <xs:element name="pin" type="t:Pin"/>
      <xs:element name="note"><xs:simpleType><xs:restriction base="xs:string">
        <xs:maxLength value="5"/></xs:restriction></xs:simpleType></xs:element>
    </xs:sequence>
    <xs:attribute name="scheme"><xs:simpleType><xs:restriction base="xs:string">
      <xs:pattern value="v[0-9]"/></xs:restriction></xs:simpleType></xs:attribute>
    </xs:complexType></xs:element>
    <xs:element name="Apply"><xs:complexType><xs:sequence>
      <xs:element name="ref" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="Applied"><xs:complexType><xs:sequence>
      <xs:element name="no" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
  </xs:schema></wsdl:types>
  <wsdl:message name="In"><wsdl:part name="p" element="t:Apply"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="p" element="t:Applied"/></wsdl:message>
  <wsdl:message name="Head"><wsdl:part name="cred" element="t:Cred"/></wsdl:message>
  <wsdl:portType name="PT"><wsdl:operation name="Apply">
    <wsdl:input message="t:In"/><wsdl:output message="t:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="t:PT"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Apply"><soap:operation soapAction="urn:t/Apply"/>
      <wsdl:input><soap:header message="t:Head" part="cred" use="literal"/>
        <soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="t:B">
    <soap:address location="http://example.invalid/"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""
VALID: dict[str, Any] = {
    "key": "GZ-2026",
    "name": "Ana",
    "level": "low",
    "pin": "4321",
    "note": "ok",
    "@scheme": "v1",
}
# (leaf, value, the facets it breaks)
CASES = [
    ("key", "GZ-2026", []),
    ("key", "gz-2026", ["pattern"]),
    ("key", "GZ-20261", ["pattern"]),
    ("name", "Ana", []),
    ("name", "Ólafur", []),
    ("name", "ana", ["pattern"]),
    ("level", "high", []),
    ("level", "High", ["enumeration"]),
    ("level", "low ", ["enumeration"]),
    ("pin", "9999", []),
    ("pin", 1000, []),
    ("pin", "10000", ["maxInclusive"]),
    ("pin", "999", ["minInclusive"]),
    ("pin", "12a", ["type"]),
    ("note", "12345", []),
    ("note", "123456", ["maxLength"]),
    ("note", "五個漢字啊", []),
    ("@scheme", "v9", []),
    ("@scheme", "v10", ["pattern"]),
]


@pytest.fixture(scope="module")
def wsdl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WSDL above, in a file of its own."""
    path = tmp_path_factory.mktemp("header-facets") / "cred.wsdl"
    path.write_text(WSDL, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def parts(wsdl: Path) -> HeaderParts:
    """Apply's header parts, compiled as the adapter compiles them."""
    port = find_port(load_document(wsdl, wsdl.parent), None, None)
    header = etree.QName("{urn:tongban:header}IdempotencyKey")
    return compile_operation(port, "Apply", action=None, header=header, version=SOAP11).headers


def libxml2_says_valid(wsdl: Path, parts: HeaderParts, values: dict[str, Any]) -> bool:
    """libxml2's verdict on the whole Cred block written from ``values``."""
    facets = wsdl_facets(wsdl)
    assert facets is not None
    block = "".join(render(parts, {"Cred": values}))
    return facets.problems(block, {"ns0": NS}) == []


@pytest.mark.parametrize(("leaf", "value", "broken"), CASES)
def test_a_value_is_judged_as_libxml2_judges_the_whole_block(
    wsdl: Path, parts: HeaderParts, leaf: str, value: Any, broken: list[str]
) -> None:
    """Each header leaf's verdict names the facets it breaks, and is empty exactly where
    libxml2 finds the block with that value valid."""
    check = value_check(wsdl_facets(wsdl), parts.parts["Cred"], ("Cred", leaf))
    assert check is not None
    assert check.broken(value) == broken
    if broken != ["type"]:  # the writer refuses those before libxml2 could see them
        assert libxml2_says_valid(wsdl, parts, {**VALID, leaf: value}) == (broken == [])


def test_a_pattern_the_quick_check_cannot_read_is_left_to_lxml(
    wsdl: Path, parts: HeaderParts
) -> None:
    """``\\p{Lu}`` is not translated to Python: lxml decides, and the verdict still names the
    pattern; a translated pattern is decided without lxml."""
    facets = wsdl_facets(wsdl)
    name = value_check(facets, parts.parts["Cred"], ("Cred", "name"))
    key = value_check(facets, parts.parts["Cred"], ("Cred", "key"))
    assert name is not None and name.quick is None and name.schema is not None
    assert key is not None and key.quick is not None and key.quick("GZ-2026")
    assert name.broken("Émile") == [] and name.broken("émile") == ["pattern"]


def request() -> OutboundRequest:
    """One attempt of exchange ex-1."""
    return OutboundRequest(
        exchange_id="ex-1", idempotency_key="k-1", service="S", payload={}, attempt=1
    )


def test_a_secret_breaking_a_facet_is_refused_naming_element_reference_and_facet(
    wsdl: Path, parts: HeaderParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A referenced value the WSDL forbids fails before sending, each problem naming the path,
    the reference and the facet, never the value; a value it allows is written."""
    fixed = {f"{{{NS}}}Cred/{leaf}": v for leaf, v in VALID.items() if leaf not in ("key", "pin")}
    refs = {
        leaf: SecretRef(kind="env", name=f"TB_TEST_CRED_{leaf.upper()}") for leaf in ("key", "pin")
    }
    settings = HeaderSettings(
        fixed=(*fixed.items(), *((f"{{{NS}}}Cred/{k}", r) for k, r in refs.items())), wsdl=wsdl
    )
    plan = plan_for(settings, parts, operation="Apply", body_paths=set())
    monkeypatch.setenv(refs["key"].name, "Leaky-Key-1")
    monkeypatch.setenv(refs["pin"].name, "0777")
    with pytest.raises(BodyInvalid) as bad:
        plan.fill(request(), {"ref": "R-1"})
    assert bad.value.problems == [
        "Cred.key: the value of {env:TB_TEST_CRED_KEY} breaks the WSDL's XML Schema facet pattern",
        "Cred.pin: the value of {env:TB_TEST_CRED_PIN} breaks the WSDL's XML Schema facet "
        "minInclusive",
    ]
    monkeypatch.setenv(refs["key"].name, "MO-1999")
    monkeypatch.setenv(refs["pin"].name, "1999")
    _, blocks = plan.fill(request(), {"ref": "R-1"})
    assert libxml2_says_valid(wsdl, parts, {**VALID, "key": "MO-1999", "pin": "1999"})
    assert "MO-1999" in "".join(blocks) and ">1999<" in "".join(blocks)
