"""What ``tongban check`` proves beyond loading: the mappings against the contracts on both sides.

* Every ``from:`` path of an outbound request reads a field of the local application format
  (``federation/contracts/application.schema.json``), with "did you mean" for a typo.
* Constants and code-table outputs fit the target: the enum, pattern and length of the partner's
  JSON Schema; for a SOAP partner, the WSDL's facets, found by validating generated examples
  (each golden example's request, and it again with every constant and table output put in) with
  lxml's XML Schema.
* A SOAP element with child elements is not given a scalar, and a list goes only where the
  element may occur more than once.
* The SOAP header values a mapping's ``headers:`` section writes (its constants, each code table's
  reachable values, the golden examples' values) fit the WSDL's XML Schema, imported schemas
  included: each header part holding one is written as it would be sent (partners.yaml's fixed
  values and the profile's beside it, stand-ins for the values of each message) and validated.
  A value that breaks a facet would be refused at every send (nothing sent, the exchange rejected
  with ``reason=contract``); here it is found before deploy.

Each problem is at the mapping's file and the field's line. Inbound mappings read a partner's
format, which has no published schema here, so their sources are not checked.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import OutboundRequest
from adapters.body import BodyInvalid
from adapters.facets import Shape, element_shapes, facets_of
from adapters.headerfacets import descend
from adapters.headerplan import HeaderPlan, exchange_value
from adapters.headerschema import TYPE, Broken
from adapters.headervalues import touched_paths
from adapters.soap import compile_partner, compile_plans, wsdl_port
from adapters.soapheaders import merge, put, render
from adapters.soapoptions import SoapOptions, SoapService
from adapters.wsdl import WsdlError
from adapters.xsdtypes import BadValue
from federation import contracts
from federation.cli.trials import (
    Trial,
    deref,
    facet_problems,
    nearest,
    schema_problems,
    trials,
)
from federation.config import LOCAL, Partner
from federation.config.headers import EXCHANGE_KEY, HEADERS_KEY
from federation.domain.errors import ConfigError, FederationError, Problem
from federation.domain.texts import N_, Text, said
from federation.mapping.engine import CompiledMapping
from federation.mapping.examples import load_examples
from federation.mapping.spec import FieldSpec, SourcePath
from federation.runtime.catalogue import Catalogue

_INDEX = re.compile(r"\[\d*\]")

# A source the local format does not have: a typo (with the nearest name, or the names there), or
# a field the mapping's own golden examples carry (a warning)
NOT_A_FIELD = N_("%(field)r is not a field of the local application format")
NOT_A_FIELD_HINT = N_(
    "%(field)r is not a field of the local application format (did you mean %(hint)r?)"
)
NOT_A_FIELD_HERE = N_(
    "%(field)r is not a field of the local application format; fields here: %(fields)s"
)
NOT_A_FIELD_CARRIED = N_(
    "%(field)r is not a field of the local application format (its golden examples carry it: "
    "publish it, or read a published field)"
)


# A header value a generated example writes that the WSDL's schemas refuse (never refused at
# load: it would be refused at every send)
HEADER_FACET = N_(
    "%(value)s: header %(path)s breaks the WSDL's XML Schema facet %(facets)s in %(what)s"
)
HEADER_TYPE = N_("%(value)s: header %(path)s is not a value its XML Schema type allows in %(what)s")
# the stand-in exchange the values of each message (attempt, ids, time) are written for
_STAND_IN = OutboundRequest(
    exchange_id="01M98PAP8GBESGWBSXVZMP83ZY",
    idempotency_key="tongban-check",
    service="",
    payload={},
    attempt=1,
)


@dataclass(frozen=True, kw_only=True)
class Source:
    """One source path a field reads, with the line and whether it sits inside an ``each``."""

    text: str
    line: int | None
    prefix: tuple[str, ...]  # the application path of the enclosing each's items


def contract_problems(catalogue: Catalogue) -> list[Problem]:
    """Every problem of the mappings against the local format and the partners' contracts."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for (pid, code), mapping in sorted(catalogue.mappings.items()):
        partner = catalogue.config.partners[pid]
        if pid == LOCAL or (mapping.file, pid) in seen:
            continue
        seen.add((mapping.file, pid))
        problems += source_problems(mapping)
        schema = catalogue.schema(pid, code)
        if schema is not None:
            problems += schema_problems(mapping, schema)
        if partner.protocol == "soap":
            problems += soap_problems(partner, code, mapping)
            problems += header_problems(partner, code, mapping)
    return problems


