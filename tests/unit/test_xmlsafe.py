"""The hardened XML parser: every classic XML attack is refused before it costs anything."""

from __future__ import annotations

import contextlib
import resource
import tracemalloc
from pathlib import Path

import pytest
from lxml import etree

from adapters.wsdl import WsdlError, find_port, input_headers, load_document
from adapters.xmlsafe import (
    REPLY_LIMITS,
    LocalWsdlTransport,
    UnresolvedImport,
    WsdlRefused,
    XmlLimits,
    XmlRefused,
    make_parser,
    parse,
)
from tests.foreign.xroad_stub import CATALOGUE, WSDL_PATH

ENVELOPE = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<r xmlns="urn:x"><ref_no>TD-1</ref_no><name>\xe6\x9d\x8e\xe6\xb0\xb8\xe7\x87\x8a</name></r>'
    b"</s:Body></s:Envelope>"
)
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE kaboom [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]><kaboom>'
    + b"&a;" * 50_000
    + b"</kaboom>"
)
XXE_HTTP = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/secret">]><r>&x;</r>'
)
DTD_SYSTEM = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>'
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>'
)


def xxe_file(path: Path) -> bytes:
    return f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]><r>&x;</r>'.encode()


def refused(data: bytes, limits: XmlLimits = REPLY_LIMITS) -> XmlRefused:
    with pytest.raises(XmlRefused) as info:
        parse(data, limits)
    return info.value


class Bounded:
    """Python heap peak (tracemalloc) and the process's peak RSS growth while the block runs."""

    def __enter__(self) -> Bounded:
        self.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.heap = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss) * 1024


def test_a_plain_envelope_parses() -> None:
    """An ordinary SOAP envelope with CJK text parses into its tree."""
    root = parse(ENVELOPE)
    assert root.findtext(".//{urn:x}name") == "李永燊"


@pytest.mark.parametrize(
    "attack",
    [BILLION_LAUGHS, QUADRATIC, XXE_HTTP, DTD_SYSTEM, PARAMETER_ENTITY],
    ids=["billion-laughs", "quadratic-blowup", "xxe-http", "doctype-system", "parameter-entity"],
)
def test_document_type_declarations_are_refused(attack: bytes) -> None:
    """Every entity trick needs a DOCTYPE; each is refused as such, with bounded memory."""
    with Bounded() as used:
        exc = refused(attack)
    assert exc.kind == "doctype"
    assert "document type declarations are not accepted" in str(exc)
    assert used.heap < 8 * 1024 * 1024
    assert used.rss_growth < 64 * 1024 * 1024


def test_external_entity_to_a_file_is_never_read(tmp_path: Path) -> None:
    """An entity pointing at a local file is refused, and the file's content appears nowhere."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    assert refused(xxe_file(secret)).kind == "doctype"


def test_the_parser_itself_expands_nothing_even_without_the_doctype_check(tmp_path: Path) -> None:
    """Second fence: given a DOCTYPE directly, the parser neither expands entities nor reads files."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    laughs = None
    with contextlib.suppress(etree.XMLSyntaxError):  # libxml2 2.12+ also caps amplification
        laughs = etree.fromstring(BILLION_LAUGHS, make_parser())
    assert laughs is None or len(etree.tostring(laughs)) < 100
    xxe = etree.fromstring(xxe_file(secret), make_parser())
    assert b"TOP-SECRET-VALUE" not in etree.tostring(xxe)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_doctype_hidden_in_utf16_is_still_refused(codec: str) -> None:
    """Re-encoding the attack as UTF-16 (with or without BOM) does not get it past the check."""
    text = BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "")
    assert refused(text.encode(codec)).kind == "doctype"


def test_utf32_is_refused() -> None:
    """UTF-32, which SOAP never uses, is refused rather than scanned."""
    assert refused("<r/>".encode("utf-32")).kind == "encoding"


def test_encodings_that_could_hide_a_doctype_are_refused() -> None:
    """UTF-7 (declared) and EBCDIC could smuggle '<!DOCTYPE' past a byte scan: both refused."""
    utf7 = b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE r+AD4-<r/>'
    assert refused(utf7).kind == "encoding"
    ebcdic = '<?xml version="1.0" encoding="cp037"?><r/>'.encode("cp037")
    assert refused(ebcdic).kind == "encoding"
    assert "encoding EBCDIC is not accepted" in str(refused(ebcdic))


