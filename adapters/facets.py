"""A SOAP partner's XML Schema facets (enumerations, patterns, lengths), checked with lxml.

zeep keeps no facets, so a value its lenient conversion lets through (``"4"`` for an enumeration
of ``1``–``3``, a 45-character name where 40 are allowed) would otherwise reach the partner and
come back as a Client fault. :class:`Facets` validates a written body element against the XML
Schema in the WSDL's ``types`` with lxml, before anything is sent and in ``tongban check``; a
problem names the element's dotted path (as a mapping's targets do) and never the value.

:func:`element_shapes` tells, for each element path of an operation's input, whether it is
complex (has child elements) and whether it may occur more than once: what a mapping must write
there (an object, a list).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from zeep.xsd import ComplexType, Element
from zeep.xsd.elements.indicators import Group, OrderIndicator

from adapters.body import Body, BodyInvalid
from adapters.bodyfast import Fast, generate_fast
from adapters.bodygen import CompiledBody
from adapters.facetcheck import Conforms, compile_tree, generate

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
# libxml2 quotes the offending value; a value may be personal, so it is cut from every message.
_VALUE = re.compile(r"The value '[^']*'")
_STEP = re.compile(r"^(?:[^:/\[]+:)?([^\[]+)(?:\[\d+\])?$")


@dataclass(frozen=True, kw_only=True)
class Shape:
    """What an input element takes: child elements (``complex``), more than one (``many``)."""

    complex: bool
    many: bool


class Facets:
    """The XML Schemas of one WSDL's ``types``, by target namespace, ready to validate bodies."""

    def __init__(
        self, schemas: Mapping[str, Any], sources: Mapping[str, Any] | None = None
    ) -> None:
        self._schemas = dict(schemas)
        self._sources = dict(sources or {})  # the schema elements, for adapters.facetcheck

    def source(self, namespace: str) -> Any:
        """The XML Schema element of ``namespace`` (None when it is not validated here)."""
        return self._sources.get(namespace) if namespace in self._schemas else None

    def problems(self, body: str, nsmap: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every facet the body element ``body`` (XML text whose prefixes ``nsmap`` declares)
        breaks, as (dotted element path below the body element, message without the value)."""
        declared = "".join(f' xmlns:{p}="{ns}"' for p, ns in nsmap.items() if p)
        wrapper = etree.fromstring(f"<w{declared}>{body}</w>", _PARSER)
        if len(wrapper) == 0:
            return []
        element = wrapper[0]
        schema = self._schemas.get(etree.QName(element).namespace or "")
        if schema is None:
            return []
        if schema.validate(element):  # the element alone: its paths start at itself
            return []
        out = []
        for entry in schema.error_log:
            steps = [m.group(1) for s in entry.path.split("/")[2:] if (m := _STEP.match(s))]
            out.append((".".join(steps), _VALUE.sub("The value", entry.message)))
        return out


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def facets_of(wsdl: Path) -> Facets | None:
    """The facets of the XML Schemas inside ``wsdl``'s ``types`` (None when it has none, or they
    import others: those are left to the partner, as before)."""
    try:
        tree = etree.parse(str(wsdl), _PARSER)
    except (OSError, etree.XMLSyntaxError):
        return None
    schemas, sources = {}, {}
    for el in tree.getroot().iterfind(f"{{{WSDL}}}types/{{{XS}}}schema"):
        if el.find(f"{{{XS}}}import") is not None or el.find(f"{{{XS}}}include") is not None:
            continue
        source = etree.fromstring(etree.tostring(el), _PARSER)
        try:
            schema = etree.XMLSchema(source)
        except etree.XMLSchemaParseError:
            continue
        schemas[el.get("targetNamespace", "")] = schema
        sources[el.get("targetNamespace", "")] = source
    return Facets(schemas, sources) if schemas else None


def element_shapes(body_type: Any) -> dict[str, Shape]:
    """Each dotted element path below an operation's input body element, and its :class:`Shape`."""
    out: dict[str, Shape] = {}
    _walk(body_type, "", False, out, 0)
    return out


def _walk(xsd_type: Any, prefix: str, many: bool, out: dict[str, Shape], depth: int) -> None:
    if not isinstance(xsd_type, ComplexType) or depth > 32:
        return
    for _, particle in xsd_type.elements_nested:
        _particle(particle, prefix, many, out, depth)


def _particle(p: Any, prefix: str, many: bool, out: dict[str, Shape], depth: int) -> None:
    if isinstance(p, Element):
        path = prefix + str(p.attr_name or p.name)
        complex_ = isinstance(p.type, ComplexType) and bool(list(p.type.elements_nested))
        out[path] = Shape(complex=complex_, many=many or _many(p.max_occurs))
        _walk(p.type, path + ".", False, out, depth + 1)
    elif isinstance(p, Group):
        _particle(p.child, prefix, many or _many(p.max_occurs), out, depth)
    elif isinstance(p, OrderIndicator):
        for item in p:
            _particle(item, prefix, many or _many(p.max_occurs), out, depth)


def _many(max_occurs: Any) -> bool:
    return max_occurs == "unbounded" or (isinstance(max_occurs, int) and max_occurs > 1)


class CheckedBody:
    """A body that is validated against the WSDL's facets as it is written: a violation is
    :class:`BodyInvalid` (nothing is sent: the mapping's failure, not a partner round trip).

    The values are first put to the quick check compiled from the schema
    (:mod:`adapters.facetcheck`); lxml validates the written body only when that check is not
    sure, so lxml alone still decides every refusal and writes its messages."""

    def __init__(self, body: Body, facets: Facets) -> None:
        self._body = body
        self._facets = facets
        self.nsmap = body.nsmap
        self.tag = body.tag
        namespace = etree.QName(body.tag).namespace or "" if body.tag else ""
        schema = facets.source(namespace)
        tree = None
        if isinstance(body, CompiledBody) and schema is not None:
            tree = compile_tree(body.root, schema)
        self.quick: Conforms | None = None if tree is None else generate(tree)
        # the writer and the quick check in one pass, for the payloads both take as usual
        self.fast: Fast | None = None
        if tree is not None and isinstance(body, CompiledBody):
            self.fast = generate_fast(body.root, tree)

    def write(self, values: Mapping[str, Any]) -> str:
        if self.fast is not None and self.quick is not None:
            text = self.fast(values)
            if text is not None:  # what the writer writes, and the quick check calls valid
                return text
        text = self._body.write(values)
        if self.quick is not None and self.quick(values):
            return text
        broken = self._facets.problems(text, self.nsmap)
        if broken:
            raise BodyInvalid([f"{path or self.tag}: {message}" for path, message in broken])
        return text

    def read(self, body: Any, first: Any) -> dict[str, Any]:
        return self._body.read(body, first)


def with_facets(
    wsdl: Path, compile_: Callable[[Any], dict[Any, Any]], partner: Any
) -> dict[Any, Any]:
    """The partner's operations as ``compile_`` builds them, each input body checked against the
    facets of ``wsdl`` (unchanged when its schemas cannot be read by lxml alone)."""
    operations = compile_(partner)
    facets = facets_of(wsdl)
    if facets is None:
        return operations
    return {
        key: dataclasses.replace(op, input=CheckedBody(op.input, facets))
        for key, op in operations.items()
    }
