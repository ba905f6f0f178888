"""Contracts a machine can read: the OpenAPI document, the JSON Schemas and the problem types.

The files beside this module are data, shipped with the package: ``openapi.yaml`` (every HTTP
endpoint), ``application.schema.json`` (the local application format), ``partners.schema.json`` and
``mapping.schema.json`` (for editors and for tests that hold them to the loader), ``problems.yaml``
(every problem type). This module only reads them; it imports nothing of ours, so every layer may.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

# The schemas served at /schemas/<name>.json, by name.
SCHEMAS = {
    "application": "application.schema.json",
    "partners": "partners.schema.json",
    "mapping": "mapping.schema.json",
}


@dataclass(frozen=True, kw_only=True)
class ProblemType:
    """One problem type: its slug (``urn:tongban:problem:<slug>``), statuses, title and fix."""

    slug: str
    status: tuple[int, ...]
    title: str
    fix: str


def _text(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_text(SCHEMAS[name]))
    return data


def schema(name: str) -> dict[str, Any]:
    """A published JSON Schema by name (``application``, ``partners``, ``mapping``); a copy."""
    return copy.deepcopy(_schema(name))


# Escapes whose meaning ECMA-262 keeps to ASCII while Python's re (on text) takes any script's
# digits and letters: ٣ and ３ are \d to re, not to JSON Schema.
_ASCII_ESCAPES = frozenset("dDwWbB")
_ASCII_IN_CLASS = frozenset("dDwW")


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, once, with the meaning JSON Schema gives it (ECMA-262, no flags).

    Python's ``re`` differs where it matters to a format: ``\\d`` and ``\\w`` match any
    script's digits and letters (a full-width ``１９９２-０８-２０`` is ``\\d{4}-\\d{2}-\\d{2}``
    to it), and ``$`` also matches before a final newline. Here those escapes are ASCII only
    (``(?a:…)``, around the escape or the character class holding it) and ``$`` is the end of
    the text. ``\\s`` is left to ``re``: both read it as Unicode white space."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escape = pattern[i : i + 2]
            out.append(f"(?a:{escape})" if pattern[i + 1] in _ASCII_ESCAPES else escape)
            i += 2
        elif char == "[":
            end, ascii_only = _class_end(pattern, i)
            out.append(f"(?a:{pattern[i:end]})" if ascii_only else pattern[i:end])
            i = end
        else:
            out.append(r"\Z" if char == "$" else char)
            i += 1
    return re.compile("".join(out))


def _class_end(pattern: str, start: int) -> tuple[int, bool]:
    """Where the character class opening at ``start`` ends, and whether it holds \\d or \\w."""
    i, n, ascii_only = start + 1, len(pattern), False
    if i < n and pattern[i] == "^":
        i += 1
    if i < n and pattern[i] == "]":  # re reads a leading ] as itself
        i += 1
    while i < n and pattern[i] != "]":
        if pattern[i] == "\\" and i + 1 < n:
            ascii_only = ascii_only or pattern[i + 1] in _ASCII_IN_CLASS
            i += 2
        else:
            i += 1
    return min(i + 1, n), ascii_only


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """The ``pattern`` keyword with ECMA-262's meaning (jsonschema's own runs Python's ``re``)."""
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with ``pattern`` read as JSON Schema means it: every schema we validate data with
# (the local application format, partners' request schemas) goes through this class.
SchemaValidator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)


@cache
def application_validator() -> Draft202012Validator:
    """The validator of the local application format.

    It runs on every submission, so it gets the schema with its ``$defs`` references written in
    place (``inlined``): the same errors, with the same instance paths, keywords and messages,
    in well under half the time (jsonschema resolves every ``$ref`` anew at each use)."""
    return SchemaValidator(inlined(_schema("application")))


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``#/$defs/…`` reference replaced by its target (beside other keywords:
    under ``allOf``, which 2020-12 evaluates alike); unchanged if a reference is recursive or
    points elsewhere."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if ref is None:
            return out
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise _NotInlined
        name = ref[len("#/$defs/") :]
        if name not in defs or name in seen:
            raise _NotInlined
        target = walk(defs[name], (*seen, name))
        if not out:
            return target
        out["allOf"] = [*out.get("allOf", []), target]
        return out

    try:
        root: dict[str, Any] = walk({k: v for k, v in schema.items() if k != "$defs"}, ())
        return root
    except _NotInlined:
        return schema


class _NotInlined(Exception):
    """A reference that cannot be written in place."""


@cache
def _openapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(_text("openapi.yaml"))
    # The application schema is kept once, in its own file; the document embeds it with its
    # $defs as components (a $ref into another file is not something every client follows).
    app = _schema("application")
    schemas = doc["components"]["schemas"]
    for name, sub in app.get("$defs", {}).items():
        schemas[f"Application_{name}"] = _rebased(sub)
    schemas["Application"] = _rebased(
        {k: v for k, v in app.items() if k not in ("$schema", "$id", "$defs")}
    )
    return doc


def _rebased(node: Any) -> Any:
    """``node`` with ``#/$defs/x`` references pointing at ``#/components/schemas/Application_x``."""
    if isinstance(node, dict):
        out = {k: _rebased(v) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = "#/components/schemas/Application_" + ref[len("#/$defs/") :]
        return out
    if isinstance(node, list):
        return [_rebased(v) for v in node]
    return node


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API (a copy)."""
    return copy.deepcopy(_openapi())


@cache
def problem_types() -> dict[str, ProblemType]:
    """Every problem type the API answers with, by slug, in the order of ``problems.yaml``."""
    raw: dict[str, dict[str, Any]] = yaml.safe_load(_text("problems.yaml"))
    return {
        slug: ProblemType(
            slug=slug,
            status=tuple(int(s) for s in entry["status"]),
            title=str(entry["title"]),
            fix=str(entry["fix"]).strip(),
        )
        for slug, entry in raw.items()
    }


def pointer(path: Any) -> str:
    """An RFC 6901 JSON Pointer from a sequence of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