# The review's reproduction: UTF-16 without a byte-order mark starts '<\0' (LE) or '\0<' (BE),
# which libxml2 recognises; the screen once searched such bytes for '<!' as if they were UTF-8.
PASSWD = '<!DOCTYPE r [<!ENTITY f SYSTEM "file:///etc/passwd">]><r><b>&f;</b></r>'
DECLARED = '<?xml version="1.0" encoding="{}"?>'


def ucs4(text: str, order: tuple[int, int, int, int]) -> bytes:
    """``text`` in UCS-4 with its bytes in ``order`` (0123 big-endian, 3210 little, 1032, 2301)."""
    out = bytearray()
    for ch in text:
        word = ord(ch).to_bytes(4, "big")
        out += bytes(word[i] for i in order)
    return bytes(out)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_a_doctype_in_utf16_without_a_byte_order_mark_is_refused(
    codec: str, declared: bool
) -> None:
    """The reproduction in UTF-16LE and BE without a BOM (and with one), with and without an XML
    declaration: refused as a declaration, like the same document in UTF-8."""
    text = (DECLARED.format("UTF-16") if declared else "") + PASSWD
    exc = refused(text.encode(codec))
    assert exc.kind == "doctype"
    assert "document type declarations are not accepted" in str(exc)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 0, 3, 2), (2, 3, 0, 1)])
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_ucs4_in_every_byte_order_is_refused(
    order: tuple[int, int, int, int], declared: bool, bom: bool
) -> None:
    """UCS-4 (UTF-32), which libxml2 reads from '<' alone: refused as an encoding, also clean."""
    for body in (PASSWD, "<r>ok</r>"):
        text = ("\ufeff" if bom else "") + (DECLARED.format("UCS-4") if declared else "") + body
        exc = refused(ucs4(text, order))
        assert exc.kind == "encoding"
        assert "UCS-4 (UTF-32) is not accepted" in str(exc)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
@pytest.mark.parametrize("name", ["UTF-16", "utf-16le", "UTF-8", None])
def test_clean_utf16_parses_with_or_without_a_byte_order_mark(codec: str, name: str | None) -> None:
    """UTF-16 that declares UTF-16, UTF-8 (which libxml2 ignores there) or nothing parses; without
    a byte-order mark nor a declaration libxml2 cannot tell it is UTF-16: not well-formed."""
    head = DECLARED.format(name) if name else ""
    data = (head + "<r><n>李永燊</n></r>").encode(codec)
    if name is None and codec != "utf-16":
        assert refused(data).kind == "malformed"
        return
    assert parse(data).findtext("n") == "李永燊"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
@pytest.mark.parametrize("name", ["UTF-7", "ISO-8859-1", "ebcdic-cp-us"])
def test_utf16_declaring_another_encoding_is_refused(codec: str, name: str) -> None:
    """A UTF-16 document naming another encoding could make an older libxml2 switch to it after
    the screen decoded it as UTF-16: refused."""
    exc = refused((DECLARED.format(name) + "<r/>").encode(codec))
    assert exc.kind == "encoding"
    assert f"encoding {name} is not accepted" in str(exc)


def test_comments_and_cdata_are_not_mistaken_for_declarations() -> None:
    """'<!--' and '<![CDATA[' are ordinary XML: they parse."""
    root = parse(b'<?xml version="1.0" encoding="UTF-8"?><r><!-- note --><![CDATA[a<b]]></r>')
    assert root.text == "a<b"


def test_ten_thousand_levels_of_nesting_are_refused() -> None:
    """10,000 nested elements: a clear depth error, bounded memory."""
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    with Bounded() as used:
        exc = refused(deep)
    assert exc.kind == "depth"
    assert "nested deeper than 256 levels" in str(exc)
    assert used.heap < 8 * 1024 * 1024
    assert used.rss_growth < 64 * 1024 * 1024


