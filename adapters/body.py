"""SOAP message bodies compiled from zeep's type information: the model and the reference rules.

zeep walks its XSD objects for every message it serialises (about 350 µs for the Hong Kong renewal
request on this machine, 130 µs more to read the reply). The same type information is compiled here
once per operation into a tree of :class:`Node`; :mod:`adapters.bodygen` turns the tree into
generated Python (about 11 µs to write that request, 5 µs to read its reply), and the functions
below interpret it: they are the slow path for unusual values and the reference in tests.
Validation is at least zeep's: required elements, no unknown keys, occurrence bounds, and built-in
types checked more strictly (see :mod:`adapters.xsdtypes`). Every problem is reported with its dotted
path (``owner.hkid.number: required element missing``).

What the compiler does not cover (``xs:choice``, ``xs:any``, attributes, SOAP-encoded arrays,
recursive types, rpc style) falls back to zeep's own serialiser and deserialiser for that message,
through :class:`adapters.wsdl.ZeepBody`: slower, same results. SOAP header parts are compiled with
their attributes (:mod:`adapters.soapheaders`; an attribute is the key ``@name``) and written by the
interpreted functions below.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lxml import etree  # type: ignore[import-untyped]
from zeep.xsd import ComplexType, Element
from zeep.xsd.elements.attribute import Attribute
from zeep.xsd.elements.indicators import All, Sequence
from zeep.xsd.types.simple import AnySimpleType

from adapters.xsdtypes import STRING, BadValue, SimpleType, builtin

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_MAX_NESTING = 32
# Text that needs escaping (& < > and carriage return), or holds a character XML cannot carry:
# such values take the slow path. One negated class, not an alternation of two: the same characters
# (every code point checked in the tests), a third of the time on the text of a whole request.
NEEDS_ESCAPING = re.compile(
    "[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


class BodyInvalid(Exception):
    """A payload or a reply does not match the WSDL; ``problems`` names each path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Body(Protocol):
    """One message's body content: written from a payload, read into a JSON-ready dict."""

    nsmap: Mapping[str, str]  # prefixes the written text relies on (declared on the Envelope)
    tag: str  # Clark name of the body's (first) element

    def write(self, values: Mapping[str, Any]) -> str:
        """XML text of the body content; BodyInvalid naming every bad path."""

    def read(self, body: etree._Element, first: etree._Element | None) -> dict[str, Any]:
        """The message (``first``, the Body's first element) as plain data; BodyInvalid if wrong."""


@dataclass(frozen=True, slots=True)
class Attr:
    """One compiled attribute: its key (``@objectType``), prefixed name and simple type."""

    key: str
    name: str
    simple: SimpleType
    required: bool


