"""SOAP headers: the parts a WSDL operation declares, filled from partners.yaml, mapping and exchange.

A binding declares an operation's header parts (``soap:header message=… part=…``); zeep gives them
as one element whose children are the parts. Each part is compiled with :func:`compile_element`
(attributes included: the key ``@objectType``) and written by the same interpreted writers as a body,
so every value is type-checked and escaped as the body's are; nothing is concatenated as text.

Values come, in this order, each over the one before: fixed values (partners.yaml ``soap: headers:``
and a profile such as X-Road), the mapping's ``headers:`` section (``@headers`` of the mapped
request), then per message the exchange values the mapping asked for (``@exchange``), the profile's
message id and the idempotency key, where partners.yaml places it.

Paths in partners.yaml are written with ``/`` between steps; a step is an element name, with its
namespace in Clark notation if wanted (``{urn:mo:gov:dsi:pedidos:2026}Cabecalho/ChaveIdempotencia``),
or ``@attribute``. Mapping targets use dots (``Cabecalho.ChaveIdempotencia``), as ``request:`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from zeep.xsd import ComplexType

from adapters.body import BodyInvalid, Node, Prefixes, Unsupported, compile_element, write_general
from federation.domain.texts import Text, said

KeyPath = tuple[str, ...]
_STEP = re.compile(r"(?:\{([^{}\s]+)\})?(@?[A-Za-z_][A-Za-z0-9_.-]*)")  # {ns}name or @name


class HeaderPathError(ValueError):
    """A header or body path that is not well formed, or names nothing the WSDL declares;
    ``text`` is the message as a template and its values, for the CLI to say in the reader's
    language (``str(exc)`` is the English)."""

    def __init__(self, message: Text | str) -> None:
        super().__init__(str(message))
        self.text = message


@dataclass(frozen=True, kw_only=True)
class HeaderParts:
    """An operation's header parts, compiled, in the binding's order."""

    parts: Mapping[str, Node]  # part element's local name → compiled node
    tags: Mapping[str, str]  # Clark tag → local name
    unsupported: Mapping[str, str] = field(default_factory=dict)  # local name → why not compiled
    nsmap: Mapping[str, str] = field(
        default_factory=dict
    )  # prefix → namespace the parts' text uses

    def __bool__(self) -> bool:
        return bool(self.parts or self.unsupported)


NO_HEADERS = HeaderParts(parts={}, tags={})


def compile_headers(message: Any, prefixes: Prefixes) -> HeaderParts:
    """The header parts of a zeep input message (NO_HEADERS if it declares none)."""
    header = getattr(message, "header", None) if message is not None else None
    if header is None or not isinstance(header.type, ComplexType):
        return NO_HEADERS
    parts: dict[str, Node] = {}
    tags: dict[str, str] = {}
    unsupported: dict[str, str] = {}
    for _, element in header.type.elements:
        qname = etree.QName(element.qname)
        tags[qname.text] = qname.localname
        try:
            parts[qname.localname] = compile_element(element, prefixes, 1, attributes=True)
        except Unsupported as exc:
            unsupported[qname.localname] = str(exc)
    return HeaderParts(parts=parts, tags=tags, unsupported=unsupported, nsmap=prefixes.nsmap)


def parse_steps(text: str) -> list[tuple[str | None, str]]:
    """``{ns}A/B/@c`` → ``[(ns, "A"), (None, "B"), (None, "@c")]`` (a namespace may hold ``/``);
    HeaderPathError if malformed."""
    steps: list[tuple[str | None, str]] = []
    pos = 0
    while True:
        m = _STEP.match(text, pos)
        if m is None:
            raise HeaderPathError(
                said(
                    "%(text)r: %(rest)r is not an element name, {namespace}Name or @attribute",
                    text=text,
                    rest=text[pos : pos + 40],
                )
                if pos < len(text)
                else said(
                    "%(text)r: '(nothing)' is not an element name, {namespace}Name or @attribute",
                    text=text,
                )
            )
        steps.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos == len(text):
            break
        if text[pos] != "/":
            raise HeaderPathError(
                said(
                    "%(text)r: unexpected %(char)r at position %(pos)d",
                    text=text,
                    char=text[pos],
                    pos=pos + 1,
                )
            )
        pos += 1
    if any(name.startswith("@") for _, name in steps[:-1]):
        raise HeaderPathError(
            said("in %(text)r an @attribute can only be the last step", text=text)
        )
    return steps


def resolve(parts: HeaderParts, text: str) -> KeyPath:
    """A partners.yaml header path as keys of the header value tree; HeaderPathError if the WSDL's
    header parts have no such element or attribute (the message names what they have)."""
    steps = parse_steps(text)
    ns, name = steps[0]
    key = parts.tags.get(f"{{{ns}}}{name}") if ns else (name if name in parts.parts else None)
    if key is None and name in parts.unsupported:
        raise HeaderPathError(
            said(
                "header part %(name)s uses XSD features tongban cannot write (%(why)s)",
                name=name,
                why=parts.unsupported[name],
            )
        )
    if key is None or key not in parts.parts:
        raise HeaderPathError(
            said(
                "the operation declares no header part %(name)r (its header parts: %(known)s)",
                name=steps[0][1],
                known=", ".join(parts.tags),
            )
            if parts.tags
            else said(
                "the operation declares no header part %(name)r (its header parts: none)",
                name=steps[0][1],
            )
        )
    node = parts.parts[key]
    out = [key]
    for ns, name in steps[1:]:
        child = _child(node, ns, name)
        if child is None:
            have = [c.key for c in node.children] + [a.key for a in node.attrs]
            where = "/".join(out)
            raise HeaderPathError(
                said(
                    "%(path)s has no %(name)r; it has: %(have)s",
                    path=where,
                    name=name,
                    have=", ".join(have),
                )
                if have
                else said("%(path)s has no %(name)r; it has: nothing", path=where, name=name)
            )
        out.append(name if isinstance(child, str) else child.key)
        if isinstance(child, str):
            break
        node = child
    return tuple(out)


def _child(node: Node, ns: str | None, name: str) -> Node | str | None:
    if name.startswith("@"):
        return name if any(a.key == name for a in node.attrs) else None
    if ns:
        return node.by_tag.get(f"{{{ns}}}{name}")
    return node.by_key.get(name)


def body_path(paths: set[str], text: str) -> KeyPath:
    """A partners.yaml body path (``pedido/chave``) as payload keys; HeaderPathError if the
    operation's input has no such element (``paths``: its dotted element paths)."""
    steps = parse_steps(text)
    keys = tuple(name for _, name in steps)
    if any(k.startswith("@") for k in keys):
        raise HeaderPathError(
            said("the idempotency key goes into an element of the body, not an attribute")
        )
    if ".".join(keys) not in paths:
        raise HeaderPathError(
            said("the operation's input has no element %(path)s", path="/".join(keys))
        )
    return keys


