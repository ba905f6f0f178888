"""Target schemas: a partner's JSON Schema for a service's request, checked statically and per request.

``tongban check`` verifies each mapping against its schema (every target the mapping writes exists in
the schema, every property the schema requires is written by some field) and validates the golden
examples' expected requests; the broker validates every mapped request before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from federation import contracts
from federation.config.recognised import schema_error
from federation.domain.errors import ConfigError, Problem
from federation.domain.models import canonical_json, content_hash
from federation.domain.texts import Text, said
from federation.mapping.engine import CompiledMapping


@dataclass(frozen=True, kw_only=True)
class TargetSchema:
    file: str
    version: str
    schema: dict[str, Any]
    validator: Draft202012Validator

    def problems(self, instance: Any, *, file: str | None = None) -> list[Problem]:
        """Every way ``instance`` breaks the schema, each named by its JSON path.

        The instance is checked as it will be sent: as JSON (exact decimals become text).
        """
        instance = orjson.loads(canonical_json(instance))
        out = []
        for err in sorted(
            self.validator.iter_errors(instance), key=lambda e: list(e.absolute_path)
        ):
            where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in err.absolute_path)
            out.append(
                Problem(
                    text=said(
                        "does not satisfy %(file)s: %(error)s",
                        file=self.file,
                        error=schema_error(str(err.validator), err.message),
                    ),
                    path=where.replace(".[", "["),
                    file=file,
                )
            )
        return out


def load_schema(path: Path, *, display: str) -> TargetSchema:
    """Read a JSON Schema file and check that it is a valid (2020-12) schema."""
    try:
        raw = path.read_bytes()
        schema = orjson.loads(raw)
    except OSError as exc:
        raise ConfigError(
            [Problem(text=said("cannot read schema: %(error)s", error=exc.strerror), file=display)]
        ) from exc
    except orjson.JSONDecodeError as exc:
        problem = Problem(text=said("schema is not JSON: %(error)s", error=str(exc)), file=display)
        raise ConfigError([problem]) from exc
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(
            [
                Problem(
                    text=said("not a valid JSON Schema: %(error)s", error=exc.message),
                    file=display,
                )
            ]
        ) from exc
    return TargetSchema(
        file=display,
        version=content_hash(raw),
        schema=schema,
        validator=contracts.SchemaValidator(schema),  # its patterns read as ECMA-262
    )


def check_mapping(schema: TargetSchema, mapping: CompiledMapping) -> list[Problem]:
    """Targets the schema does not know, and schema-required properties no field writes."""
    problems: list[Problem] = []
    written = set()
    for spec_path, line in _targets(mapping.request.specs):
        written.add(spec_path)
        node = _resolve(schema.schema, spec_path)
        if node is None:
            problems.append(
                Problem(
                    text=said(
                        "target %(target)r is not in the partner's schema %(file)s",
                        target=_show(spec_path),
                        file=schema.file,
                    ),
                    path="request",
                    file=mapping.file,
                    line=line,
                )
            )
    for required in _required(schema.schema, ()):
        if not any(w[: len(required)] == required for w in written):
            problems.append(
                Problem(
                    text=said(
                        "the partner's schema %(file)s requires %(target)r, "
                        "which no field of the mapping writes",
                        file=schema.file,
                        target=_show(required),
                    ),
                    path="request",
                    file=mapping.file,
                    line=None,
                )
            )
    return problems


def check_tree(
    mapping: CompiledMapping,
    paths: set[str],
    required: set[str],
    *,
    what: str | Text,
    section: str = "request",
) -> list[Problem]:
    """A section's targets against a protocol's element tree (a SOAP operation's input).

    Every target must be an element of the tree, and every element the tree requires must be
    written by some field (or by a field copying a whole object above it).
    """
    problems: list[Problem] = []
    written: list[str] = []
    specs = getattr(mapping, section).specs
    where = (
        said("the mapping")
        if section == "request"
        else said("the mapping's %(section)s: section", section=section)
    )
    for target, line in _targets(specs):
        dotted = ".".join(p for p in target if p != "[]")
        written.append(dotted)
        if dotted not in paths:
            problems.append(
                Problem(
                    text=said(
                        "target %(target)r is not an element of %(what)s", target=dotted, what=what
                    ),
                    path=section,
                    file=mapping.file,
                    line=line,
                )
            )
    for need in sorted(required):
        covered = any(
            w == need or w.startswith(need + ".") or need.startswith(w + ".") for w in written
        )
        if not covered:
            problems.append(
                Problem(
                    text=said(
                        "%(what)s requires %(need)r, which no field of %(where)s writes",
                        what=what,
                        need=need,
                        where=where,
                    ),
                    path=section,
                    file=mapping.file,
                    line=specs[0].line if specs and section != "request" else None,
                )
            )
    return problems


def _targets(specs: Any) -> Iterator[tuple[tuple[str, ...], int | None]]:
    def walk(fields: Any, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], int | None]]:
        for spec in fields:
            path = prefix + spec.target
            yield path, spec.line
            if spec.value.kind == "each":
                yield from walk(spec.value.fields, (*path, "[]"))

    yield from walk(specs, ())


def _resolve(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The sub-schema a target path lands in, or None if the schema forbids it."""
    node: Any = _deref(schema, schema)
    for part in path:
        if not isinstance(node, dict):
            return None
        if part == "[]":
            node = _deref(schema, node.get("items"))
            continue
        props = node.get("properties")
        if isinstance(props, dict) and part in props:
            node = _deref(schema, props[part])
        elif node.get("additionalProperties", True) is False or (
            node.get("unevaluatedProperties", True) is False
        ):
            return None
        else:
            return {}  # an open object: anything goes below it
    return node if isinstance(node, dict) else None


def _deref(root: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref``s (``#/$defs/…``); other references are treated as open."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, dict)
                else None
            )
        node = target if target is not None else {}
        seen += 1
    return node


def _required(
    node: Any, prefix: tuple[str, ...], root: dict[str, Any] | None = None
) -> Iterator[tuple[str, ...]]:
    root = root if root is not None else node
    node = _deref(root, node)
    if not isinstance(node, dict):
        return
    props = node.get("properties") or {}
    for name in node.get("required") or []:
        yield (*prefix, name)
        child = _deref(root, props.get(name))
        if isinstance(child, dict):
            if child.get("type") == "array" and isinstance(child.get("items"), dict):
                yield from _required(child["items"], (*prefix, name, "[]"), root)
            else:
                yield from _required(child, (*prefix, name), root)


def _show(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[]", "[]")
