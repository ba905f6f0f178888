"""SOAP header values against the facets the WSDL's XML Schema gives their elements.

A header value from partners.yaml (a literal, or a secret read at every send) is written by the
compiled writer, which checks the built-in type's lexical form only; the schema may restrict it
further (a pattern, maxLength, an enumeration). Unchecked, a value the partner's schema forbids is
sent, and refused by the partner (or accepted and misread).

:func:`value_check` compiles, once per header element or attribute, the quick "surely valid" the
body uses (:mod:`adapters.facettypes`) and, for what that check does not judge exactly, a small
schema declaring one element of the same type, which lxml (libxml2) validates the written text
against. The header block as a whole is not validated: when a secret is read, the block's other
values (the idempotency key, the mapping's, the other secrets) are not there yet, and the only
verdict wanted is the one about this value's type.

A verdict names the facets libxml2 reports (``maxLength``, ``pattern``, ``enumeration``…), or the
type, and never the value: a secret's value must appear in no message.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import quoteattr

from lxml import etree  # type: ignore[import-untyped]

from adapters.body import Attr, Node
from adapters.facetcheck import declared_type
from adapters.facets import Facets, facets_of
from adapters.facettypes import XS, Check, SchemaIndex, Unknown, children, simple_type
from adapters.xsdtypes import BadValue, SimpleType

TYPE = "type"  # what a verdict says when the value is not of the built-in type at all
_FACET = re.compile(r"\[facet '([A-Za-z]+)'\]")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_cache: dict[tuple[Path, int, int], Facets | None] = {}
_lock = threading.Lock()


def wsdl_facets(wsdl: Path | None) -> Facets | None:
    """The XML Schemas of ``wsdl``'s ``types`` (:func:`adapters.facets.facets_of`), read once per
    version of the file; None without a file or schemas lxml can read alone."""
    if wsdl is None:
        return None
    try:
        stat = wsdl.stat()
    except OSError:
        return None
    key = (wsdl, stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    facets = facets_of(wsdl)
    with _lock:
        if len(_cache) >= 32:
            _cache.clear()
        _cache[key] = facets
    return facets


@dataclass(frozen=True, slots=True)
class ValueCheck:
    """What a value of one header element or attribute must satisfy."""

    write: Callable[[Any], str]  # the compiled writer's conversion: BadValue if not of its type
    type_name: str  # the built-in type, for messages: "xs:int"
    quick: Check | None = None  # True: surely valid; None: not judged here
    schema: Any = None  # an etree.XMLSchema declaring the element of ``open`` with this type
    open: str = ""
    close: str = ""

    def broken(self, value: Any) -> list[str]:
        """The facets ``value`` breaks (:data:`TYPE` when it is not of the built-in type); empty
        when it is valid, or when nothing here can judge it."""
        quick = self.quick
        if quick is not None and type(value) is str and quick(value):
            return []  # a text the check accepts is one the writer writes unchanged
        try:
            text = self.write(value)
        except BadValue:
            return [TYPE]
        if quick is not None and type(value) is not str and quick(text):
            return []
        if self.schema is None:
            return []
        try:
            element = etree.fromstring(self.open + text + self.close, _PARSER)
        except etree.XMLSyntaxError:
            return []
        if self.schema.validate(element):
            return []
        found = [m.group(1) for e in self.schema.error_log if (m := _FACET.search(e.message))]
        return list(dict.fromkeys(found)) or [TYPE]


class Sources(Protocol):
    """Schema elements by target namespace: :class:`adapters.facets.Facets` (the WSDL's own),
    or :class:`adapters.headerschema.HeaderSchema` (imported schemas too)."""

    def source(self, namespace: str) -> Any: ...


def value_check(facets: Sources | None, part: Node, keys: tuple[str, ...]) -> ValueCheck | None:
    """The check of the element or attribute at ``keys`` (the first one ``part``'s key); None
    when it holds elements rather than text. Without a schema that declares it plainly, only the
    built-in type is checked."""
    target = descend(part, keys[1:])
    if target is None or target.simple is None:
        return None
    simple: SimpleType = target.simple
    plain = ValueCheck(write=simple.write, type_name=simple.name)
    found = _declared(facets, part, keys)
    if found is None:
        return plain
    index, source, decl, definition = found
    quick = _quick(index, decl, definition, simple)
    schema = _one_element_schema(index, source, decl, definition)
    if schema is None:
        return ValueCheck(write=simple.write, type_name=simple.name, quick=quick)
    tns = index.tns
    open_ = f"<t:v xmlns:t={quoteattr(tns)}>" if tns else "<v>"
    close = "</t:v>" if tns else "</v>"
    return ValueCheck(
        write=simple.write,
        type_name=simple.name,
        quick=quick,
        schema=schema,
        open=open_,
        close=close,
    )


def quick_check(facets: Sources | None, part: Node, keys: tuple[str, ...]) -> Check | None:
    """The quick "surely valid" of the text element or attribute at ``keys`` alone (None: not
    judged here), for values the mapping gives at every send: no schema is compiled for it."""
    target = descend(part, keys[1:])
    if target is None or target.simple is None:
        return None
    found = _declared(facets, part, keys)
    return None if found is None else _quick(found[0], found[2], found[3], target.simple)


def _declared(
    facets: Sources | None, part: Node, keys: tuple[str, ...]
) -> tuple[SchemaIndex, Any, etree._Element, Any] | None:
    """The index of the part's schema, its source, the declaration at ``keys`` and its simple
    type; None where no schema declares it plainly."""
    namespace = etree.QName(part.tag).namespace or ""
    source = facets.source(namespace) if facets is not None else None
    if source is None:
        return None
    index = SchemaIndex(source)
    try:
        decl = _declaration(index, part, keys)
        return index, source, decl, _simple_definition(index, decl)
    except Unknown:
        return None


def descend(node: Node | None, keys: tuple[str, ...]) -> Node | Attr | None:
    """The compiled element or attribute ``keys`` lead to from ``node`` (an ``@`` key names an
    attribute); None where there is none."""
    for key in keys:
        if node is None:
            return None
        if key.startswith("@"):
            return next((a for a in node.attrs if a.key == key), None)
        node = node.by_key.get(key)
    return node


def _declaration(index: SchemaIndex, part: Node, keys: tuple[str, ...]) -> etree._Element:
    """The schema declaration of the element or attribute at ``keys``: a global element for the
    part, then local elements and attributes of plain sequences, by name."""
    decl = index.elements.get(etree.QName(part.tag).localname)
    node = part
    for key in keys[1:]:
        if decl is None:
            break
        definition = declared_type(index, decl)
        if isinstance(definition, str) or definition.tag != f"{{{XS}}}complexType":
            raise Unknown("not a complex type")
        if key.startswith("@"):
            decl = _named(children(definition), "attribute", key[1:])
            break
        node = node.by_key[key]
        particles = [p for c in children(definition) if _plain(c) for p in children(c)]
        decl = _named(particles, "element", etree.QName(node.tag).localname)
    if decl is None:
        raise Unknown("not declared plainly")
    return decl


def _plain(el: etree._Element) -> bool:
    return el.tag in (f"{{{XS}}}sequence", f"{{{XS}}}all")


def _named(items: list[etree._Element], kind: str, name: str) -> etree._Element | None:
    found = [el for el in items if el.tag == f"{{{XS}}}{kind}" and el.get("name") == name]
    return found[0] if len(found) == 1 and found[0].get("ref") is None else None


def _simple_definition(index: SchemaIndex, decl: etree._Element) -> etree._Element | str:
    """An element's or attribute's simple type: inline, named, or a built-in's local name."""
    if decl.tag == f"{{{XS}}}element":
        return declared_type(index, decl)
    inline = children(decl)
    if inline:
        return inline[0]
    ref = decl.get("type")
    if ref is None:
        raise Unknown("xs:anySimpleType")
    ns, local = index.ref(decl, ref)
    if ns == XS:
        return local
    if ns != index.tns or local not in index.simple:
        raise Unknown("a type from elsewhere")
    return index.simple[local]


def _quick(
    index: SchemaIndex, decl: etree._Element, definition: Any, simple: SimpleType
) -> Check | None:
    """The facet check of :mod:`adapters.facettypes`, where the writer reads the type as it
    does; ``fixed`` and ``default`` as :mod:`adapters.facetcheck` treats them."""
    try:
        base, check = simple_type(index, definition, 0)
    except Unknown:
        return None
    expected = "xs:string" if base in ("string", "anyURI") else f"xs:{base}"
    if simple.name != expected:
        return None
    fixed = decl.get("fixed")
    if fixed is not None:
        return (lambda text: text == fixed and check(text)) if base == "string" else None
    if decl.get("default") is not None:
        return lambda text: text != "" and check(text)
    return check


def _one_element_schema(
    index: SchemaIndex, source: etree._Element, decl: etree._Element, definition: Any
) -> Any:
    """A schema with the source's simple types and one element ``v`` of ``decl``'s type (its
    ``fixed`` and ``default`` kept); None if lxml cannot compile it."""
    tns = index.tns
    root = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS, "t": tns} if tns else {"xs": XS})
    if tns:
        root.set("targetNamespace", tns)
    for el in source:
        if el.tag == f"{{{XS}}}simpleType":
            root.append(copy.deepcopy(el))
    element = etree.SubElement(root, f"{{{XS}}}element", name="v")
    kept = ("fixed", "default") if decl.tag == f"{{{XS}}}element" else ("fixed",)
    for attribute in kept:  # an attribute's default applies only when it is absent
        if decl.get(attribute) is not None:
            element.set(attribute, decl.get(attribute))
    if isinstance(definition, str):
        element.set("type", f"xs:{definition}")
    elif definition.get("name") is not None and definition.getparent() is source:
        element.set("type", f"t:{definition.get('name')}" if tns else definition.get("name"))
    else:
        element.append(copy.deepcopy(definition))
    try:
        return etree.XMLSchema(root)
    except etree.XMLSchemaParseError:
        return None
