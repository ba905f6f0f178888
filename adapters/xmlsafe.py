"""Hardened XML: the only way tongban turns bytes from outside into an lxml tree.

Every XML parse path (partner replies, WSDL and XSD files, the SOAP simulator, later inbound SOAP)
goes through :func:`parse`, which refuses before libxml2 does any work that could blow up:

* anything over ``max_bytes`` (callers read bodies bounded, so this is the second fence);
* any document type declaration: no DTD means no entity can be declared, so billion laughs,
  quadratic blow-up, external entities (``file://`` or ``http://``) and ``DOCTYPE … SYSTEM`` all
  stop at the same check, a scan of the raw bytes (:func:`screen`), which is exact because only
  UTF-8 (and its ASCII-compatible subsets) and UTF-16 (decoded first) are accepted; and again
  after the parse, whatever the scan let through (:func:`_has_doctype`);
* nesting deeper than ``max_depth`` (libxml2 stops at 256 on its own without ``huge_tree``, which
  bounds the work done on a 10,000-deep document; our own limit is far lower);
* a text node longer than ``max_text`` (libxml2 caps text nodes at 10 MB without ``huge_tree``).

The parser itself never resolves entities, loads DTDs or touches the network. zeep gets the same
treatment for WSDL loading: :data:`ZEEP_SETTINGS` (zeep's defaults allow DTDs) and
:class:`LocalWsdlTransport`, which reads files under one directory only and refuses every URL that
the configuration's schema catalogue does not map to one of them.
Errors are :class:`XmlRefused`; adapters translate them at their boundary.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import zeep.transports
from lxml import etree  # type: ignore[import-untyped]
from zeep import Settings

ZEEP_SETTINGS = Settings(
    strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
)
# For a WSDL whose imports a schema catalogue maps: zeep's own check would refuse every network
# location before asking the transport, which then reads the catalogue's file (and refuses the rest).
CATALOGUE_SETTINGS = Settings(
    strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=False
)

_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ASCII_SUPERSETS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin-1"})
# How libxml2 tells an encoding from the first four bytes when no byte-order mark says it (XML 1.0
# appendix F): '<' (or '<?') written in UTF-16 or UCS-4 in either byte order, and '<?xm' in EBCDIC.
# UTF-16 is decoded before the screen searches it; UCS-4 (UTF-32) and EBCDIC are refused.
_UCS4_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xff\xfe", b"\xfe\xff\x00\x00")
_EBCDIC = b"\x4c\x6f\xa7\x94"
# What a UTF-16 document may declare: UTF-16, or UTF-8, which libxml2 ignores there (a common
# mislabel). Any other name could switch an older libxml2 away from what the screen decoded.
_WIDE_NAMES = frozenset({"utf-16", "utf16", "utf-16le", "utf-16be", "utf-8", "utf8"})
_WIDE_ENCODING = re.compile(r"""encoding\s*=\s*["']([^"']*)["']""")


@dataclass(frozen=True, kw_only=True)
class XmlLimits:
    """What one document may cost: bytes, element depth, characters in one text node."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 256
    max_text: int = 1024 * 1024


# libxml2 itself stops at 256 levels without huge_tree, at no cost; a lower max_depth costs a check
# after parsing (about 3 µs for a SOAP reply). Real envelopes are a dozen levels deep at most.
REPLY_LIMITS = XmlLimits()
WSDL_LIMITS = XmlLimits(max_bytes=8 * 1024 * 1024, max_depth=128)
_LIBXML2_MAX_DEPTH = 256


class XmlRefused(Exception):
    """The bytes were not parsed. ``kind``: size, doctype, depth, text, encoding or malformed."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


_local = threading.local()
_depth_checks: dict[int, etree.XPath] = {}


class _NothingResolver(etree.Resolver):  # type: ignore[misc]
    """Answers every load libxml2 asks for (DTD, entity, XInclude) with an empty document.

    The parser options already forbid loading; this is the structural fence behind them: even a
    document that got past :func:`screen` and an option libxml2 ignored reads no file or URL.
    """

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        return self.resolve_string("", context)


def make_parser() -> etree.XMLParser:
    """A new parser with every dangerous libxml2 feature off, and a resolver that loads nothing."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        attribute_defaults=False,
        collect_ids=False,
        remove_comments=True,
        remove_pis=True,
    )
    parser.resolvers.add(_NothingResolver())
    return parser


