"""SOAP header values that are not fixed in partners.yaml, against their elements' facets.

A mapping's ``headers:`` section (values taken from the application), the exchange values it asks
for (``exchange.attempt_time``…), a profile's per-message values (X-Road's ``xrd:id``) and the
idempotency key placed in a header are known only when a message is written. The compiled writer
checks their built-in types; the partner's XML Schema may restrict them further (a pattern, a
maxLength, an enumeration). :class:`SentCheck` judges each such value at every send: the quick
"surely valid" of the body check (:mod:`adapters.facettypes`, through
:func:`adapters.headerfacets.quick_check`) where it is sure, else the written header part is
validated by lxml against the WSDL's schemas, imports included (:mod:`adapters.headerschema`).
A value that breaks its facet is the request's fault: nothing is sent, and the problem names the
element and the facet, never the value (it may be personal data).

:func:`check_written` does the same at load for what partners.yaml fixes: a profile's values
(X-Road's client and service identifiers, userId, issue, protocolVersion), and the literals the
element-by-element check of :mod:`adapters.headerfacets` cannot judge, each problem at its line.
A profile's value the compiled writer refuses (not of its element's built-in type: "abc" for an
xs:int) is found there too, schema or not: it would make the writer refuse its whole header part at
every send, and the part's other values are then validated without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.body import BodyInvalid, Node
from adapters.facettypes import ANY, Check
from adapters.headerfacets import descend, quick_check, value_check
from adapters.headerschema import TYPE, Broken, HeaderSchema
from adapters.soapheaders import HeaderParts, HeaderPathError, KeyPath, render, resolve
from adapters.xroad import XRoadProfile, XRoadService, item_setting, setting_of
from adapters.xsdtypes import BadValue
from federation.config.reader import Reader
from federation.config.secrets import SecretRef
from federation.config.yamlsrc import PathKey
from federation.domain.texts import Text, said

_ABOVE: Any = object()  # a path with elements below it: its own leaves are touched and judged


@dataclass(frozen=True, kw_only=True)
class SentCheck:
    """What the header values written at every send are checked with, for one operation."""

    schema: HeaderSchema
    nsmap: Mapping[str, str]  # the prefixes the written parts use
    quick: Mapping[KeyPath, Check | None]  # each text element's or attribute's quick check

    def problems(
        self,
        parts: HeaderParts,
        values: Mapping[str, Any],
        touched: Iterable[KeyPath],
        secrets: Iterable[KeyPath] = (),
    ) -> list[str]:
        """The facets the ``touched`` values break, by element; empty if none. Each header part
        holding one that the quick check is not sure of is written alone and validated (its
        other values were checked at load, or are secrets checked when read: a problem at a
        secret's path is left to that check, which names the reference)."""
        unsure: dict[str, None] | None = None
        quick = self.quick
        for path in touched:
            check = quick.get(path, _ABOVE)
            if check is ANY or check is _ABOVE:  # any value the writer took; or its leaves are
                continue
            if check is not None and _text(values, path, check):
                continue
            if unsure is None:
                unsure = {}
            unsure[path[0]] = None
        if unsure is None:
            return []
        blocks = render(parts, {key: values[key] for key in unsure if key in values})
        hidden = {".".join(path) for path in secrets}
        broken = self.schema.problems(blocks, self.nsmap)
        return [said_of(b) for b in broken if b.path not in hidden]


def _text(values: Mapping[str, Any], path: KeyPath, check: Check) -> bool:
    """Whether the value at ``path`` is absent or a text the quick check is sure of."""
    value: Any = values
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value is None or (type(value) is str and check(value))


def said_of(broken: Broken) -> str:
    """A problem as the journal's error says it: the element and the facet, never the value."""
    if broken.facets == (TYPE,):
        return f"{broken.path} (SOAP header): the value is not one its XML Schema type allows"
    facets = ", ".join(f for f in broken.facets if f != TYPE)
    return f"{broken.path} (SOAP header): the value breaks the WSDL's XML Schema facet {facets}"


def sent_check(schema: HeaderSchema | None, parts: HeaderParts) -> SentCheck | None:
    """The check of ``parts``' values against ``schema`` (None without one)."""
    if schema is None or not parts.parts:
        return None
    quick: dict[KeyPath, Check | None] = {}
    for key, node in parts.parts.items():
        for path in _texts(node, (key,)):
            quick[path] = quick_check(schema, node, path)
    return SentCheck(schema=schema, nsmap=dict(parts.nsmap), quick=quick)


def _texts(node: Node, path: KeyPath) -> Iterator[KeyPath]:
    """The paths of every element with text and every attribute at and below ``node``."""
    if node.simple is not None:
        yield path
    for attr in node.attrs:
        yield (*path, attr.key)
    for child in node.children:
        yield from _texts(child, (*path, child.key))


def touched_paths(values: Mapping[str, Any], prefix: KeyPath = ()) -> list[KeyPath]:
    """The paths of the values in a nested mapping (a mapping's ``headers:``)."""
    out: list[KeyPath] = []
    for key, value in values.items():
        if type(value) is not str and isinstance(value, Mapping) and value:
            out.extend(touched_paths(value, (*prefix, str(key))))
        else:
            out.append((*prefix, str(key)))
    return out


def written_problems(
    schema: HeaderSchema | None, parts: HeaderParts, fixed: Mapping[str, Any]
) -> list[Broken]:
    """What fixed header values break as written into their parts, one entry per path: a value
    the compiled writer refuses (not of its element's built-in type), :data:`TYPE` at its path,
    as it would refuse the whole part at every send; then what ``schema`` finds in each part
    written without those values. Beside a refused value only a facet at a value kept is said:
    lxml's word about an element left out (missing, or not expected) is not about a value."""
    by_path: dict[str, dict[str, None]] = {}
    for key, value in fixed.items():
        part = parts.parts.get(key)
        if part is None:
            continue
        refused = [p for p in _leaves(value, (key,)) if _refuses(part, p, _at(value, p[1:]))]
        for path in refused:
            by_path.setdefault(".".join(path), {})[TYPE] = None
        kept = _without(value, [p[1:] for p in refused])
        if schema is None or kept is None:
            continue
        try:
            blocks = render(parts, {key: kept})
        except BodyInvalid:
            continue  # the writer's other problems (a required element left out…): not ours
        values = {".".join(p) for p in _leaves(kept, (key,))}
        for broken in schema.problems(blocks, parts.nsmap):
            if refused and (broken.facets == (TYPE,) or broken.path not in values):
                continue
            by_path.setdefault(broken.path, {}).update(dict.fromkeys(broken.facets))
    return [Broken(path=path, facets=tuple(facets)) for path, facets in by_path.items()]


def _leaves(value: Any, prefix: KeyPath) -> list[KeyPath]:
    """The paths of the values in a part's value (a text, or a nested mapping)."""
    if type(value) is not str and isinstance(value, Mapping) and value:
        return touched_paths(value, prefix)
    return [prefix]


def _at(value: Any, path: KeyPath) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _refuses(part: Node, path: KeyPath, value: Any) -> bool:
    """Whether the compiled writer refuses ``value`` for the text element or attribute at
    ``path`` (the first key the part's): it is not of the built-in type."""
    target = descend(part, path[1:])
    if target is None or target.simple is None or value is None:
        return False
    if isinstance(value, Mapping | list | tuple):
        return False  # not a text: the writer's own problem, reported apart
    try:
        target.simple.write(value)
    except BadValue:
        return True
    return False


def _without(value: Any, paths: list[KeyPath]) -> Any:
    """``value`` without the values at ``paths`` (below it); None when nothing is left."""
    if () in paths:
        return None
    if not paths or not isinstance(value, Mapping):
        return value
    out = {}
    for key, inner in value.items():
        below = [p[1:] for p in paths if p[0] == key]
        kept = _without(inner, below) if below else inner
        if kept is not None:
            out[key] = kept
    return out or None


def check_written(
    r: Reader,
    soap: PathKey,
    parts: HeaderParts,
    fixed: Mapping[str, Any],
    given: tuple[tuple[tuple[str, Any], ...], XRoadProfile | None, XRoadService | None],
    schema: HeaderSchema | None,
) -> None:
    """partners.yaml's fixed header values (``given``: its ``soap: headers:``, profile and the
    service item's ``xroad:``) as written, each problem at the setting it comes from: a literal
    the element-by-element check (:func:`adapters.headerfacets.value_check`) left to no schema
    (an element declared by ``ref``, a type from another schema), or a profile's value (X-Road's
    identifiers, userId, issue) at its ``xroad:`` setting, the item's service code and version at
    the item's. A profile's value of the wrong built-in type is found without a schema too."""
    literals, profile, item = given
    judged: set[str] = set()  # literals whose own check validated them with lxml
    where: dict[str, str] = {}
    for text, value in literals:
        try:
            keys = resolve(parts, text)
        except HeaderPathError:
            continue  # reported by the element-by-element check
        check = value_check(schema, parts.parts[keys[0]], keys)
        if isinstance(value, SecretRef) or (check is not None and check.schema is not None):
            judged.add(".".join(keys))
        where[".".join(keys)] = text
    for broken in written_problems(schema, parts, fixed):
        if broken.path in judged:
            continue
        if broken.path in where:
            if broken.facets != (TYPE,):  # the writer's refusal: said by _check_fixed; lxml's: not
                text = where[broken.path]
                once(r, (*soap, "headers", text), _literal(text, broken))
        elif profile is not None:
            at = item_setting(item, broken.path) or (*soap, *setting_of(profile, broken.path))
            once(r, at, _profile(broken))


def _literal(text: str, broken: Broken) -> Text:
    return said(
        "%(header)s: the value breaks the WSDL's XML Schema facet %(facets)s of %(path)s",
        header=text,
        facets=", ".join(f for f in broken.facets if f != TYPE),
        path=broken.path,
    )


def _profile(broken: Broken) -> Text:
    if broken.facets == (TYPE,):
        return said(
            "profile xroad: the value is not one the XML Schema type of header %(path)s allows",
            path=broken.path,
        )
    return said(
        "profile xroad: the value breaks the WSDL's XML Schema facet %(facets)s of header %(path)s",
        facets=", ".join(f for f in broken.facets if f != TYPE),
        path=broken.path,
    )


def once(r: Reader, path: PathKey, message: str | Text) -> None:
    """Report a problem unless the same one is reported already (several items share a partner)."""
    problem = r.doc.problem(path, message)
    if problem not in r.problems:
        r.problems.append(problem)