def test_a_lower_depth_limit_is_enforced_too() -> None:
    """A limit below libxml2's own (here 8) is checked after parsing."""
    nested = b"<a>" * 9 + b"</a>" * 9
    assert refused(nested, XmlLimits(max_depth=8)).kind == "depth"
    assert parse(b"<a>" * 8 + b"</a>" * 8, XmlLimits(max_depth=8)) is not None


def test_a_20mb_text_node_is_refused_even_under_a_large_byte_limit() -> None:
    """A 20 MB text node is refused cleanly (libxml2 stops at 10 MB), memory bounded."""
    huge = b"<a>" + b"x" * (20 * 1024 * 1024) + b"</a>"
    limits = XmlLimits(max_bytes=64 * 1024 * 1024, max_text=64 * 1024 * 1024)
    with Bounded() as used:
        exc = refused(huge, limits)
    assert exc.kind == "text"
    assert used.heap < 8 * 1024 * 1024
    assert used.rss_growth < 96 * 1024 * 1024


def test_the_text_limit_applies_below_libxml2s_own() -> None:
    """With max_text at 1 MB, a 2 MB text node is refused by our own check."""
    big = b"<a>" + b"x" * (2 * 1024 * 1024) + b"</a>"
    exc = refused(big, XmlLimits(max_bytes=4 * 1024 * 1024, max_text=1024 * 1024))
    assert exc.kind == "text"
    assert "longer than 1048576 characters" in str(exc)


def test_documents_over_the_byte_limit_are_refused_unparsed() -> None:
    """The byte limit is checked before parsing starts."""
    exc = refused(b"<a>" + b"x" * 2048 + b"</a>", XmlLimits(max_bytes=1024))
    assert exc.kind == "size"
    assert "over 1024" in str(exc)


@pytest.mark.parametrize("data", [b"", b"<a>", b"not xml at all", b"<a></b>"])
def test_malformed_xml_is_refused_with_the_parsers_reason(data: bytes) -> None:
    """Broken XML is a clear 'not well-formed' error, never an lxml exception."""
    exc = refused(data)
    assert exc.kind == "malformed"
    assert str(exc).startswith("not well-formed XML")


# -- the schema catalogue: network locations read from local files, never fetched ---------------

SCHEMA = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:s"/>'


def test_a_catalogue_location_is_read_from_its_local_file(tmp_path: Path) -> None:
    """A URL the catalogue maps is answered with the mapped file's bytes."""
    (tmp_path / "s.xsd").write_bytes(SCHEMA)
    transport = LocalWsdlTransport(
        tmp_path, catalogue={"http://x.example/s.xsd": tmp_path / "s.xsd"}
    )
    assert transport.load("http://x.example/s.xsd") == SCHEMA


def test_an_unmapped_location_is_refused_and_named(tmp_path: Path) -> None:
    """A URL not in the catalogue is refused (nothing fetched), naming the URL."""
    transport = LocalWsdlTransport(tmp_path, catalogue={})
    with pytest.raises(UnresolvedImport) as caught:
        transport.load("https://x.example/other.xsd")
    assert caught.value.url == "https://x.example/other.xsd"


def test_a_catalogue_file_outside_the_directory_is_refused(tmp_path: Path) -> None:
    """The catalogue cannot point the transport outside the configuration directory."""
    (tmp_path / "s.xsd").write_bytes(SCHEMA)
    inner = tmp_path / "config"
    inner.mkdir()
    transport = LocalWsdlTransport(inner, catalogue={"http://x.example/s.xsd": tmp_path / "s.xsd"})
    with pytest.raises(WsdlRefused, match="outside"):
        transport.load("http://x.example/s.xsd")


def test_an_import_known_by_namespace_is_pointed_at_its_file(tmp_path: Path) -> None:
    """An xs:import without a location finds its file by namespace (the WSDL on disk unchanged)."""
    (tmp_path / "s.xsd").write_bytes(SCHEMA)
    main = tmp_path / "main.xsd"
    main.write_bytes(
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:m">'
        b'<xs:import namespace="urn:s"/></xs:schema>'
    )
    transport = LocalWsdlTransport(tmp_path, catalogue={"urn:s": tmp_path / "s.xsd"})
    loaded = etree.fromstring(transport.load(str(main)))
    (node,) = loaded.iter("{http://www.w3.org/2001/XMLSchema}import")
    assert node.get("schemaLocation") == str(tmp_path / "s.xsd")
    assert b"schemaLocation" not in main.read_bytes()


