"""The reply parser fed whole (the fast path of ``xmlsafe.parse``) accepts exactly what the same
hardened parser's ``fromstring`` accepts, into the same tree, and refuses the rest with the same
message: chosen hostile and odd documents, and thousands of random mutations of SOAP replies.

Whatever ``parse`` accepts has no DOCTYPE and no entity reference node, in every encoding libxml2
recognises, also with the byte screen in front of it switched off: the check after the parse holds
on its own."""

from __future__ import annotations

import contextlib
import random

import pytest
from lxml import etree

from adapters import xmlsafe
from adapters.xmlsafe import XmlRefused, make_parser, parse
from tests.unit.test_xmlsafe import BILLION_LAUGHS, DTD_SYSTEM, PARAMETER_ENTITY, XXE_HTTP, ucs4

REPLY = (
    b"<?xml version='1.0' encoding='utf-8'?>\n"
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soap:Body><td:R xmlns:td="urn:x"><td:ref_no>TD-1</td:ref_no>'
    b"<td:fee>5794.00</td:fee><td:name>\xe6\x9d\x8e &amp; co</td:name></td:R>"
    b"</soap:Body></soap:Envelope>"
)
FAULT = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>'
    b"<s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason>"
    b'<s:Text xml:lang="en">busy</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>'
)
CHOSEN = [
    b"<a>&foo;</a>",
    b"<a><b>x</b>",
    b"<a/><b/>",
    b"<a/>  junk",
    b"<a>\xff</a>",
    b"<a><!-- c --><?pi x?>t</a>",
    b"\xef\xbb\xbf<a>x</a>",
    "<a>é</a>".encode("utf-16"),
    "<?xml version='1.0' encoding='UTF-16'?><a>é</a>".encode("utf-16"),
    b"<?xml version='1.0' encoding='latin-1'?><a>\xe9</a>",
    b"<a>" * 300 + b"</a>" * 300,
    b"<a><![CDATA[<x>]]></a>",
    b"<a xmlns:x='u'><x:b x:c='1'/></a>",
]


def by_fromstring(data: bytes) -> bytes | str:
    """What ``parse`` answered before the fast path: the tree, or the refusal's text."""
    try:
        root = etree.fromstring(data, parser=make_parser())
    except (etree.XMLSyntaxError, ValueError):
        return "refused"
    return etree.tostring(root)


def by_parse(data: bytes) -> bytes | str:
    try:
        return etree.tostring(parse(data))
    except XmlRefused:
        return "refused"


def undeclared(root: etree._Element) -> None:
    """Neither a DOCTYPE (internal subset or external identifier) nor an entity reference node."""
    info = root.getroottree().docinfo
    assert info.internalDTD is None and info.externalDTD is None and not info.doctype
    assert next(root.iter(etree.Entity), None) is None


def agrees(data: bytes) -> None:
    """``parse`` gives fromstring's tree; whatever fromstring refuses, ``parse`` refuses (the
    screen may refuse more: it did before too)."""
    old = by_fromstring(data)
    try:
        root = parse(data)
    except XmlRefused:
        return
    assert etree.tostring(root) == old, data
    undeclared(root)


@pytest.mark.parametrize("data", [REPLY, FAULT, *CHOSEN])
def test_chosen_documents(data: bytes) -> None:
    agrees(data)


def test_refusals_keep_their_messages() -> None:
    with pytest.raises(XmlRefused, match="Entity 'foo' not defined"):
        parse(b"<a>&foo;</a>")
    assert etree.tostring(parse(REPLY)) == etree.tostring(etree.fromstring(REPLY))


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [
        b"<",
        b">",
        b"/",
        b"&",
        b";",
        b"'",
        b'"',
        b"=",
        b":",
        b"\x00",
        b"\xe6",
        b"<!--",
        b"]]>",
    ]
    for _ in range(1500):
        data = bytearray(rng.choice((REPLY, FAULT)))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = rng.choice(pieces)
        agrees(bytes(data))
        assert parse(REPLY) is not None  # the parser is whole again after any refusal


# -- a hostile corpus in every encoding libxml2 recognises, with and without the screen ----------

