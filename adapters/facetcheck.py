"""A quick "surely valid" for a SOAP body's facets, compiled once per operation from the WSDL's
XML Schema, so that libxml2 need not parse and validate every body the adapter writes.

:class:`adapters.facets.CheckedBody` validated each written body with lxml: 16–20 µs alone and two
to four times that under load, most of what the adapter spent beyond the HTTP exchange. Yet the
body was written from a payload whose shape the compiled writer has already checked (required
elements, no unknown keys, occurrence bounds, built-in types); what lxml adds is the simple types'
facets. :func:`compile_check` reads those once (:mod:`adapters.facettypes`) and checks the
payload's values with them in generated Python, as :mod:`adapters.bodygen` writes them.

The check answers only "surely valid" (True) or "ask lxml" (False): every False goes to lxml,
which decides and writes the messages, as before. So a True must never be given where libxml2
would say no, and whatever is not judged exactly is False:

* only a body compiled by :mod:`adapters.bodygen` whose schema declarations are the compiled
  tree's own (same elements, order and bounds, plain sequences, no attributes, no ``ref``, no
  xs:choice, no identity constraints); otherwise there is no check at all;
* a nil element, a value of a type :mod:`adapters.facettypes` does not judge, an element with a
  ``default`` and empty text, a ``fixed`` value on anything but a string: False.

A ``str`` value is checked as it is: every writer of :mod:`adapters.xsdtypes` writes a ``str`` in
the forms accepted here unchanged (it strips white space these forms do not have, and turns an
integer into the canonical spelling they require). Other values (``int``, ``Decimal``, ``date``)
are checked as the writer writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from adapters.body import Body, Node
from adapters.bodygen import CompiledBody
from adapters.facettypes import (
    ANY,
    LENGTH,
    MAX_DEPTH,
    XS,
    Check,
    Enumeration,
    Lengths,
    Quick,
    SchemaIndex,
    Unknown,
    children,
    simple_type,
)
from adapters.xsdtypes import INTEGER_TYPES, BadValue

Conforms = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Child:
    """One element of a compiled body with what its values must satisfy."""

    key: str
    many: bool
    required: bool  # minOccurs >= 1: a None here is a nil element (or an error): False
    write: Callable[[Any], str] | None  # the compiled writer's own conversion, for other values
    check: Check | None  # a simple element's check; None: unknown (any value: False)
    numeric: bool  # an integer or decimal type: an ``int`` value is written as ``str(value)``
    inner: tuple[Child, ...] | None  # a complex element's children


def compile_check(body: Body, schema: etree._Element | None) -> Conforms | None:
    """``values`` → True when the body written from them is surely valid against ``schema`` (the
    XML Schema of the body element's namespace); None when this body cannot be checked so."""
    if not isinstance(body, CompiledBody) or schema is None:
        return None
    tree = compile_tree(body.root, schema)
    return None if tree is None else generate(tree)


def compile_tree(root: Node, schema: etree._Element) -> tuple[Child, ...] | None:
    """The checks of ``root``'s children, or None when the schema does not declare ``root`` as
    the compiled tree has it."""
    qname = etree.QName(root.tag)
    if (qname.namespace or "") != schema.get("targetNamespace", ""):
        return None
    index = SchemaIndex(schema)
    decl = index.elements.get(qname.localname)
    try:
        if decl is None:
            raise Unknown("no such global element")
        return _complex(index, declared_type(index, decl), root, 0)
    except Unknown:
        return None


def conforms(tree: tuple[Child, ...], values: Any) -> bool:
    """The check interpreted: the generated code's slow path (lists, other values) and the
    reference in tests."""
    if type(values) is not dict:
        return False
    for child in tree:
        value = values.get(child.key)
        if value is None:
            if child.required:
                return False
        elif not _value(child, value):
            return False
    return True


def _value(child: Child, value: Any) -> bool:
    if type(value) is list or type(value) is tuple:
        return child.many and all(_one(child, item) for item in value)
    return _one(child, value)


def _one(child: Child, value: Any) -> bool:
    if value is None:
        return False
    if child.inner is not None:
        return conforms(child.inner, value)
    check = child.check
    if check is None:
        return False
    if check is ANY or type(value) is str:
        return check(value)
    try:
        text = child.write(value) if child.write is not None else None
    except BadValue:
        return False
    return text is not None and check(text)


def generate(tree: tuple[Child, ...]) -> Conforms:
    """One generated function per complex type, children unrolled, the common cases inline (a
    ``str`` value, a ``dict`` for a complex child); anything else goes to :func:`conforms`.

    The source never holds a string from the WSDL: keys and checks are variables of its
    namespace, so a hostile WSDL cannot inject code."""
    env: dict[str, Any] = {"slow": _value}
    lines: list[str] = []
    top = _emit(tree, env, lines)
    exec(compile("\n".join(lines), "<soap facet check>", "exec"), env)
    check: Conforms = env[top]
    return check


def _emit(tree: tuple[Child, ...], env: dict[str, Any], lines: list[str]) -> str:
    fn = f"c{len(env)}"
    env[fn] = None
    code = [f"def {fn}(values):", "    if type(values) is not dict:", "        return False"]
    for j, child in enumerate(tree):
        c = f"{fn}_{j}"
        env.update({c: child, f"{c}_k": child.key})
        absent = "return False" if child.required else "pass"
        code += [f"    v = values.get({c}_k)", "    if v is None:", f"        {absent}"]
        if child.inner is not None:
            inner = _emit(child.inner, env, lines)
            code += [
                "    elif type(v) is dict:",
                f"        if not {inner}(v):",
                "            return False",
            ]
        elif child.check is None:
            code += ["    else:", "        return False"]
            continue
        elif child.check is ANY:
            continue  # any value the writer took is valid
        else:
            code += [
                "    elif type(v) is str:",
                f"        if not ({value_test(c, child.check, env)}):",
            ]
            code += ["            return False"]
            if child.numeric:
                code += ["    elif type(v) is int:", f"        if not {c}_f(str(v)):"]
                code += ["            return False"]
        code += [f"    elif not slow({c}, v):", "        return False"]
    lines += [*code, "    return True", ""]
    return fn


def value_test(c: str, check: Check, env: dict[str, Any]) -> str:
    """The expression testing a ``str`` value ``v``: lengths and single enumerations inline."""
    env[f"{c}_f"] = check
    if isinstance(check, Lengths):
        env.update({f"{c}_lo": check.low, f"{c}_hi": check.high})
        return f"{c}_lo <= len(v) <= {c}_hi"
    if isinstance(check, Quick):
        env.update({f"{c}_n": check.limit, f"{c}_q": check.pattern.fullmatch})
        env[f"{c}_f"] = check.check
        return f"len(v) <= {c}_n and {c}_q(v) is not None or {c}_f(v)"
    if isinstance(check, Enumeration):
        env[f"{c}_in"] = check.values
        return f"v in {c}_in"
    return f"{c}_f(v)"


_ELEMENT_ATTRS_OK = frozenset(
    {"name", "type", "minOccurs", "maxOccurs", "form", "fixed", "default", "nillable", "id"}
)


def declared_type(index: SchemaIndex, decl: etree._Element) -> etree._Element | str:
    """An element declaration's type: its inline or named definition, or a built-in's local
    name (``"string"``)."""
    if not set(decl.attrib) <= _ELEMENT_ATTRS_OK:
        raise Unknown("ref, abstract, substitution group or a foreign attribute")
    inline = children(decl)
    if inline:
        if len(inline) != 1 or decl.get("type") is not None:
            raise Unknown("identity constraints or two types")
        return inline[0]
    ref = decl.get("type")
    if ref is None:
        raise Unknown("xs:anyType")
    ns, local = index.ref(decl, ref)
    if ns == XS:
        return local
    if ns != index.tns:
        raise Unknown("a type from another schema")
    found = index.simple.get(local) if local in index.simple else index.complex.get(local)
    if found is None:
        raise Unknown("an undefined type")
    return found


def _complex(
    index: SchemaIndex, definition: etree._Element | str, node: Node, depth: int
) -> tuple[Child, ...]:
    """The checks of a complex type's children, which must be ``node``'s, in the same order."""
    if isinstance(definition, str) or definition.tag != f"{{{XS}}}complexType":
        raise Unknown("not a complex type")
    if depth > MAX_DEPTH or definition.get("mixed") in ("true", "1"):
        raise Unknown("too deep, or mixed content")
    if definition.get("abstract") in ("true", "1"):
        raise Unknown("an abstract type")
    parts = children(definition)
    decls: list[etree._Element] = []
    if parts:
        sequence = parts[0]
        if len(parts) != 1 or sequence.tag != f"{{{XS}}}sequence":
            raise Unknown("not one plain sequence")
        if sequence.get("minOccurs", "1") != "1" or sequence.get("maxOccurs", "1") != "1":
            raise Unknown("a repeated or optional sequence")
        decls = children(sequence)
    if len(decls) != len(node.children):
        raise Unknown("not the compiled tree's elements")
    out = []
    for decl, child in zip(decls, node.children, strict=True):
        if decl.tag != f"{{{XS}}}element" or not _same_element(index, decl, child):
            raise Unknown("not the compiled tree's element")
        out.append(_child(index, decl, child, depth))
    return tuple(c for c in out if c.check is not ANY or c.required)


def _same_element(index: SchemaIndex, decl: etree._Element, child: Node) -> bool:
    qualified = decl.get("form", "qualified" if index.qualified else "unqualified")
    ns = index.tns if qualified == "qualified" else ""
    low = decl.get("minOccurs", "1")
    high = decl.get("maxOccurs", "1")
    if not LENGTH.fullmatch(low) or not (high == "unbounded" or LENGTH.fullmatch(high)):
        return False
    return (
        etree.QName(ns or None, decl.get("name", "")).text == child.tag
        and int(low) == child.min_occurs
        and (None if high == "unbounded" else int(high)) == child.max_occurs
    )


def _child(index: SchemaIndex, decl: etree._Element, child: Node, depth: int) -> Child:
    write = child.simple.write if child.simple is not None else None
    inner = check = None
    base = ""
    if child.simple is None:
        inner = _complex(index, declared_type(index, decl), child, depth + 1)
    else:
        try:  # a simple type not judged here leaves only this element to lxml
            base, check = _element_check(index, decl, declared_type(index, decl), child)
        except Unknown:
            check = None
    return Child(
        key=child.key,
        many=child.many,
        required=bool(child.min_occurs),
        write=write,
        check=check,
        numeric=base == "decimal" or base in INTEGER_TYPES,
        inner=inner,
    )


def _element_check(
    index: SchemaIndex, decl: etree._Element, definition: etree._Element | str, child: Node
) -> tuple[str, Check]:
    """A simple element's built-in base and check: its type's, with the element's ``fixed`` or
    ``default``."""
    base, check = simple_type(index, definition, 0)
    text = base in ("string", "anyURI")  # what the compiled writer writes as text
    expected = "xs:string" if text else f"xs:{base}"
    if child.simple is None or child.simple.name != expected or child.text != text:
        raise Unknown("the compiled writer reads the type otherwise")
    fixed = decl.get("fixed")
    if fixed is not None:
        if base != "string":
            raise Unknown("a fixed value compared in a value space")
        return base, lambda text: text == fixed and check(text)
    if decl.get("default") is not None:  # an empty element takes the default: not judged here
        return base, lambda text: text != "" and check(text)
    return base, check
