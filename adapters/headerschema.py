"""The XML Schema a SOAP partner's header elements are declared in, imports included.

A WSDL's header parts are often declared in a schema the WSDL imports rather than in its own
``types``: X-Road's ``xrd:client``, ``xrd:id`` and the rest live in xroad.xsd, which imports
identifiers.xsd, both published at network locations that partners.yaml's ``schemas:`` catalogue
maps to local files. :func:`adapters.facets.facets_of` leaves such schemas out (the body of those
WSDLs is left to the partner, as before), so without this module a header value there was checked
against its built-in type only.

:func:`header_schema` compiles, once per version of the files it is built from (the WSDL and
every schema file it imports or includes, each by path, size and modification time) and of the
catalogue, one lxml XML Schema importing every schema of the WSDL's ``types``: an edited imported
schema is seen at the next reload. Each import those make is read the way the WSDL loader reads it
(:class:`adapters.xmlsafe.LocalWsdlTransport`: files under the configuration directory, network
locations only through the catalogue, never fetched). The schema elements read on the way are
kept by namespace (:meth:`HeaderSchema.source`) for the quick checks of
:mod:`adapters.headerfacets`, which read them with the same index the body check uses
(:class:`adapters.facettypes.SchemaIndex`).

:meth:`HeaderSchema.problems` validates written header blocks and says, for each problem, the
dotted path of the element or attribute and the facet libxml2 names; never the value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

from lxml import etree  # type: ignore[import-untyped]

from adapters.stamped import Stamp, StampedCache, stamp
from adapters.xmlsafe import LocalWsdlTransport, WsdlRefused

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
TYPE = "type"  # a problem that is not one facet: the value is not of its type at all
_FACET = re.compile(r"\[facet '([A-Za-z]+)'\]")
_ATTRIBUTE = re.compile(r"Element '[^']*', attribute '(?:\{[^}]*\})?([^']+)'")
_STEP = re.compile(r"^(?:[^:/\[]+:)?([^\[]+)(?:\[\d+\])?$")
_INLINE = "urn:tongban:wsdl-types:"  # the locations the WSDL's own schemas are served under
Catalogue = tuple[tuple[str, Path], ...]  # partners.yaml schemas: location or namespace → file
Stamps = frozenset[Stamp]
# one entry per WSDL, root and catalogue: the schema, good while the files it was built from are
_cache: StampedCache[HeaderSchema | None] = StampedCache(most=32)


@dataclass(frozen=True, slots=True)
class Broken:
    """One problem of a written header block: where, and which facets (or :data:`TYPE`)."""

    path: str  # dotted, from the header part's key: "client.memberCode", "client.@objectType"
    facets: tuple[str, ...]


class HeaderSchema:
    """The schemas of one WSDL's ``types`` and what they import, compiled as one."""

    def __init__(self, schema: Any, sources: Mapping[str, Any]) -> None:
        self._schema = schema
        self._sources = dict(sources)
        # one schema object whose error log every validation shares: one validation at a time
        self._validating = threading.Lock()

    def source(self, namespace: str) -> Any:
        """The XML Schema element of ``namespace``, imported ones included (None if not read)."""
        return self._sources.get(namespace)

    def problems(self, blocks: list[str], nsmap: Mapping[str, str]) -> list[Broken]:
        """What the header ``blocks`` (XML text whose prefixes ``nsmap`` declares) break, each
        element validated alone; empty when they are valid, or cannot be read here."""
        declared = "".join(f" xmlns:{p}={quoteattr(ns)}" for p, ns in nsmap.items() if p)
        try:
            wrapper = etree.fromstring(f"<w{declared}>{''.join(blocks)}</w>", _PARSER)
        except etree.XMLSyntaxError:
            return []
        out: list[Broken] = []
        for element in wrapper:
            with self._validating:
                if self._schema.validate(element):
                    continue
                log = list(self._schema.error_log)
            for entry in log:
                steps = [m.group(1) for s in entry.path.split("/")[1:] if (m := _STEP.match(s))]
                attribute = _ATTRIBUTE.match(entry.message)
                if attribute is not None:
                    steps.append("@" + attribute.group(1))
                facets = tuple(m.group(1) for m in _FACET.finditer(entry.message)) or (TYPE,)
                out.append(Broken(path=".".join(steps), facets=facets))
        return out


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class _Imports(etree.Resolver):  # type: ignore[misc]
    """Serves the WSDL's own schemas and, through the WSDL loader's transport, what they import;
    keeps each schema element read, by namespace, and the stamp of each file asked for, taken
    before it is read (a file changed while it is read is then seen changed at the next call)."""

    def __init__(self, wsdl: str, transport: LocalWsdlTransport) -> None:
        super().__init__()
        self.wsdl = wsdl
        self.inline: dict[str, bytes] = {}  # the WSDL's own schemas, once it is read
        self.transport = transport
        self.sources: dict[str, Any] = {}
        self.stamps: set[Stamp] = set()
        self.failed = False

    def resolve(self, url: str, _id: Any, context: Any) -> Any:
        data = self.inline.get(url)
        if data is None:
            file = _file_of(url, self.transport.catalogue)
            if file is not None:
                self.stamps.add(stamp(file))
            try:
                data = self.transport.load(url)
            except WsdlRefused:
                self.failed = True
                return self.resolve_string(_EMPTY, context)
        try:
            root = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError:
            self.failed = True
            return self.resolve_string(_EMPTY, context)
        if root.tag == f"{{{XS}}}schema":
            self.sources.setdefault(root.get("targetNamespace", ""), root)
        base = self.wsdl if url in self.inline else url  # relative imports: from the WSDL's place
        return self.resolve_string(data, context, base_url=base)


