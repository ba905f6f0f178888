"""open_envelope reads the usual layouts by index: for every layout of up to four children of the
Envelope and three of the Body (Header, Body, foreign elements, comments, processing instructions),
either SOAP version, the answer is the child-by-child walk's (the reading before), but that an
Envelope with more than one Body is no envelope to read (the walk took the first Body and passed
over the others, a second application or a Fault in them unread)."""

from __future__ import annotations

import itertools

import pytest
from lxml import etree

from adapters.envelope import (
    SOAP11,
    SOAP12,
    VERSIONS,
    NotSoap,
    SeveralBodies,
    SoapVersion,
    open_envelope,
)

KINDS = ("Header", "Body", "other", "comment", "pi")
INNER = ("message", "comment", "pi")


def reference(root: etree._Element) -> tuple[object, ...]:
    """The walk open_envelope did for every reply before."""
    version = next((v for v in VERSIONS.values() if root.tag == f"{{{v.ns}}}Envelope"), None)
    if version is None:
        return ("NotSoap",)
    header = body = None
    for child in root:
        if child.tag == version.body:
            body = child
            break
        if child.tag == version.header:
            header = child
    if body is None or sum(child.tag == version.body for child in root) > 1:
        return ("NotSoap",)
    first = next((c for c in body if isinstance(c.tag, str)), None)
    return (version, header, body, first)


def answer(root: etree._Element) -> tuple[object, ...]:
    try:
        return tuple(open_envelope(root))
    except NotSoap:
        return ("NotSoap",)


def node(version: SoapVersion, kind: str) -> etree._Element:
    if kind == "comment":
        return etree.Comment("c")
    if kind == "pi":
        return etree.ProcessingInstruction("p", "x")
    if kind == "other":
        return etree.Element("{urn:x}other")
    return etree.Element(f"{{{version.ns}}}{kind}")


def layouts() -> list[tuple[SoapVersion, tuple[str, ...], tuple[str, ...]]]:
    out = []
    for version in (SOAP11, SOAP12):
        for n in range(5):
            for outer in itertools.product(KINDS, repeat=n):
                inner_options = [(), *itertools.product(INNER, repeat=2), *((k,) for k in INNER)]
                for inner in inner_options if "Body" in outer else [()]:
                    out.append((version, outer, inner))
    return out


@pytest.mark.parametrize("version", [SOAP11, SOAP12])
def test_every_layout_reads_as_the_walk_did(version: SoapVersion) -> None:
    count = 0
    for v, outer, inner in layouts():
        if v is not version:
            continue
        root = etree.Element(f"{{{version.ns}}}Envelope")
        for kind in outer:
            root.append(node(version, kind))
        body = next((c for c in root if c.tag == version.body), None)
        for kind in inner:
            if body is not None:
                body.append(etree.Element("{urn:x}m") if kind == "message" else node(version, kind))
        assert answer(root) == reference(root), (outer, inner)
        count += 1
    assert count > 1000


def test_an_envelope_with_two_bodies_is_several_bodies() -> None:
    for version in (SOAP11, SOAP12):
        for layout in (("Body", "Body"), ("Header", "Body", "Body"), ("Body", "other", "Body")):
            root = etree.Element(f"{{{version.ns}}}Envelope")
            for kind in layout:
                root.append(node(version, kind))
            with pytest.raises(SeveralBodies):
                open_envelope(root)


def test_the_other_version_or_no_envelope_is_not_soap() -> None:
    root = etree.Element(f"{{{SOAP11.ns}}}Envelope")
    root.append(etree.Element(f"{{{SOAP12.ns}}}Body"))
    assert answer(root) == reference(root) == ("NotSoap",)
    assert answer(etree.Element("{urn:x}Envelope")) == ("NotSoap",)