def tree(parts: HeaderParts, optional: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """Dotted paths of every header element and attribute, and the required ones: a declared part
    is required (WSDL 1.1 cannot mark one optional) unless ``optional`` names it; inside a part,
    minOccurs and ``use="required"`` decide."""
    paths: set[str] = set()
    required: set[str] = set()
    for key, node in parts.parts.items():
        _walk(node, key, key not in optional, paths, required)
    for key in parts.unsupported:
        paths.add(key)
        if key not in optional:
            required.add(key)
    return paths, required


def _walk(node: Node, path: str, needed: bool, paths: set[str], required: set[str]) -> None:
    paths.add(path)
    if needed:
        required.add(path)
    for attr in node.attrs:
        paths.add(f"{path}.{attr.key}")
        if needed and attr.required:
            required.add(f"{path}.{attr.key}")
    for child in node.children:
        _walk(child, f"{path}.{child.key}", needed and child.min_occurs > 0, paths, required)


def put(values: dict[str, Any], path: KeyPath, value: Any) -> None:
    """Set ``value`` at ``path`` in a nested dict, creating (or copying) the dicts on the way."""
    here = values
    for key in path[:-1]:
        below = here.get(key)
        here[key] = below = dict(below) if isinstance(below, dict) else {}
        here = below
    here[path[-1]] = value


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: nested mappings merged, anything else replaced; new dicts."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, dict):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def covered(filled: set[str], need: str) -> bool:
    """Whether a required dotted path is written by one of ``filled`` (or one above or below it)."""
    return any(f == need or f.startswith(need + ".") or need.startswith(f + ".") for f in filled)


def render(parts: HeaderParts, values: Mapping[str, Any]) -> list[str]:
    """The header blocks for ``values``, one per part given, in the binding's order; BodyInvalid
    naming every bad path (an unknown part, a wrong type, a required element missing)."""
    problems: list[str] = []
    out: list[str] = []
    for key in values:
        if key not in parts.parts:
            why = parts.unsupported.get(key)
            problems.append(
                f"{key}: "
                + (f"tongban cannot write it ({why})" if why else "no such header part in the WSDL")
            )
    for key, node in parts.parts.items():
        value = values.get(key)
        if value is not None:
            write_general(node, value, key, out, problems)
    if problems:
        raise BodyInvalid(problems)
    return out


def dotted(path: KeyPath) -> str:
    return ".".join(path)


def leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values in a nested mapping (what a fixed header tree fills)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaves(value, path + ".")
        else:
            yield path
