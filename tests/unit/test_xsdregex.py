"""XML Schema patterns translated to Python: what is translated, what is refused, and that a
translation never matches a string libxml2's reading of the pattern rejects (and, where no
Unicode table is involved, matches exactly what libxml2 matches)."""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.facettypes import _URI
from adapters.xsdregex import compile_pattern, translate

XS = "http://www.w3.org/2001/XMLSchema"
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@cache
def libxml2(pattern: str, base: str = "xs:string") -> etree.XMLSchema:
    value = pattern.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    facet = f'<xs:pattern value="{value}"/>' if base == "xs:string" else ""
    return etree.XMLSchema(
        etree.fromstring(
            f'<xs:schema xmlns:xs="{XS}"><xs:element name="v"><xs:simpleType>'
            f'<xs:restriction base="{base}">{facet}</xs:restriction>'
            "</xs:simpleType></xs:element></xs:schema>"
        )
    )


def valid(schema: etree.XMLSchema, text: str) -> bool:
    el = etree.Element("v")
    el.text = text
    return bool(schema.validate(el))


@pytest.mark.parametrize(
    ("pattern", "source"),
    [
        ("[A-Z]{1,2}[0-9]{6}", "[A-Z]{1,2}[0-9]{6}"),
        ("[0-9A]", "[0-9A]"),
        ("[157][0-9]{6}\\(?[0-9]\\)?", "[157][0-9]{6}\\x28?[0-9]\\x29?"),
        ("$a^", "\\x24a\\x5e"),  # ordinary characters in XSD
        ("a.b", "a[^\\n\\r]b"),  # . excludes only newline and carriage return
        ("\\d+", "[0-9]+"),  # ASCII digits: fewer than Unicode's Nd, never more
        ("\\w", "[0-9A-Za-z]"),  # not _: XSD's \w excludes punctuation
        ("\\s\\S", "[\\x20\\x09\\x0a\\x0d][^\\x20\\x09\\x0a\\x0d]"),
        ("[^\\s]", "[^\\x20\\x09\\x0a\\x0d]"),
        ("[-a]", "[\\x2da]"),
        ("[a-]", "[a\\x2d]"),
        ("[\\d.]", "[0-9\\x2e]"),
        ("(ab)+", "(?:ab)+"),
        ("(a|b)?", "(?:a|b)?"),
        ("a{2,}", "a{2,}"),
        ("é{3}", "\\xe9{3}"),
    ],
)
def test_translated(pattern: str, source: str) -> None:
    assert translate(pattern) == source


@pytest.mark.parametrize(
    "pattern",
    [
        "\\i\\c*",  # XML name characters: libxml2's tables
        "\\p{Lu}",
        "\\P{Nd}",
        "[a-z-[aeiou]]",  # class subtraction
        "[^\\d]",  # an approximated escape, complemented
        "\\D",
        "\\W",
        "[a-c-e]",  # libxml2 reads this its own way
        "[\\d-z]",
        "a{2,1}",  # libxml2 compiles it, matching nothing Python would say
        "a**",
        "a{1}{2}",
        "(a|b)*",  # may backtrack badly: left to libxml2
        "([a-z]+)+",
        "a*b*c*",
        "a|",
        "()",
        "{",
        "}",
        "]",
        "[]a]",
        "[^]",
        "\\",
        "(a",
        "a)",
        "x" * 1001,
    ],
)
def test_refused(pattern: str) -> None:
    assert translate(pattern) is None


PATTERNS = [
    "[A-Z]{1,2}[0-9]{6}",
    "[0-9A]",
    "[157][0-9]{6}\\(?[0-9]\\)?",
    "[0-9a-f]{64}",
    "$a^",
    "a.b",
    "\\d{2,3}",
    "\\w+",
    "\\s?x\\S",
    "[^\\s]+",
    "[-a]b",
    "[a-]b",
    "(ab|c)?d",
    "[^abc]{2}",
    "[\\^\\-\\]\\[\\\\]",
    "\\.\\?\\*\\+\\(\\)\\{\\}\\|",
    "\\n\\r\\t",
    "é+",
    "[ä-ü]",
    "\U0001f600?",
]
ALPHABET = st.sampled_from(
    [*"abcdxyzAZ019-_.^$[]\\(){}|?*+ \t\n\r", "é", "ä", "ü", "٣", "０", "\u00a0", "\U0001f600"]
)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_never_wider_than_libxml2(pattern: str, data: st.DataObject) -> None:
    """A match here is a match for libxml2; where the pattern has no \\d or \\w the two agree."""
    source = translate(pattern)
    assert source is not None
    compiled = re.compile(source)
    matching = st.from_regex(compiled, fullmatch=True).filter(lambda t: not NOT_XML.search(t))
    text = data.draw(matching | st.text(ALPHABET, max_size=8))
    ours = compiled.fullmatch(text) is not None
    theirs = valid(libxml2(pattern), text)
    if ours:
        assert theirs, (pattern, text)
    if "\\d" not in pattern and "\\w" not in pattern:
        assert ours == theirs, (pattern, text)


def test_compile_pattern() -> None:
    compiled = compile_pattern("[0-9]{2}")
    assert compiled is not None and compiled.fullmatch("12") and not compiled.fullmatch("123")
    assert compile_pattern("\\p{L}") is None


@settings(max_examples=500, deadline=None)
@given(st.from_regex(_URI, fullmatch=True))
def test_uri_form_is_a_valid_any_uri(text: str) -> None:
    """Every text of the quick xs:anyURI form is an xs:anyURI for libxml2."""
    assert valid(libxml2("", "xs:anyURI"), text)
