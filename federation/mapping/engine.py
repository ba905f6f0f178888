"""Mapping files: load, validate and compile a declarative YAML mapping into plain callables.

A mapping file translates one local application into one partner's request (``request:``) and the
partner's reply into our receipt (``response:``). Each entry names a *target* field and where its
value comes from::

    request:
      holder.name: applicant.name                 # copy (shorthand for {from: …})
      holder.hkid: {from: applicant.hkid, required: true}
      channel: {value: TONGBAN}                   # a constant
      contact.phone: {from: applicant.phone, default: ""}

The full language (code tables, transforms, conditions, arrays) is documented in docs/mappings.md.
Loading checks everything it can before any application arrives; mapping an application collects every
failing field instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError, MappingError, Problem
from federation.mapping.paths import MISSING, PathSyntaxError, getter, parse_path, put
from federation.models import content_hash
from federation.validate import Reader
from federation.yamlsrc import Located, PathKey, parse_yaml

FORMAT_VERSION = 1
RULE_KEYS = ("from", "value", "required", "default")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One target field and where its value comes from."""

    target: tuple[str, ...]
    source: str | None
    line: int | None
    get: Callable[[Any], Any] | None = None
    constant: Any = MISSING
    default: Any = MISSING
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class Section:
    """A compiled ``request:`` or ``response:`` block."""

    name: str
    file: str
    rules: tuple[Rule, ...]

    def apply(self, data: Any) -> dict[str, Any]:
        """Map ``data``; raise MappingError naming every failing field."""
        out: dict[str, Any] = {}
        problems: list[Problem] = []
        for rule in self.rules:
            if rule.get is None:
                put(out, rule.target, rule.constant)
                continue
            value = rule.get(data)
            if value is MISSING or value is None:
                if rule.default is not MISSING:
                    put(out, rule.target, rule.default)
                elif rule.required:
                    problems.append(
                        Problem(
                            message=f"required, but missing (maps to {'.'.join(rule.target)})",
                            path=rule.source or "",
                            file=self.file,
                            line=rule.line,
                        )
                    )
                elif value is None:
                    put(out, rule.target, None)
                continue
            put(out, rule.target, value)
        if problems:
            raise MappingError(problems, mapping=self.file)
        return out


@dataclass(frozen=True, kw_only=True)
class CompiledMapping:
    """A validated mapping file, ready to map applications and replies."""

    file: str
    path: Path
    version: str
    partner: str | None
    service: str | None
    description: str
    request: Section
    response: Section | None
    versions: Mapping[str, str] = field(default_factory=dict)  # every file it used → content hash

    def map_request(self, application: Mapping[str, Any]) -> dict[str, Any]:
        """Local application → partner request."""
        return self.request.apply(application)

    def map_response(self, reply: Any) -> dict[str, Any] | None:
        """Partner reply → local receipt (``None`` when the mapping has no response section)."""
        return self.response.apply(reply) if self.response is not None else None


def load_mapping(path: Path, *, display: str | None = None) -> CompiledMapping:
    """Read, validate and compile one mapping file; ConfigError lists every problem with its line."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [Problem(message=f"cannot read mapping: {exc.strerror}", file=shown)]
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(message="mapping is not UTF-8 text", file=shown)]) from exc
    doc = parse_yaml(text, display=shown)
    reader = Reader(doc)
    compiled = _compile(reader, doc, path, content_hash(raw))
    if not reader.ok or compiled is None:
        raise ConfigError(sorted(reader.problems, key=lambda p: p.line or 0))
    return compiled


def _compile(r: Reader, doc: Located, path: Path, version: str) -> CompiledMapping | None:
    top = r.mapping(
        (),
        doc.data,
        required=("mapping", "request"),
        optional=("partner", "service", "description", "response"),
    )
    if top is None:
        return None
    if type(top.get("mapping")) is not int or top.get("mapping") != FORMAT_VERSION:
        r.error(("mapping",), f"unsupported mapping format {top.get('mapping')!r}; expected 1")
    partner = r.text(("partner",), top["partner"]) if "partner" in top else None
    service = r.text(("service",), top["service"]) if "service" in top else None
    description = str(top.get("description") or "")
    request = _section(r, doc, "request", top.get("request"))
    response = _section(r, doc, "response", top["response"]) if "response" in top else None
    if request is None:
        return None
    return CompiledMapping(
        file=doc.file,
        path=path,
        version=version,
        partner=partner,
        service=service,
        description=description,
        request=request,
        response=response,
        versions={doc.file: version},
    )


def _section(r: Reader, doc: Located, name: str, raw: Any) -> Section | None:
    block = r.mapping((name,), raw, extra_ok=True)
    if block is None:
        return None
    if not block:
        r.error((name,), "maps no field")
        return None
    rules: list[Rule] = []
    targets: dict[tuple[str, ...], PathKey] = {}
    for key, spec in block.items():
        path: PathKey = (name, key)
        target = _target(r, path, key)
        rule = _rule(r, doc, path, target, spec)
        if target is None or rule is None:
            continue
        for other, where in targets.items():
            shorter, longer = sorted((other, target), key=len)
            if longer[: len(shorter)] == shorter:
                r.error(
                    path, f"target {key!r} overlaps {'.'.join(other)!r} (line {doc.line(where)})"
                )
        targets[target] = path
        rules.append(rule)
    return Section(name=name, file=doc.file, rules=tuple(rules))


def _target(r: Reader, path: PathKey, key: str) -> tuple[str, ...] | None:
    try:
        parts = parse_path(key)
    except PathSyntaxError as exc:
        r.error(path, f"bad target path: {exc}")
        return None
    if any(isinstance(p, int) for p in parts):
        r.error(path, "a target path names object fields only; map arrays with 'each'")
        return None
    return tuple(str(p) for p in parts)


def _rule(
    r: Reader, doc: Located, path: PathKey, target: tuple[str, ...] | None, spec: Any
) -> Rule | None:
    line = doc.line(path)
    if isinstance(spec, str):
        spec = {"from": spec}
    m = r.mapping(path, spec, optional=RULE_KEYS)
    if m is None:
        return None
    has_from, has_value = "from" in m, "value" in m
    if has_from == has_value:
        r.error(path, "give exactly one of 'from' (a field of the input) or 'value' (a constant)")
        return None
    if has_value:
        for key in ("required", "default"):
            if key in m:
                r.error((*path, key), f"{key!r} applies to 'from', not to a constant 'value'")
        if target is None:
            return None
        return Rule(target=target, source=None, line=line, constant=m["value"])
    source = r.text((*path, "from"), m["from"])
    required = r.boolean((*path, "required"), m["required"]) if "required" in m else False
    if source is None or target is None:
        return None
    try:
        source_path = parse_path(source)
    except PathSyntaxError as exc:
        r.error((*path, "from"), f"bad source path: {exc}")
        return None
    if required and "default" in m:
        r.error((*path, "default"), "a required field cannot also have a default")
    return Rule(
        target=target,
        source=source,
        line=line,
        get=getter(source_path),
        default=m.get("default", MISSING),
        required=bool(required),
    )