def _parser() -> etree.XMLParser:
    # lxml parsers are not meant to be shared between threads; one each is cheap.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = make_parser()
    return parser


def parse(data: bytes, limits: XmlLimits = REPLY_LIMITS) -> etree._Element:
    """Parse ``data`` into its root element, or raise :class:`XmlRefused` saying why not."""
    if len(data) > limits.max_bytes:
        raise XmlRefused(f"document of {len(data)} bytes is over {limits.max_bytes}", kind="size")
    screen(data)
    try:
        root = _parse_fast(data)
    except etree.XMLSyntaxError as exc:
        msg = str(exc.msg or exc)
        if "depth" in msg:
            raise XmlRefused(
                f"elements nested deeper than {limits.max_depth} levels", kind="depth"
            ) from None
        if "Text node too long" in msg or "huge text" in msg:
            raise XmlRefused(
                f"a text node is longer than {limits.max_text} characters", kind="text"
            ) from None
        raise XmlRefused(f"not well-formed XML: {msg}", kind="malformed") from None
    except ValueError as exc:  # e.g. an encoding lxml does not know
        raise XmlRefused(f"unreadable XML: {exc}", kind="encoding") from None
    if _has_doctype(root):
        raise XmlRefused("document type declarations are not accepted", kind="doctype")
    if limits.max_depth < _LIBXML2_MAX_DEPTH and _too_deep(root, limits.max_depth):
        raise XmlRefused(f"elements nested deeper than {limits.max_depth} levels", kind="depth")
    # A text node cannot hold more characters than the document has bytes: skip the walk then.
    if limits.max_text < len(data) and _longest_text(root) > limits.max_text:
        raise XmlRefused(f"a text node is longer than {limits.max_text} characters", kind="text")
    return root


def _parse_fast(data: bytes) -> etree._Element:
    """``data`` parsed by the hardened parser fed the whole document at once, which lxml does in
    0.4 us less than ``fromstring`` on a 500-byte reply (2.8 against 3.2): the same parser, options
    and resolver. A document it refuses is parsed again by ``fromstring``, whose error messages
    (an undefined entity, say) are the ones refusals have always carried."""
    parser = _parser()
    try:
        parser.feed(data)
        root: etree._Element = parser.close()
    except (etree.XMLSyntaxError, ValueError):
        return etree.fromstring(data, parser=parser)
    return root


def _has_doctype(root: etree._Element) -> bool:
    """Whether the parsed document has a DOCTYPE: the fence behind :func:`screen`, which holds
    whatever encoding or trick got a declaration past it.

    libxml2 gives a document with any DOCTYPE an internal subset node, also one that names only an
    external DTD (never loaded). Without a DOCTYPE an entity reference other than the five built in
    is a fatal error (an undeclared entity), so no entity reference node can stay in the tree
    either: this one pointer answers both questions. It costs less than walking the tree for
    ``etree.Entity`` nodes or reading ``docinfo.doctype``, which builds a string.
    """
    return root.getroottree().docinfo.internalDTD is not None


def screen(data: bytes) -> None:
    """Refuse, before any parsing, a document that declares a DTD or hides in an odd encoding.

    Markup declarations (``<!DOCTYPE``, ``<!ENTITY``…) all start with ``<!``; in UTF-8 and the
    ASCII-compatible encodings that bytes sequence cannot appear any other way, so one scan of the
    raw bytes settles it. UTF-16, with a byte-order mark or without one (``<\\0`` or ``\\0<``
    first, which libxml2 recognises), is decoded and scanned as text. Any other encoding (UTF-7,
    EBCDIC, UCS-4…), in which the scan could be fooled, is refused: SOAP uses UTF-8 or UTF-16.
    """
    if data[:5] == b"<?xml":  # the usual start: settle the declared encoding
        _check_encoding(_declaration(data))
    elif data[:1] != b"<" or data[1:2] == b"\x00":  # '<' then NUL: UTF-16LE or UCS-4
        head = data[:4]
        if b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            _refuse_declarations(_wide_text(data))
            return
        if head == _EBCDIC:
            raise XmlRefused("encoding EBCDIC is not accepted (UTF-8 or UTF-16)", kind="encoding")
        start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:256]
        if start and not start.startswith(b"<"):
            raise XmlRefused(
                "not well-formed XML: it does not start with '<' in UTF-8 or UTF-16",
                kind="malformed",
            )
        if start.startswith(b"<?xml"):
            _check_encoding(_declaration(start))
    # A one-byte search is memchr; CPython looks for two bytes one at a time (2 ns a byte: 1.4 us
    # on a 500-byte reply, 140 us on 64 KiB). No "!" at all means no "<!": the full scan follows.
    if b"!" in data and b"<!" in data:
        _refuse_declarations(data.decode("latin-1"))


