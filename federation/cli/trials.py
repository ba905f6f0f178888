"""Generated examples: what a mapping would send, tried against the partner's contract before deploy.

The trials are every golden example's request as mapped, and, for each field whose last step is
a code table, the first such example again with each key of the table put at the field's source:
every value the table can give that an application can reach (a key the mapping refuses
elsewhere, such as a currency its money step does not take, never reaches the partner); the
fields of the ``headers:`` section likewise, for the SOAP header check. Each
trial is checked against the partner's JSON Schema, or, for a SOAP partner, written as the
operation's body and validated with lxml against the WSDL's XML Schema (its facets). Constants
are checked against a JSON Schema target directly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.body import BodyInvalid
from adapters.facets import Facets
from adapters.xsdtypes import BadValue
from federation import contracts
from federation.config.recognised import schema_error
from federation.config.yamlguard import safe_fragment
from federation.domain.errors import ConfigError, MappingError, Problem
from federation.domain.texts import Text, said
from federation.mapping.engine import CompiledMapping
from federation.mapping.examples import load_examples
from federation.mapping.schema import TargetSchema
from federation.mapping.spec import FieldSpec
from federation.mapping.tables import CodeTable

_INDEX = re.compile(r"\[\d+\]")
GOLDEN = said("a golden example")  # what is tried when no table key is put in


@dataclass(frozen=True, kw_only=True)
class Trial:
    """A request the mapping makes; ``spec`` and ``said`` name the field and value tried, if any."""

    request: dict[str, Any]
    spec: FieldSpec | None = None
    said: Text = GOLDEN


def trials(mapping: CompiledMapping, section: str = "request") -> list[Trial]:
    """The golden examples' requests, then one per reachable key of each table field of
    ``section`` (``request`` or ``headers``: the request written carries both)."""
    bases: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        examples = load_examples(mapping.path)
    except ConfigError:
        examples = []
    for example in examples:
        try:
            request, _ = mapping.request.apply_checked(example.application)
        except MappingError:
            continue  # an example of a refusal: nothing would be sent
        bases.append((example.application, request))
    out = [Trial(request=request) for _, request in bases]
    if not bases:
        return out
    application = bases[0][0]
    for spec, table in table_fields(mapping, section):
        source = spec.value.paths[0].text
        for key in table.values:
            try:
                request, _ = mapping.request.apply_checked(_put(application, source, key))
            except MappingError:
                continue  # unreachable: the mapping refuses this key before the table matters
            what = said(
                "code table %(name)s (%(file)s) maps %(key)r to %(value)r",
                name=table.name,
                file=table.file,
                key=key,
                value=table.values[key],
            )
            out.append(Trial(request=request, spec=spec, said=what))
    return out


def table_fields(
    mapping: CompiledMapping, section: str = "request"
) -> Iterator[tuple[FieldSpec, CodeTable]]:
    """Top-level fields of ``section`` reading one source path whose last step is a code table."""
    raw = _raw_request(mapping.path, section)
    written = mapping.headers if section == "headers" else mapping.request
    for spec in written.specs if written is not None else ():
        if "[]" in spec.target or spec.value.kind != "from" or spec.value.paths[0].root:
            continue
        table = _last_table(raw.get(".".join(spec.target)), mapping.tables)
        if table is not None and not _INDEX.search(spec.value.paths[0].text):
            yield spec, table


def _raw_request(path: Path, section: str = "request") -> dict[str, Any]:
    try:
        doc = safe_fragment(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    found = doc.get(section) if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else {}


def _last_table(raw: Any, tables: Mapping[str, CodeTable]) -> CodeTable | None:
    transform = raw.get("transform") if isinstance(raw, dict) else None
    last = transform[-1] if isinstance(transform, list) and transform else transform
    name = last.get("table") if isinstance(last, dict) else None
    if isinstance(name, dict):
        name = name.get("name")
    return tables.get(name) if isinstance(name, str) else None


def _put(application: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(application))
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
    return out


def schema_problems(mapping: CompiledMapping, schema: TargetSchema) -> list[Problem]:
    """Constants and reachable code-table outputs that the partner's JSON Schema refuses."""
    out = []
    for spec in mapping.request.specs:
        if spec.value.kind != "value" or spec.steps or "[]" in spec.target:
            continue
        node = _node(schema.schema, spec.target)
        errors = (
            list(contracts.SchemaValidator(node).iter_errors(spec.value.constant)) if node else []
        )
        if errors:
            constant = said("the constant %(value)r", value=spec.value.constant)
            reason = schema_error(str(errors[0].validator), errors[0].message)
            out.append(_refused(mapping, spec, constant, schema.file, reason))
    seen: set[tuple[str, str]] = set()
    for trial in trials(mapping):
        if trial.spec is None:
            continue  # the golden examples' own requests: the catalogue validates those
        target = ".".join(trial.spec.target)
        for problem in schema.problems(trial.request):
            if problem.path == target and (target, str(trial.said)) not in seen:
                seen.add((target, str(trial.said)))
                out.append(_refused(mapping, trial.spec, trial.said, schema.file, _reason(problem)))
    return out