# -- sources against the local application format ---------------------------------------------


def source_problems(mapping: CompiledMapping) -> list[Problem]:
    """``from:`` paths (and paths in ``when:``, ``switch:`` …) the local format does not have.

    An error, unless the mapping's own golden examples carry the field: then the mapping reads a
    field the format does not publish (yet), which is a warning, not a typo.
    """
    root = contracts.schema("application")
    carried = _example_paths(mapping)
    out = []
    unknown: list[list[str]] = []  # reported once: not again for each field inside an each
    for source in _sources(mapping.request.specs, ()):
        text = source.text.removeprefix("$.")
        prefix = () if source.text.startswith("$.") else source.prefix
        parts = [*prefix, *(p for p in _INDEX.sub(".[]", text).split(".") if p)]
        missing = _missing(root, parts)
        if missing is None:
            continue
        at, known = missing
        if any(parts[: len(u)] == u for u in unknown):
            continue
        unknown.append(parts[: at + 1])
        hint = difflib.get_close_matches(parts[at], known, n=1, cutoff=0.6)
        where = ".".join(parts[: at + 1]).replace(".[]", "[]")
        if tuple(parts) in carried:
            out.append(
                Problem(
                    text=said(NOT_A_FIELD_CARRIED, field=where),
                    path=f"request.{text}",
                    file=mapping.file,
                    line=source.line,
                    severity="warning",
                )
            )
            continue
        if hint:
            near = ".".join([*parts[:at], hint[0]]).replace(".[]", "[]")
            message = said(NOT_A_FIELD_HINT, field=where, hint=near)
        elif known:
            message = said(NOT_A_FIELD_HERE, field=where, fields=", ".join(sorted(known)))
        else:
            message = said(NOT_A_FIELD, field=where)
        out.append(
            Problem(text=message, path=f"request.{text}", file=mapping.file, line=source.line)
        )
    return out


def _example_paths(mapping: CompiledMapping) -> set[tuple[str, ...]]:
    """Every field path (lists as ``[]``) the mapping's golden examples' applications hold."""
    out: set[tuple[str, ...]] = set()

    def walk(value: Any, path: tuple[str, ...]) -> None:
        out.add(path)
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, (*path, str(key)))
        elif isinstance(value, list):
            for child in value:
                walk(child, (*path, "[]"))

    try:
        examples = load_examples(mapping.path)
    except ConfigError:
        return out
    for example in examples:
        walk(example.application, ())
    return out


def _sources(specs: tuple[FieldSpec, ...], prefix: tuple[str, ...]) -> Iterator[Source]:
    for spec in specs:
        value = spec.value
        paths: list[SourcePath] = list(value.paths)
        paths += [c.path for c in spec.when]
        paths += [case for case in value.cases.values() if isinstance(case, SourcePath)]
        if isinstance(value.otherwise, SourcePath):
            paths.append(value.otherwise)
        for path in paths:
            yield Source(text=path.text, line=spec.line, prefix=prefix)
        if value.kind == "each" and value.paths:
            inner = value.paths[0].text.removeprefix("$.")
            base = () if value.paths[0].text.startswith("$.") else prefix
            items = (*base, *_INDEX.sub(".[]", inner).split("."), "[]")
            yield from _sources(value.fields, items)


def _missing(root: dict[str, Any], parts: list[str]) -> tuple[int, list[str]] | None:
    """Where ``parts`` leaves the schema: (index of the unknown part, the names known there)."""
    node = root
    for i, part in enumerate(parts):
        node = _deref(root, node)
        if part == "[]":
            if node.get("type") != "array":
                return (i, [])
            node = node.get("items", {})
            continue
        if node.get("type") == "array":  # reading through a list: each item's field
            node = _deref(root, node.get("items", {}))
        props = node.get("properties")
        if not isinstance(props, dict):
            return None if node.get("type") in (None, "object") else (i, [])
        if part not in props:
            return (i, list(props))
        node = props[part]
    return None