def test_the_xroad_wsdl_loads_through_its_catalogue_only() -> None:
    """The published X-Road WSDL is refused without the catalogue, naming the URL and the line to
    add, and loads with it; its header parts are compiled."""
    root = WSDL_PATH.parent
    with pytest.raises(WsdlError) as refused:
        load_document(WSDL_PATH, root)
    assert '"http://x-road.eu/xsd/xroad.xsd": xroad.xsd' in str(refused.value)
    catalogue = tuple(sorted(CATALOGUE.items()))
    port = find_port(load_document(WSDL_PATH, root, catalogue), None, None)
    parts = input_headers(port, "verifyCertificate")
    assert list(parts.parts) == ["client", "service", "id", "userId", "issue", "protocolVersion"]


def test_a_long_utf7_declaration_vouched_for_by_a_comment_is_refused(tmp_path: Path) -> None:
    """The reported bypass: UTF-7 declared in a declaration over 256 bytes, 'utf-8' in a comment."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    padding = " " * 300
    attack = (
        f'<?xml version="1.0"{padding}encoding="UTF-7"?><!-- encoding="utf-8" -->'
        f"+ADw-!DOCTYPE r SYSTEM +ACI-{secret.as_uri()}+ACI-+AD4-<r/>"
    ).encode("ascii")
    exc = refused(attack)
    assert exc.kind == "encoding"
    assert "TOP-SECRET-VALUE" not in str(exc)


def test_a_declaration_that_never_closes_is_refused() -> None:
    """An XML declaration with no '?>' in its first 256 bytes is refused, not guessed at."""
    assert refused(b'<?xml version="1.0" encoding="utf-8"' + b" " * 400 + b"<r/>").kind == (
        "encoding"
    )


def test_the_parser_loads_no_external_subset_even_when_asked_to_validate(tmp_path: Path) -> None:
    """Third fence: the resolver answers every load with nothing, so no file's text comes back."""
    secret = tmp_path / "secret.dtd"
    secret.write_text('<!ENTITY leak "TOP-SECRET-VALUE">', encoding="utf-8")
    parser = make_parser()
    doc = f'<!DOCTYPE r SYSTEM "{secret.as_uri()}"><r>&leak;</r>'.encode()
    with contextlib.suppress(etree.XMLSyntaxError):  # the undefined entity may be an error
        root = etree.fromstring(doc, parser)
        assert b"TOP-SECRET-VALUE" not in etree.tostring(root)
    assert parse(b'<?xml version="1.0" encoding="UTF-8"?><r>ok</r>').text == "ok"


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><r a="Hi!">Thank you! <b>!</b></r>',
        b"<r>no exclamation mark at all</r>",
        b"<r>! &lt;!DOCTYPE is only text here</r>",
    ],
)
def test_exclamation_marks_without_a_declaration_parse(data: bytes) -> None:
    """The screen looks for '!' before '<!': a '!' that opens nothing is ordinary text."""
    assert parse(data).tag == "r"


def test_a_declaration_after_other_exclamation_marks_is_still_refused() -> None:
    """A '!' earlier in the document does not let a later '<!DOCTYPE' or '<!ENTITY' through."""
    assert refused(b"<?xml version='1.0'?><!-- hi! -->" + DTD_SYSTEM[21:]).kind == "doctype"
    assert refused(b"<r>wow!</r><!ENTITY x 'y'>").kind == "doctype"


def test_a_remembered_declaration_is_one_that_was_accepted() -> None:
    """Accepted declarations are remembered; a refused one is refused every time, also once the
    memory is full."""
    utf7 = b'<?xml version="1.0" encoding="UTF-7"?><r/>'
    for _ in range(2):
        assert parse(b"<?xml version='1.0' encoding='utf-8'?><r/>").tag == "r"
        assert refused(utf7).kind == "encoding"
    for n in range(100):
        parse(f"<?xml version='1.0' encoding='utf-8' standalone='yes'{' ' * n}?><r/>".encode())
    assert refused(utf7).kind == "encoding"
    assert refused(b'<?xml version="1.0" encoding="utf-16"?><r/>').kind == "encoding"
