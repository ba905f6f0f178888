"""Each simple type's quick check against libxml2 on the same type: never valid where libxml2
says no, for built-ins and facets beyond those the catalogue's WSDLs use."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.facettypes import SchemaIndex, Unknown, simple_type

XS = "http://www.w3.org/2001/XMLSchema"

TYPES = {
    "date": '<xs:restriction base="xs:date"/>',
    "dateTime": '<xs:restriction base="xs:dateTime"/>',
    "boolean": '<xs:restriction base="xs:boolean"/>',
    "anyURI": '<xs:restriction base="xs:anyURI"/>',
    "int": '<xs:restriction base="xs:int"/>',
    "byte": '<xs:restriction base="xs:byte"/>',
    "unsignedLong": '<xs:restriction base="xs:unsignedLong"/>',
    "positiveInteger": '<xs:restriction base="xs:positiveInteger"/>',
    "intEnum": '<xs:restriction base="xs:int"><xs:enumeration value="4"/>'
    '<xs:enumeration value="-12"/></xs:restriction>',
    "intRange": '<xs:restriction base="xs:integer"><xs:minExclusive value="-3"/>'
    '<xs:maxInclusive value="250"/><xs:totalDigits value="3"/></xs:restriction>',
    "money": '<xs:restriction base="xs:decimal"><xs:fractionDigits value="2"/>'
    '<xs:minInclusive value="0"/></xs:restriction>',
    "ratio": '<xs:restriction base="xs:decimal"><xs:totalDigits value="4"/>'
    '<xs:minExclusive value="-1.5"/><xs:maxExclusive value="99.95"/></xs:restriction>',
    "decimal": '<xs:restriction base="xs:decimal"/>',
    "text": '<xs:restriction base="xs:string"><xs:minLength value="2"/>'
    '<xs:maxLength value="5"/></xs:restriction>',
    "code": '<xs:restriction base="xs:string"><xs:enumeration value="A b"/>'
    '<xs:enumeration value="é"/></xs:restriction>',
    "both": '<xs:restriction base="xs:string"><xs:pattern value="[a-c]+\\d?"/>'
    '<xs:length value="3"/></xs:restriction>',
    "exact": '<xs:restriction base="xs:string"><xs:length value="0"/>'
    '<xs:pattern value="a*"/></xs:restriction>',
}
SAMPLES = [
    "",
    " ",
    "0",
    "1",
    "-0",
    "+1",
    "01",
    "4",
    "-12",
    "127",
    "128",
    "-129",
    "250",
    "251",
    "-3",
    "-2",
    "1.5",
    "1.50",
    "99.95",
    "99.94",
    "-1.5",
    "-1.49",
    "0.00",
    "-0.00",
    "5794.00",
    "5794.001",
    "1.",
    ".5",
    "1e2",
    "١",
    "１",
    "true",
    "false",
    "TRUE",
    "2025-04-28",
    "2024-02-29",
    "2023-02-29",
    "0001-01-01",
    "0000-01-01",
    "9999-12-31",
    "2025-04-28Z",
    "2025-04-28+14:00",
    "2025-04-28+14:30",
    "2025-04-28T24:00:00",
    "2025-04-28T23:59:60",
    "2025-04-28T10:00:00.1234567+08:00",
    "2025-04-28T10:00:00-00:00",
    "18446744073709551615",
    "18446744073709551616",
    "999999999999999999",
    "tbfile://mo/a.pdf",
    "http://x:99/a",
    "http://x:/a",
    "urn:x",
    "a b",
    "A b",
    "é",
    "e",
    "abc",
    "ab1",
    "ab",
    "abcd5",
    "aaa",
    "\t1",
    "1\n",
    "123456",
]
LEXICAL = st.text(st.sampled_from([*"0123456789-+.:TZe ab/", "١"]), max_size=12)


def schema(body: str) -> etree._Element:
    return etree.fromstring(
        f'<xs:schema xmlns:xs="{XS}" targetNamespace="urn:t" xmlns:t="urn:t">'
        f'<xs:simpleType name="T">{body}</xs:simpleType><xs:element name="v" type="t:T"/>'
        "</xs:schema>"
    )


def agrees(body: str, text: str) -> None:
    source = schema(body)
    index = SchemaIndex(source)
    _, check = simple_type(index, index.simple["T"], 0)
    el = etree.Element("{urn:t}v")
    el.text = text
    if check(text):
        assert etree.XMLSchema(source).validate(el), text


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("text", SAMPLES)
def test_samples(name: str, text: str) -> None:
    agrees(TYPES[name], text)


@pytest.mark.parametrize("name", TYPES)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=LEXICAL | st.dates().map(str) | st.datetimes().map(lambda d: d.isoformat()))
def test_generated(name: str, text: str) -> None:
    agrees(TYPES[name], text)


@pytest.mark.parametrize(
    "body",
    [
        '<xs:restriction base="xs:token"/>',
        '<xs:restriction base="xs:string"><xs:whiteSpace value="collapse"/></xs:restriction>',
        '<xs:restriction base="xs:string"><xs:pattern value="\\i\\c*"/></xs:restriction>',
        '<xs:restriction base="xs:int"><xs:pattern value="[0-9]"/></xs:restriction>',
        '<xs:restriction base="xs:int"><xs:enumeration value="04"/></xs:restriction>',
        '<xs:restriction base="xs:decimal"><xs:enumeration value="1.0"/></xs:restriction>',
        '<xs:restriction base="xs:date"><xs:minInclusive value="2000-01-01"/></xs:restriction>',
        '<xs:list itemType="xs:int"/>',
        '<xs:union memberTypes="xs:int xs:date"/>',
    ],
)
def test_unknown(body: str) -> None:
    """What is not judged exactly is left to libxml2 as a whole type."""
    index = SchemaIndex(schema(body))
    with pytest.raises(Unknown):
        simple_type(index, index.simple["T"], 0)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("date", "2024-02-29"),
        ("date", "2025-04-28+08:00"),
        ("dateTime", "2025-04-28T10:15:00.5Z"),
        ("boolean", "0"),
        ("anyURI", "tbfile://mo/2026/11/26/000418/a.pdf"),
        ("int", "-2147483648"),
        ("intEnum", "-12"),
        ("intRange", "-2"),
        ("money", "5794.00"),
        ("ratio", "-1.49"),
        ("text", "ab"),
        ("code", "A b"),
        ("both", "ab1"),
        ("exact", ""),
    ],
)
def test_quick_yes(name: str, text: str) -> None:
    """The common spellings are judged here, not left to libxml2."""
    index = SchemaIndex(schema(TYPES[name]))
    assert simple_type(index, index.simple["T"], 0)[1](text)
