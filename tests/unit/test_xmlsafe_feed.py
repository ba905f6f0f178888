"""The reply parser fed whole (the fast path of ``xmlsafe.parse``) accepts exactly what the same
hardened parser's ``fromstring`` accepts, into the same tree, and refuses the rest with the same
message: chosen hostile and odd documents, and thousands of random mutations of SOAP replies."""

from __future__ import annotations

import random

import pytest
from lxml import etree

from adapters.xmlsafe import XmlRefused, make_parser, parse

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


def agrees(data: bytes) -> None:
    """``parse`` gives fromstring's tree; whatever fromstring refuses, ``parse`` refuses (the
    screen may refuse more: it did before too)."""
    old, new = by_fromstring(data), by_parse(data)
    if new != "refused":
        assert new == old, data


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