_EMPTY = f'<xs:schema xmlns:xs="{XS}"/>'


def header_schema(
    wsdl: Path | None, root: Path | None, catalogue: Catalogue = ()
) -> HeaderSchema | None:
    """The schema of ``wsdl``'s ``types`` with its imports (read under ``root``, network locations
    through ``catalogue``), compiled again only when one of the files it was built from (or
    failed to read) has changed; None without a file, or when a schema cannot be read or
    compiled (the built-in types are then checked alone, as before)."""
    if wsdl is None or root is None:
        return None
    key = (wsdl, root, catalogue)
    cached = _cache.get(key)
    if cached is not None:
        return cached[0]
    stamps, found = _compile(wsdl, root, catalogue)
    _cache.put(key, stamps, found)
    return found


def _compile(wsdl: Path, root: Path, catalogue: Catalogue) -> tuple[Stamps, HeaderSchema | None]:
    """The compiled schema, and the stamps of every file read (or not found) on the way."""
    transport = LocalWsdlTransport(root, catalogue=dict(catalogue))
    imports = _Imports(wsdl.as_uri(), transport)
    imports.stamps.add(stamp(wsdl.resolve()))
    found = _compiled(wsdl, transport, imports)
    # what the transport read that no stamp was taken for: stamped now, after reading
    seen = {recorded[0] for recorded in imports.stamps}
    imports.stamps.update(stamp(path) for path in transport.loaded if path not in seen)
    return frozenset(imports.stamps), found


def _compiled(wsdl: Path, transport: LocalWsdlTransport, imports: _Imports) -> HeaderSchema | None:
    try:
        document = etree.fromstring(transport.load(str(wsdl)), _PARSER)
    except (WsdlRefused, etree.XMLSyntaxError):
        return None
    inline: dict[str, bytes] = {}
    for n, schema in enumerate(document.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema")):
        inline[f"{_INLINE}{n}"] = etree.tostring(schema)  # keeps the prefixes it uses
    if not inline:
        return None
    imports.inline = inline
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(imports)
    driver = "".join(_import(url, data) for url, data in inline.items())
    text = f'<xs:schema xmlns:xs="{XS}">{driver}</xs:schema>'
    try:
        schema = etree.XMLSchema(etree.fromstring(text, parser, base_url=wsdl.as_uri()))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError):
        return None
    if imports.failed:
        return None
    return HeaderSchema(schema, imports.sources)


def _import(url: str, data: bytes) -> str:
    namespace = etree.fromstring(data, _PARSER).get("targetNamespace")
    named = f" namespace={quoteattr(namespace)}" if namespace else ""
    return f"<xs:import{named} schemaLocation={quoteattr(url)}/>"


def _file_of(url: str, catalogue: Mapping[str, Path]) -> Path | None:
    """The local file the WSDL loader reads for ``url`` (as
    :meth:`adapters.xmlsafe.LocalWsdlTransport.load` finds it); None for a network location the
    catalogue does not map (refused: no file whose change could matter)."""
    mapped = catalogue.get(url)
    if mapped is not None:
        return mapped.resolve()
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path)).resolve()
    if parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive
        return None
    return Path(url).expanduser().resolve()