@dataclass(eq=False, slots=True)
class Node:
    """One compiled element: its tags, occurrence bounds and simple type or children."""

    key: str
    tag: str
    open: str
    close: str
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    nillable: bool
    simple: SimpleType | None
    text: bool = False  # a string type: any XML-safe text goes as it is
    children: tuple[Node, ...] = ()
    by_key: dict[str, Node] = field(default_factory=dict)
    by_tag: dict[str, Node] = field(default_factory=dict)
    required: tuple[Node, ...] = ()  # children with minOccurs >= 1
    lists: tuple[str, ...] = ()  # keys of children that may repeat (read as lists)
    attrs: tuple[Attr, ...] = ()  # compiled for header parts only (bodies with attributes: zeep)

    @property
    def many(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1


class Unsupported(Exception):
    """The compiler cannot handle this type; use :class:`ZeepBody`."""


class Prefixes:
    """Namespace → prefix, assigned in order of first use (ns0, ns1…)."""

    def __init__(self) -> None:
        self.by_ns: dict[str, str] = {}

    def name(self, tag: etree.QName) -> str:
        if not tag.namespace:
            return str(tag.localname)
        prefix = self.by_ns.setdefault(tag.namespace, f"ns{len(self.by_ns)}")
        return f"{prefix}:{tag.localname}"

    @property
    def nsmap(self) -> dict[str, str]:
        return {p: ns for ns, p in self.by_ns.items()}


def compile_element(
    element: Any, prefixes: Prefixes, depth: int = 0, *, attributes: bool = False
) -> Node:
    """Compile a zeep ``Element`` (and its type tree); Unsupported if it needs zeep.

    With ``attributes`` (header parts), attributes of complex types are compiled too."""
    if depth > _MAX_NESTING:
        raise Unsupported("nesting too deep (recursive type?)")
    qname = etree.QName(element.qname)
    name = prefixes.name(qname)
    xsd_type = element.type
    max_occurs = element.max_occurs
    node = Node(
        key=element.attr_name or element.name,
        tag=qname.text,
        open=f"<{name}>",
        close=f"</{name}>",
        min_occurs=element.min_occurs,
        max_occurs=None if max_occurs == "unbounded" else int(max_occurs),
        nillable=bool(element.nillable),
        simple=None,
    )
    if isinstance(xsd_type, AnySimpleType):
        if type(xsd_type).__name__ in ("ListType", "UnionType"):
            raise Unsupported(f"{qname.localname}: list or union type")
        node.simple = _simple(xsd_type)
        node.text = node.simple is STRING
        return node
    if not isinstance(xsd_type, ComplexType):
        raise Unsupported(f"{qname.localname}: xs:anyType")
    if (xsd_type.attributes and not attributes) or getattr(xsd_type, "_array_type", None):
        raise Unsupported(f"{qname.localname}: attributes or SOAP-encoded array")
    node.attrs = tuple(_attribute(a, prefixes) for _, a in xsd_type.attributes)
    children = [
        compile_element(el, prefixes, depth + 1, attributes=attributes)
        for el in _particles(xsd_type)
    ]
    if node.attrs and not children and xsd_type.elements_nested:
        raise Unsupported(f"{qname.localname}: text content with attributes")
    node.children = tuple(children)
    node.by_key = {c.key: c for c in children}
    node.by_tag = {c.tag: c for c in children}
    node.required = tuple(c for c in children if c.min_occurs)
    node.lists = tuple(c.key for c in children if c.many)
    return node


def _particles(xsd_type: Any) -> list[Any]:
    out: list[Any] = []

    def walk(particle: Any) -> None:
        if isinstance(particle, Element) and type(particle) is Element:
            out.append(particle)
        elif (
            isinstance(particle, Sequence | All) and particle.min_occurs == 1 == particle.max_occurs
        ):
            for item in particle:
                walk(item)
        else:
            raise Unsupported(f"{type(particle).__name__} particle")

    for _, particle in xsd_type.elements_nested:
        walk(particle)
    return out


def _attribute(attribute: Any, prefixes: Prefixes) -> Attr:
    if not isinstance(attribute, Attribute) or not isinstance(attribute.type, AnySimpleType):
        raise Unsupported("an attribute group or a wildcard attribute")
    qname = etree.QName(attribute.qname)
    return Attr(
        key=f"@{qname.localname}",
        name=prefixes.name(qname),
        simple=_simple(attribute.type),
        required=bool(attribute.required),
    )


def _simple(xsd_type: Any) -> SimpleType:
    for cls in type(xsd_type).__mro__:
        default = cls.__dict__.get("_default_qname")
        if default is not None and cls.__module__ == "zeep.xsd.types.builtins":
            return builtin(etree.QName(default).localname) or STRING
    return STRING


def write_general(node: Node, value: Any, path: str, out: list[str], problems: list[str]) -> None:
    """Any value for one element, by the interpreted rules (the generated code's slow path)."""
    if value is None:
        if node.min_occurs and node.nillable:
            out.append(node.open[:-1] + f' xmlns:xsi="{XSI_NS}" xsi:nil="true"/>')
        elif node.min_occurs:
            problems.append(f"{path}: required element missing")
    elif type(value) is list or type(value) is tuple:
        _write_list(node, value, path, out, problems)
    else:
        _write_one(node, value, path, out, problems)


def write_children(
    node: Node, values: Any, prefix: str, out: list[str], problems: list[str]
) -> None:
    if not isinstance(values, Mapping):
        problems.append(
            f"{prefix[:-1] or node.key}: expected a mapping of elements, got {_kind(values)}"
        )
        return
    by_key = node.by_key
    if not values.keys() <= by_key.keys():
        for key in values:
            if key not in by_key and not (node.attrs and key in _attr_keys(node)):
                hint = difflib.get_close_matches(str(key), list(by_key), n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(f"{prefix}{key}: no such element in the WSDL{more}")
    # This loop runs for every element of every request: the common cases come first and inline.
    for child in node.children:
        value = values.get(child.key)
        if value is None:
            if child.min_occurs and child.nillable:
                out.append(child.open[:-1] + f' xmlns:xsi="{XSI_NS}" xsi:nil="true"/>')
            elif child.min_occurs:
                problems.append(f"{prefix}{child.key}: required element missing")
            continue
        kind = type(value)
        if kind is str and child.text and NEEDS_ESCAPING.search(value) is None:
            out.append(child.open + value + child.close)
        elif kind is list or kind is tuple:
            _write_list(child, value, prefix + child.key, out, problems)
        else:
            _write_one(child, value, prefix + child.key, out, problems)


def _write_list(node: Node, values: Any, path: str, out: list[str], problems: list[str]) -> None:
    if not node.many:
        problems.append(f"{path}: one value expected, got a list")
        return
    count = len(values)
    if count < node.min_occurs or (node.max_occurs is not None and count > node.max_occurs):
        bounds = f"{node.min_occurs}..{node.max_occurs or 'unbounded'}"
        problems.append(f"{path}: {count} values, the WSDL allows {bounds}")
        return
    for i, item in enumerate(values):
        _write_one(node, item, f"{path}[{i}]", out, problems)


def _write_one(node: Node, value: Any, path: str, out: list[str], problems: list[str]) -> None:
    if node.simple is None:
        out.append(_open_tag(node, value, path, problems) if node.attrs else node.open)
        write_children(node, value, path + ".", out, problems)
        out.append(node.close)
        return
    try:
        out.append(node.open + node.simple.write(value) + node.close)
    except BadValue as exc:
        problems.append(f"{path}: {exc}")


def _attr_keys(node: Node) -> frozenset[str]:
    return frozenset(a.key for a in node.attrs)


def _open_tag(node: Node, values: Any, path: str, problems: list[str]) -> str:
    """The start tag of a complex element with its attributes (``@name`` keys of ``values``)."""
    if not isinstance(values, Mapping):
        return node.open  # write_children names the wrong kind
    written = []
    for attr in node.attrs:
        value = values.get(attr.key)
        if value is None:
            if attr.required:
                problems.append(f"{path}.{attr.key}: required attribute missing")
            continue
        try:
            text = attr.simple.write(value)
        except BadValue as exc:
            problems.append(f"{path}.{attr.key}: {exc}")
            continue
        # An attribute value also needs its quotes and white space kept as characters.
        text = text.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
        written.append(f' {attr.name}="{text}"')
    return node.open[:-1] + "".join(written) + ">"


def read_children(
    node: Node, el: etree._Element, prefix: str, problems: list[str]
) -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(node.by_key)
    for key in node.lists:
        result[key] = []
    present: set[str] = set()
    by_tag = node.by_tag
    for sub in el:
        child = by_tag.get(sub.tag)
        if child is None:
            if isinstance(sub.tag, str):
                problems.append(f"{prefix}{etree.QName(sub).localname}: unexpected element")
            continue
        key = child.key
        text = sub.text
        if text is not None and child.text and not len(sub):
            value: Any = text  # plain text, the common case
        elif text is None and sub.get(XSI_NIL) in ("true", "1"):
            value = None
        elif child.simple is None:
            value = read_children(child, sub, f"{prefix}{key}.", problems)
        elif len(sub):
            problems.append(f"{prefix}{key}: expected text, found child elements")
            continue
        else:
            try:
                value = child.simple.read(text or "")
            except BadValue as exc:
                problems.append(f"{prefix}{key}: {exc}")
                continue
        if child.many:
            result[key].append(value)
        elif key in present:
            problems.append(f"{prefix}{key}: repeated, the WSDL allows one")
        else:
            present.add(key)
            result[key] = value
    for child in node.required:
        if not (result[child.key] if child.many else child.key in present):
            problems.append(f"{prefix}{child.key}: required element missing")
    return result


def read_element(node: Node, el: etree._Element, prefix: str, problems: list[str]) -> Any:
    """One element's value by the interpreted rules; None (and a problem noted) if it is wrong."""
    text = el.text
    if text is None and el.get(XSI_NIL) in ("true", "1"):
        return None
    if node.simple is None:
        return read_children(node, el, f"{prefix}{node.key}.", problems)
    if len(el):
        problems.append(f"{prefix}{node.key}: expected text, found child elements")
        return None
    try:
        return node.simple.read(text or "")
    except BadValue as exc:
        problems.append(f"{prefix}{node.key}: {exc}")
        return None


def unexpected(el: etree._Element, prefix: str, problems: list[str]) -> None:
    if isinstance(el.tag, str):
        problems.append(f"{prefix}{etree.QName(el).localname}: unexpected element")


def first_child(el: etree._Element) -> etree._Element | None:
    for sub in el:
        if isinstance(sub.tag, str):
            return sub
    return None


def _kind(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:60]