def _wide_text(data: bytes) -> str:
    """The text of a document whose first four bytes hold a NUL or a UTF-16 byte-order mark.

    UCS-4 (three NULs around a character, or its byte-order marks) is refused; the rest is UTF-16,
    big-endian when the mark or the first byte says so (``\\0<``, ``\\0`` before white space).
    A declared encoding other than UTF-16 (or UTF-8, which libxml2 ignores in UTF-16) is refused.
    """
    head = data[:4]
    if head in _UCS4_BOMS or head.count(0) >= 3:
        raise XmlRefused(
            "encoding UCS-4 (UTF-32) is not accepted (UTF-8 or UTF-16)", kind="encoding"
        )
    big = head.startswith(b"\xfe\xff") or head[:1] == b"\x00"
    text = data.decode("utf-16-be" if big else "utf-16-le", errors="replace").lstrip("\ufeff")
    if text.startswith("<?xml"):
        end = text.find("?>", 5, 128)  # 128 characters: 256 bytes in UTF-16
        if end < 0:
            raise XmlRefused(
                "the XML declaration does not close within its first 256 bytes", kind="encoding"
            )
        declared = _WIDE_ENCODING.search(text, 5, end)
        if declared is not None and declared.group(1).lower() not in _WIDE_NAMES:
            name = declared.group(1)[:40]
            raise XmlRefused(f"encoding {name} is not accepted (UTF-8 or UTF-16)", kind="encoding")
    return text


def _declaration(head: bytes) -> bytes:
    """The XML declaration's pseudo-attributes, which must close within the first 256 bytes.

    Only the declaration itself is read for ``encoding=``: a longer "declaration" (or one that
    never closes) is refused, so text further on (a comment saying ``encoding="utf-8"``) cannot
    vouch for a document declared in UTF-7.
    """
    end = head.find(b"?>", 5, 256)
    if end < 0:
        raise XmlRefused(
            "the XML declaration does not close within its first 256 bytes", kind="encoding"
        )
    return head[5:end]


def _check_encoding(declaration: bytes) -> None:
    """Refuse a declared encoding other than UTF-8 or an ASCII subset of it. A partner writes the
    same declaration on every reply: the ones accepted are remembered (a few dozen at most), so
    the regular expression runs once per declaration, not once per reply."""
    if declaration in _ACCEPTED:
        return
    declared = _ENCODING.search(declaration)
    if declared is not None and declared.group(1).lower() not in _ASCII_SUPERSETS:
        name = declared.group(1).decode("ascii")
        raise XmlRefused(f"encoding {name} is not accepted (UTF-8 or UTF-16)", kind="encoding")
    if len(_ACCEPTED) < 64:
        _ACCEPTED.add(declaration)


_ACCEPTED: set[bytes] = set()  # declarations _check_encoding has let through


def _refuse_declarations(text: str) -> None:
    at = text.find("<!")
    while at >= 0:
        # Comments and CDATA sections are harmless; everything else after <! declares something.
        if not text.startswith(("<!--", "<![CDATA["), at):
            raise XmlRefused("document type declarations are not accepted", kind="doctype")
        at = text.find("<!", at + 2)


def _too_deep(root: etree._Element, max_depth: int) -> bool:
    check = _depth_checks.get(max_depth)
    if check is None:
        # An absolute path of max_depth + 1 element steps exists only in a deeper tree; evaluated
        # in C over the whole document, which is cheaper than a Python walk.
        check = _depth_checks[max_depth] = etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")
    return bool(check(root))