ATTACKS = [
    BILLION_LAUGHS.decode().split("?>", 1)[1],
    XXE_HTTP.decode().split("?>", 1)[1],
    DTD_SYSTEM.decode().split("?>", 1)[1],
    PARAMETER_ENTITY.decode().split("?>", 1)[1],
    '<!DOCTYPE r [<!ENTITY f SYSTEM "file:///etc/passwd">]><r><b>&f;</b></r>',
    '<!DOCTYPE r PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://127.0.0.1:9/x.dtd"><r/>',
    "<!DOCTYPE r><r/>",
    '<!DOCTYPE r [<!ENTITY e "">]><r><k>k-&e;-1</k></r>',
    '<!DOCTYPE r [<!ENTITY e "x">]><r a="&e;"/>',
    '<!-- first --><!DOCTYPE r [<!ATTLIST r a CDATA "injected">]><r/>',
]
# name -> (codec or byte order, the encoding the declaration names)
FORMS: dict[str, tuple[str | tuple[int, int, int, int], str]] = {
    "utf-8": ("utf-8", "UTF-8"),
    "utf-8-bom": ("utf-8-sig", "UTF-8"),
    "utf-16-bom": ("utf-16", "UTF-16"),
    "utf-16le": ("utf-16-le", "UTF-16"),
    "utf-16be": ("utf-16-be", "UTF-16"),
    "ucs-4be": ((0, 1, 2, 3), "UCS-4"),
    "ucs-4le": ((3, 2, 1, 0), "UCS-4"),
    "ucs-4-2143": ((1, 0, 3, 2), "UCS-4"),
    "ucs-4-3412": ((2, 3, 0, 1), "UCS-4"),
    "utf-32-bom": ("utf-32", "UTF-32"),
}


def hostile_corpus() -> list[bytes]:
    """Every attack in every form, with and without an XML declaration, and white space first."""
    out = []
    for text in ATTACKS:
        for how, name in FORMS.values():
            for head in ("", f'<?xml version="1.0" encoding="{name}"?>', "\n"):
                doc = head + text
                out.append(ucs4(doc, how) if isinstance(how, tuple) else doc.encode(how))
    return out


def test_every_hostile_document_is_refused_in_every_encoding() -> None:
    """Not one attack, in any encoding libxml2 recognises, is parsed."""
    for data in hostile_corpus():
        with pytest.raises(XmlRefused):
            parse(data)


def test_the_check_after_the_parse_refuses_without_the_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the screen switched off, each attack libxml2 parses is refused as a declaration all
    the same (the check after the parse alone), and no tree with a DOCTYPE or entity comes out."""
    monkeypatch.setattr(xmlsafe, "screen", lambda data: None)
    parsed_by_libxml2 = 0
    for data in hostile_corpus():
        with pytest.raises(XmlRefused) as info:
            parse(data)
        if by_fromstring(data) != "refused":
            parsed_by_libxml2 += 1
            assert info.value.kind == "doctype", data
    assert parsed_by_libxml2 >= 3 * len(ATTACKS)  # the UTF-16 and UCS-4 ones at least


@pytest.mark.parametrize("seed", range(2))
def test_random_mutations_of_hostile_documents_without_the_screen(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Mutated attacks in UTF-8 and UTF-16 (either order, no byte-order mark), screen off: what
    ``parse`` accepts has no DOCTYPE and no entity reference node."""
    monkeypatch.setattr(xmlsafe, "screen", lambda data: None)
    rng = random.Random(seed)
    pieces = ["<", ">", "!", "[", "]", "&", ";", "%", '"', "<!DOCTYPE r>", "<!ENTITY e 'x'>", "&e;"]
    for _ in range(1500):
        text = list(rng.choice(ATTACKS))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text))
            if rng.random() < 0.5:
                del text[at : at + rng.randint(1, 4)]
            else:
                text[at:at] = rng.choice(pieces)
        codec, name = rng.choice(
            [("utf-8", "UTF-8"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16")]
        )
        doc = f'<?xml version="1.0" encoding="{name}"?>' + "".join(text)
        with contextlib.suppress(XmlRefused):
            undeclared(parse(doc.encode(codec)))