def _reason(problem: Problem) -> Text | str:
    """What the schema says of the value: the problem's message without the file it names."""
    english = problem.message.split(": ", 1)[-1]
    error = dict(problem.text.values).get("error") if problem.text is not None else None
    return error if isinstance(error, Text | str) and str(error) == english else english


def _refused(
    mapping: CompiledMapping, spec: FieldSpec, value: Text, what: str, reason: Text | str
) -> Problem:
    target = ".".join(spec.target)
    return Problem(
        text=said(
            "%(value)s, which %(file)s refuses for %(target)r: %(reason)s",
            value=value,
            file=what,
            target=target,
            reason=reason,
        ),
        path=f"request.{target}",
        file=mapping.file,
        line=spec.line,
    )


def _node(schema: dict[str, Any], target: tuple[str, ...]) -> dict[str, Any]:
    """The sub-schema at ``target`` with the root's definitions beside it ({} if not found)."""
    defs: dict[str, Any] = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    node: Any = schema
    for part in target:
        node = deref(schema, node)
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or part not in props:
            return {}
        node = props[part]
    node = deref(schema, node)
    return {**node, **defs} if isinstance(node, dict) and node else {}


def deref(root: dict[str, Any], node: Any) -> Any:
    """``node`` with its local ``$ref``s followed (at most 16 deep) inside the schema ``root``."""
    for _ in range(16):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
    return node


def facet_problems(
    mapping: CompiledMapping, body: Any, facets: Facets, *, what: Text | str
) -> list[Problem]:
    """Facets of the WSDL's XML Schema that generated examples break, at the field's line."""
    lines = {".".join(s.target): s.line for s in mapping.request.specs}
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for trial in trials(mapping):
        target = ".".join(trial.spec.target) if trial.spec is not None else None
        for path, message in _validate(body, trial.request, facets):
            key = (path, str(trial.said) if target else message)
            if key in seen or (target is not None and path != target):
                continue
            seen.add(key)
            out.append(
                Problem(
                    text=said(  # lxml's message is quoted as lxml wrote it
                        "%(value)s: %(path)r breaks the XML Schema of %(what)s: %(error)s",
                        value=trial.said,
                        path=path,
                        what=what,
                        error=message,
                    ),
                    path=f"request.{path}",
                    file=mapping.file,
                    line=nearest(lines, path),
                )
            )
    return out


def nearest(lines: Mapping[str, int | None], path: str) -> int | None:
    """The line of the field writing ``path`` or an object above it."""
    if path in lines:
        return lines[path]
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in lines:
            return lines[path]
    return None


def _validate(body: Any, request: dict[str, Any], facets: Facets) -> list[tuple[str, str]]:
    try:  # header values travel under @-keys beside the body's: not the body's to write
        xml = body.write({k: v for k, v in request.items() if not k.startswith("@")})
    except (BodyInvalid, BadValue):
        return []  # what the writer itself refuses is the tree check's and mapping test's
    return facets.problems(xml, getattr(body, "nsmap", {}))