def _longest_text(root: etree._Element) -> int:
    longest = 0
    for el in root.iter():
        for text in (el.text, el.tail):
            if text and len(text) > longest:
                longest = len(text)
    return longest


class WsdlRefused(Exception):
    """A WSDL or XSD could not be loaded: outside the allowed directory, a URL, or unsafe XML."""


class UnresolvedImport(WsdlRefused):
    """An import or include names a network location the schema catalogue does not map."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"refusing to fetch {url}: WSDL and XSD files are read from disk only (map the "
            "location to a local file in the schemas: catalogue of partners.yaml)"
        )
        self.url = url


# An empty schema stands in for an unmapped import while a survey collects them all.
_PLACEHOLDER = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>'
_IMPORTS = ("{http://www.w3.org/2001/XMLSchema}import", "{http://schemas.xmlsoap.org/wsdl/}import")


class LocalWsdlTransport(zeep.transports.Transport):
    """zeep transport for WSDL loading that reads local files under ``root`` and nothing else.

    WSDLs are repository files loaded once at start-up; an import or include that points at a URL
    (``http://``, ``https://`` or anything but a plain path or ``file:``) is read from the local file
    the schema ``catalogue`` maps it to (a key is a published location, or a namespace for imports
    whose location the catalogue does not know), else refused, never fetched. Every file is checked
    with :func:`parse` before zeep parses it again. With ``survey`` a list, unmapped locations are
    noted there instead of refused (an empty schema stands in), so one load names them all.
    """

    def __init__(
        self,
        root: Path,
        limits: XmlLimits = WSDL_LIMITS,
        *,
        catalogue: Mapping[str, Path] | None = None,
        survey: list[str] | None = None,
    ) -> None:
        # zeep's own __init__ opens a requests session we never want; set what zeep reads instead.
        self.root = root.resolve()
        self.limits = limits
        self.catalogue = dict(catalogue or {})
        self.survey = survey
        self.cache = None
        self._close_session = False  # read by zeep's __del__
        self.load_timeout = 0
        self.operation_timeout = 0
        self.loaded: list[Path] = []

    def load(self, url: str) -> bytes:
        text = str(url)
        mapped = self.catalogue.get(text)
        parts = urlsplit(text)
        if mapped is not None:
            path = mapped
        elif parts.scheme == "file":
            path = Path(unquote(parts.path))
        elif parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive
            if self.survey is None:
                raise UnresolvedImport(text)
            if text not in self.survey:
                self.survey.append(text)
            return _PLACEHOLDER
        else:
            path = Path(text).expanduser()
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise WsdlRefused(f"refusing to read {path}: it is outside {self.root}")
        try:
            with resolved.open("rb") as fh:
                data = fh.read(self.limits.max_bytes + 1)
        except OSError as exc:
            raise WsdlRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            root = parse(data, self.limits)
        except XmlRefused as exc:
            raise WsdlRefused(f"{resolved.name}: {exc}") from exc
        self.loaded.append(resolved)
        return self._by_namespace(root) or data

    def _by_namespace(self, root: etree._Element) -> bytes | None:
        """The document again with imports the catalogue knows by namespace pointed at their file.

        Only imports whose own location is absent or unmapped are redirected, and only when the
        catalogue has namespace keys; otherwise None (the bytes go to zeep unchanged).
        """
        if not self.catalogue:
            return None
        changed = False
        for node in root.iter(*_IMPORTS):
            location = node.get("schemaLocation", node.get("location"))
            target = self.catalogue.get(node.get("namespace") or "")
            if target is None or (location is not None and location in self.catalogue):
                continue
            node.set("schemaLocation" if node.tag == _IMPORTS[0] else "location", str(target))
            changed = True
        return bytes(etree.tostring(root, encoding="utf-8")) if changed else None

    def get(self, address: str, params: Any, headers: Any) -> Any:
        raise WsdlRefused("the WSDL transport sends nothing")

    def post(self, address: str, message: Any, headers: Any) -> Any:
        raise WsdlRefused("the WSDL transport sends nothing")