def _deref(root: dict[str, Any], node: Any) -> dict[str, Any]:
    found = deref(root, node)
    return found if isinstance(found, dict) else {}


def source_type(parts: list[str]) -> str | None:
    """The JSON type the local format gives the field at ``parts`` (None: unknown or open)."""
    root = contracts.schema("application")
    node: dict[str, Any] = root
    for part in parts:
        node = _deref(root, node)
        props = node.get("properties")
        if not isinstance(props, dict) or part not in props:
            return None
        node = props[part]
    kind = _deref(root, node).get("type")
    return kind if isinstance(kind, str) else None


# -- SOAP: shapes and facets -------------------------------------------------------------------


def soap_problems(partner: Partner, code: str, mapping: CompiledMapping) -> list[Problem]:
    """Scalars in complex elements, lists where one element is allowed, and facet violations of
    generated examples, for the application operation of a SOAP service item."""
    options: SoapOptions = partner.options["soap"]
    svc: SoapService = partner.services[code].options["soap"]
    try:
        port = wsdl_port(options)
        op = port.binding.get(svc.operation)
        shapes = element_shapes(op.input.body.type)
    except (FederationError, AttributeError, KeyError, ValueError):
        return []  # the WSDL itself is reported by the catalogue's own checks
    what = said("%(partner)s operation %(name)s", partner=partner.id, name=svc.operation)
    problems = shape_problems(mapping, shapes, what)
    facets = facets_of(options.wsdl)
    if facets is None or problems:
        return problems  # a body of the wrong shape cannot be written to validate
    try:
        body = compile_partner(partner)[code, "application"].input
    except (FederationError, KeyError):
        return problems
    return facet_problems(mapping, body, facets, what=what)


def shape_problems(
    mapping: CompiledMapping, shapes: dict[str, Shape], what: Text | str
) -> list[Problem]:
    """A scalar written to an element with child elements; a list to one that occurs once."""
    out = []
    for spec, target in _flat_targets(mapping.request.specs, ()):
        shape = shapes.get(target)
        if shape is None:
            continue  # not an element: reported by the catalogue's tree check
        writes = _writes(spec)
        message = None
        if shape.complex and writes == "scalar":
            message = said(
                "writes a single value to %(target)r, which has child elements in %(what)s",
                target=target,
                what=what,
            )
        elif not shape.many and writes == "list":
            message = said(
                "writes a list to %(target)r, which occurs at most once in %(what)s",
                target=target,
                what=what,
            )
        if message:
            out.append(
                Problem(text=message, path=f"request.{target}", file=mapping.file, line=spec.line)
            )
    return out


def _flat_targets(
    specs: tuple[FieldSpec, ...], prefix: tuple[str, ...]
) -> Iterator[tuple[FieldSpec, str]]:
    for spec in specs:
        path = (*prefix, *spec.target)
        yield spec, ".".join(p for p in path if p != "[]")
        if spec.value.kind == "each":
            yield from _flat_targets(spec.value.fields, path)


def _writes(spec: FieldSpec) -> str | None:
    """What a field writes: "list", "scalar", or None when it may be an object (or is unknown)."""
    value = spec.value
    if value.kind == "each":
        return "list"
    if value.kind in ("format", "concat"):
        return "scalar"
    if value.kind == "value":
        constant = value.constant
        return (
            "list"
            if isinstance(constant, list)
            else None
            if isinstance(constant, dict)
            else "scalar"
        )
    if value.kind == "from" and value.paths and not value.paths[0].root:
        kind = source_type(_INDEX.sub(".[]", value.paths[0].text).split("."))
        if kind == "array":
            return "list"
        if kind in ("string", "integer", "number", "boolean"):
            return "scalar"
    return None


# -- SOAP: header values -----------------------------------------------------------------------


def header_problems(partner: Partner, code: str, mapping: CompiledMapping) -> list[Problem]:
    """Header values of the ``headers:`` section that the WSDL's schemas refuse, at the field's
    line: its constants, then each code table value an application can reach, then the golden
    examples' values (each element reported once for those)."""
    if mapping.headers is None:
        return []
    try:
        op = compile_partner(partner)[code, "application"]
        plan = compile_plans(partner, {(code, "application"): op}).get((code, "application"))
    except (FederationError, WsdlError, KeyError, AttributeError, ValueError):
        return []  # the WSDL and partners.yaml's header settings: reported by loading
    if plan is None or plan.sent is None:
        return []  # no schema read for the headers: built-in types only, as at send
    what = said(
        "the SOAP headers of %(partner)s operation %(name)s", partner=partner.id, name=op.name
    )
    lines = {".".join(s.target): s.line for s in mapping.headers.specs}
    tried = trials(mapping, "headers")
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    reported: set[str] = set()
    for trial in (
        *_constants(mapping),
        *(t for t in tried if t.spec),
        *(t for t in tried if not t.spec),
    ):
        for broken in _header_broken(plan, trial):
            key = (broken.path, str(trial.said))
            if key in seen or (trial.spec is None and broken.path in reported):
                continue
            seen.add(key)
            reported.add(broken.path)
            line = trial.spec.line if trial.spec else nearest(lines, broken.path)
            out.append(_header_problem(mapping, broken, trial.said, what, line))
    return out


def _constants(mapping: CompiledMapping) -> list[Trial]:
    """Each constant of the ``headers:`` section alone (checked without golden examples too)."""
    out = []
    for spec in mapping.headers.specs if mapping.headers is not None else ():
        if spec.value.kind != "value" or spec.steps or "[]" in spec.target:
            continue
        headers: dict[str, Any] = {}
        put(headers, spec.target, spec.value.constant)
        what = said("the constant %(value)r", value=spec.value.constant)
        out.append(Trial(request={HEADERS_KEY: headers}, spec=spec, said=what))
    return out


def _header_broken(plan: HeaderPlan, trial: Trial) -> list[Broken]:
    """The problems at the header values ``trial`` maps (at its field's target, or any it writes
    for a golden example): a value its element's built-in type refuses, else what the WSDL's
    schemas find in the header parts holding them, written as at send: partners.yaml's fixed
    values and the profile's beside them, stand-ins for the values of each message."""
    mapped = trial.request.get(HEADERS_KEY)
    if plan.sent is None or not isinstance(mapped, Mapping) or not mapped:
        return []
    target = trial.spec.target if trial.spec is not None else ()
    ours = [p for p in touched_paths(mapped) if p[: len(target)] == target]
    typed = [Broken(path=".".join(p), facets=(TYPE,)) for p in ours if _untyped(plan, mapped, p)]
    if typed:
        return typed  # the writer refuses them as it would at send: nothing to validate
    values = merge(dict(plan.fixed), mapped)
    slots = trial.request.get(EXCHANGE_KEY)
    named = slots.items() if isinstance(slots, Mapping) else ()
    now: dict[str, Any] = {}
    try:
        for path, name in (
            *((tuple(str(k).split(".")), str(v)) for k, v in named),
            *plan.per_message,
        ):
            put(values, path, exchange_value(name, _STAND_IN, now))
        if plan.key_header is not None:
            put(values, plan.key_header, _STAND_IN.idempotency_key)
        blocks = render(plan.parts, {k: values[k] for k in mapped if k in values})
    except (BodyInvalid, BadValue):
        return []  # a value not ours (a secret, read only at send) left the part unwritten
    dotted = [".".join(p) for p in ours]
    return [
        b
        for b in plan.sent.schema.problems(blocks, plan.sent.nsmap)
        if any(b.path == d or b.path.startswith(d + ".") for d in dotted)
    ]


def _untyped(plan: HeaderPlan, mapped: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether the value at ``path`` is a text its element's built-in type refuses."""
    value: Any = mapped
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    target = descend(plan.parts.parts.get(path[0]), path[1:])
    if value is None or target is None or target.simple is None or isinstance(value, list):
        return False
    try:
        target.simple.write(value)
    except BadValue:
        return True
    return False


def _header_problem(
    mapping: CompiledMapping, broken: Broken, value: Text, what: Text, line: int | None
) -> Problem:
    """A header value the WSDL's schemas refuse: the element and the facet, at the field's line."""
    facets = ", ".join(f for f in broken.facets if f != TYPE)
    if facets:
        text = said(HEADER_FACET, value=value, path=broken.path, facets=facets, what=what)
    else:
        text = said(HEADER_TYPE, value=value, path=broken.path, what=what)
    return Problem(text=text, path=f"headers.{broken.path}", file=mapping.file, line=line)
