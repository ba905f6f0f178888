"""Parsing a mapping's ``request:``/``response:`` block into field specs, checking everything.

A field maps one *target* path; its value comes from exactly one of::

    from: applicant.name              a field of the input ($.x means the top level inside 'each')
    value: TONGBAN                    a constant
    format: "{surname}, {given}"      text with fields filled in
    concat: [a, b]                    the present values joined (separator: " ", default "")
    first: [documents.hkid, documents.bir]   the first present value
    switch: mode                      a value chosen by another field's value (cases:, otherwise:)
    each: family_members              an array, each item mapped by fields:
    position: 1                       inside 'each', the item's position counted from 1 (or 0)

and may add ``transform:`` steps, ``required:``, ``default:`` and ``when:``. A ``format``
placeholder may transform its value (``{born|date:YYYYMMDD}``, see :mod:`.expressions`) and a
``first`` alternative may be ``{from: path, transform: …}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from federation.config.reader import Reader
from federation.config.secrets import SecretRef
from federation.config.yamlsrc import Located, PathKey
from federation.domain.paths import PathSyntaxError, Segment, parse_path
from federation.domain.texts import said
from federation.mapping.expressions import ExpressionError, parse_template
from federation.mapping.transforms import Context, Step, build_steps
from federation.mapping.transforms.crypto import key_of

SOURCES = ("from", "value", "format", "concat", "first", "switch", "each", "position")
MODIFIERS = ("transform", "required", "default", "when")
SWITCH_KEYS = ("cases", "otherwise")
COND_OPS = ("equals", "not_equals", "in", "not_in", "present", "in_table", "not_in_table")
NOTHING: Any = object()


@dataclass(frozen=True, kw_only=True)
class SourcePath:
    """A parsed source path; ``root`` when it starts with ``$`` (the top of the input)."""

    text: str
    segments: tuple[Segment, ...]
    root: bool = False


@dataclass(frozen=True, kw_only=True)
class Condition:
    path: SourcePath
    op: str
    operand: Any


@dataclass(frozen=True, kw_only=True)
class Value:
    kind: str  # one of SOURCES
    paths: tuple[SourcePath, ...] = ()
    constant: Any = NOTHING
    template: str = ""  # format: with placeholders renumbered {0} {1} …
    separator: str = ""
    cases: dict[str, Any] = field(default_factory=dict)  # switch: key → constant or SourcePath
    otherwise: Any = NOTHING
    fields: tuple[FieldSpec, ...] = ()  # each:
    # steps per path (format placeholders, first alternatives); () where none has any
    part_steps: tuple[tuple[tuple[str, Step], ...], ...] = ()


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    target: tuple[str, ...]
    value: Value
    steps: tuple[tuple[str, Step], ...]
    required: bool
    default: Any
    when: tuple[Condition, ...]
    line: int | None
    label: str  # what a problem names: the source path, or the target for computed values


class SpecParser:
    """Turns located YAML into FieldSpecs, reporting every mistake to the Reader."""

    def __init__(self, reader: Reader, doc: Located, ctx_for: Any) -> None:
        self.r = reader
        self.doc = doc
        self._ctx_for = ctx_for  # (source paths) -> transforms.Context

    def section(self, path: PathKey, raw: Any, prefix: str = "") -> tuple[FieldSpec, ...] | None:
        """Parse a block of fields; ``prefix`` is the array pattern when inside 'each'."""
        block = self.r.mapping(path, raw, extra_ok=True)
        if block is None:
            return None
        if not block:
            self.r.error(path, said("maps no field"))
            return None
        specs: list[FieldSpec] = []
        targets: dict[tuple[str, ...], PathKey] = {}
        for key, raw_spec in block.items():
            fpath: PathKey = (*path, key)
            target = self._target(fpath, key)
            spec = self._field(fpath, target, raw_spec, prefix)
            if target is None or spec is None:
                continue
            for other, where in targets.items():
                shorter, longer = sorted((other, target), key=len)
                if longer[: len(shorter)] == shorter:
                    self.r.error(
                        fpath,
                        said(
                            "target %(key)r overlaps %(other)r (line %(line)s)",
                            key=key,
                            other=".".join(other),
                            line=self.doc.line(where),
                        ),
                    )
            targets[target] = fpath
            specs.append(spec)
        return tuple(specs)

    def _target(self, path: PathKey, key: str) -> tuple[str, ...] | None:
        try:
            parts = parse_path(key)
        except PathSyntaxError as exc:
            self.r.error(path, said("bad target path: %(error)s", error=exc.text))
            return None
        if any(isinstance(p, int) for p in parts):
            self.r.error(
                path, said("a target path names object fields only; map arrays with 'each'")
            )
            return None
        return tuple(str(p) for p in parts)

    def source(self, path: PathKey, raw: Any) -> SourcePath | None:
        text = self.r.text(path, raw)
        if text is None:
            return None
        root = text.startswith("$.")
        try:
            segments = parse_path(text[2:] if root else text)
        except PathSyntaxError as exc:
            self.r.error(path, said("bad source path: %(error)s", error=exc.text))
            return None
        return SourcePath(text=text, segments=segments, root=root)

    def _field(
        self, path: PathKey, target: tuple[str, ...] | None, raw: Any, prefix: str
    ) -> FieldSpec | None:
        line = self.doc.line(path)
        if isinstance(raw, str):
            raw = {"from": raw}
        m = self.r.mapping(
            path, raw, optional=(*SOURCES, *MODIFIERS, *SWITCH_KEYS, "fields", "separator")
        )
        if m is None:
            return None
        kinds = [k for k in SOURCES if k in m]
        if len(kinds) != 1:
            self.r.error(
                path,
                "give exactly one of 'from' (a field of the input), 'value' (a constant), "
                "'format', 'concat', 'first', 'switch', 'each' or 'position'"
                + (f"; found {', '.join(kinds)}" if kinds else ""),
            )
            return None
        kind = kinds[0]
        self._only_with(path, m, kind)
        value = self._value(path, kind, m, prefix)
        required = self.r.boolean((*path, "required"), m["required"]) if "required" in m else False
        if kind in ("value", "position"):
            for key in ("required", "default"):
                if key in m:
                    self.r.error(
                        (*path, key),
                        f"{key!r} applies to values taken from the input, not to "
                        + ("a constant" if kind == "value" else "a position"),
                    )
        elif required and "default" in m:
            self.r.error((*path, "default"), said("a required field cannot also have a default"))
        when = self._conditions((*path, "when"), m["when"]) if "when" in m else ()
        sources = value.paths if value is not None else ()
        if value is not None and kind == "switch":  # a case {from: x} writes x
            taken = (*value.cases.values(), value.otherwise)
            sources += tuple(c for c in taken if isinstance(c, SourcePath))
        steps: list[tuple[str, Step]] | None = []
        if "transform" in m:
            ctx: Context = self._ctx_for(sources, prefix)
            steps = build_steps(m["transform"], ctx, (*path, "transform"))
        if value is None or target is None or steps is None or when is None:
            return None
        label = (
            value.paths[0].text
            if kind in ("from", "switch", "each") and value.paths
            else ".".join(target)
        )
        return FieldSpec(
            target=target,
            value=value,
            steps=tuple(steps),
            required=bool(required),
            default=m.get("default", NOTHING),
            when=when,
            line=line,
            label=label,
        )

    def _only_with(self, path: PathKey, m: dict[str, Any], kind: str) -> None:
        owners = {"cases": "switch", "otherwise": "switch", "fields": "each", "separator": "concat"}
        for key, owner in owners.items():
            if key in m and kind != owner:
                self.r.error(
                    (*path, key), said("%(key)r belongs to %(owner)r", key=key, owner=owner)
                )
        if kind == "switch" and "cases" not in m:
            self.r.error(path, said("a switch needs 'cases'"))
        if kind == "each" and "fields" not in m:
            self.r.error(path, said("'each' needs 'fields' (how to map every item)"))

    def _value(self, path: PathKey, kind: str, m: dict[str, Any], prefix: str) -> Value | None:
        raw = m[kind]
        kpath: PathKey = (*path, kind)
        if kind == "value":
            return Value(kind=kind, constant=raw)
        if kind == "position":
            return self._position(kpath, raw, prefix)
        if kind == "from":
            src = self.source(kpath, raw)
            return Value(kind=kind, paths=(src,)) if src else None
        if kind == "first" and isinstance(raw, list) and any(isinstance(i, dict) for i in raw):
            return self._alternatives(kpath, raw, prefix)
        if kind in ("concat", "first"):
            items = self.r.items(kpath, raw)
            if not isinstance(raw, list):
                return None  # items() said it is not a list
            if len(items) < 2:
                self.r.error(
                    kpath, said("'%(kind)s' needs a list of at least two fields", kind=kind)
                )
                return None
            paths = [self.source((*kpath, i), item) for i, item in enumerate(items)]
            sep = m.get("separator", "")
            if not isinstance(sep, str):
                self.r.error((*path, "separator"), said("the separator must be text"))
                return None
            if any(p is None for p in paths):
                return None
            return Value(kind=kind, paths=tuple(p for p in paths if p), separator=sep)
        if kind == "format":
            return self._format(kpath, raw, prefix)
        if kind == "switch":
            return self._switch(path, m)
        return self._each(path, m, prefix)

    def _format(self, path: PathKey, raw: Any, prefix: str) -> Value | None:
        text = self.r.text(path, raw)
        if text is None:
            return None
        try:
            literals, holes = parse_template(text)
        except ExpressionError as exc:
            self.r.error(path, str(exc))
            return None
        if not holes:
            self.r.error(
                path, said("a format without {field} placeholders is a constant: use 'value'")
            )
            return None
        paths: list[SourcePath] = []
        steps: list[tuple[tuple[str, Step], ...]] = []
        for hole in holes:
            src = self.source(path, hole.path)
            built = (
                build_steps(_one_or_list(hole.steps), self._ctx_for((src,), prefix), path)
                if src is not None and hole.steps
                else []
            )
            if src is None or built is None:
                return None
            paths.append(src)
            steps.append(tuple(built))
        template = "".join(
            lit.replace("{", "{{").replace("}", "}}") + (f"{{{i}}}" if i < len(paths) else "")
            for i, lit in enumerate(literals)
        )
        part_steps = tuple(steps) if any(steps) else ()
        return Value(kind="format", paths=tuple(paths), template=template, part_steps=part_steps)

    def _alternatives(self, path: PathKey, raw: list[Any], prefix: str) -> Value | None:
        """``first:`` whose alternatives may each have steps: ``{from: a, transform: hkid}``."""
        if len(raw) < 2:
            self.r.error(path, said("'first' needs a list of at least two fields"))
            return None
        paths: list[SourcePath] = []
        steps: list[tuple[tuple[str, Step], ...]] = []
        ok = True
        for i, item in enumerate(raw):
            ipath: PathKey = (*path, i)
            m = (
                {"from": item}
                if isinstance(item, str)
                else self.r.mapping(ipath, item, required=("from",), optional=("transform",))
            )
            src = self.source((*ipath, "from"), m["from"]) if m and "from" in m else None
            built = (
                build_steps(m["transform"], self._ctx_for((src,), prefix), (*ipath, "transform"))
                if src is not None and m and "transform" in m
                else []
            )
            if src is None or built is None:
                ok = False
                continue
            paths.append(src)
            steps.append(tuple(built))
        if not ok:
            return None
        return Value(kind="first", paths=tuple(paths), part_steps=tuple(steps))

    def _position(self, path: PathKey, raw: Any, prefix: str) -> Value | None:
        if not prefix:
            self.r.error(
                path, said("'position' numbers the items of an array: use it inside 'each'")
            )
            return None
        if raw not in (0, 1) or isinstance(raw, bool):
            self.r.error(
                path, said("'position' counts from 1 (position: 1) or from 0 (position: 0)")
            )
            return None
        return Value(kind="position", constant=raw)

    def _switch(self, path: PathKey, m: dict[str, Any]) -> Value | None:
        on = self.source((*path, "switch"), m["switch"])
        if "cases" not in m:
            return None  # _only_with said "a switch needs 'cases'"
        cases_raw = self.r.mapping((*path, "cases"), m["cases"], extra_ok=True)
        if on is None or cases_raw is None:
            return None
        cases: dict[str, Any] = {}
        for key, case in cases_raw.items():
            cases[str(key)] = self._case((*path, "cases", key), case)
        otherwise = (
            self._case((*path, "otherwise"), m["otherwise"]) if "otherwise" in m else NOTHING
        )
        return Value(kind="switch", paths=(on,), cases=cases, otherwise=otherwise)

    def _case(self, path: PathKey, raw: Any) -> Any:
        """A case is a constant, or {from: path} to take another field."""
        if isinstance(raw, dict):
            m = self.r.mapping(path, raw, required=("from",))
            return self.source((*path, "from"), m["from"]) if m and "from" in m else None
        if isinstance(raw, list):
            self.r.error(path, said("a case gives one value (or {from: field})"))
        return raw

    def _each(self, path: PathKey, m: dict[str, Any], prefix: str) -> Value | None:
        src = self.source((*path, "each"), m["each"])
        if src is None:
            return None
        inner = _array_pattern(src, prefix)
        fields = self.section((*path, "fields"), m.get("fields"), inner) if "fields" in m else None
        if fields is None:
            return None
        return Value(kind="each", paths=(src,), fields=fields)

    def _conditions(self, path: PathKey, raw: Any) -> tuple[Condition, ...] | None:
        items = raw if isinstance(raw, list) else [raw]
        out: list[Condition] = []
        for i, item in enumerate(items):
            cpath = (*path, i) if isinstance(raw, list) else path
            m = self.r.mapping(cpath, item, required=("field",), optional=COND_OPS)
            if m is None or "field" not in m:
                return None  # a missing 'field' is already reported
            ops = [k for k in COND_OPS if k in m]
            if len(ops) != 1:
                self.r.error(
                    cpath,
                    said("a condition needs exactly one of: %(ops)s", ops=", ".join(COND_OPS)),
                )
                return None
            op = ops[0]
            operand = m[op]
            if op in ("in", "not_in") and not isinstance(operand, list):
                self.r.error((*cpath, op), said("'%(op)s' takes a list of values", op=op))
                return None
            if op == "present" and not isinstance(operand, bool):
                self.r.error((*cpath, op), said("'present' takes true or false"))
                return None
            if op in ("in_table", "not_in_table"):
                operand = self._table_codes((*cpath, op), operand)
                if operand is None:
                    return None
            src = self.source((*cpath, "field"), m["field"])
            if src is None:
                return None
            out.append(Condition(path=src, op=op, operand=operand))
        return tuple(out)

    def _table_codes(self, path: PathKey, raw: Any) -> frozenset[str] | None:
        """The codes a table lists (``when: {field: district, in_table: district}``)."""
        name = self.r.text(path, raw)
        ctx: Context = self._ctx_for((), "")
        if name is None or name in ctx.unloaded:
            return None  # a table whose file failed is already reported
        table = ctx.tables.get(name)
        if table is None:
            known = ", ".join(sorted(ctx.tables)) or "none"
            self.r.error(
                path,
                said(
                    "no code table %(name)r; this mapping declares: %(known)s",
                    name=name,
                    known=known,
                ),
            )
            return None
        return frozenset(table.values)


def _one_or_list(steps: tuple[Any, ...]) -> Any:
    """A placeholder's steps as ``transform:`` would take them (one step is reported unindexed)."""
    return steps[0] if len(steps) == 1 else list(steps)


def _array_pattern(src: SourcePath, prefix: str) -> str:
    """``names:``-style pattern of the items of an array source: ``household.members[]``."""
    out = "" if src.root else prefix
    for seg in src.segments:
        out += "[]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out + "[]"


def keys_named(fields: Iterable[FieldSpec]) -> list[SecretRef]:
    """The field keys (``encrypt``/``decrypt`` ``key:``) the steps of ``fields`` name, those of
    ``format`` placeholders and ``first`` alternatives included."""
    out: list[SecretRef] = []
    for spec in fields:
        for steps in (spec.steps, *spec.value.part_steps):
            out += [ref for _name, fn in steps if (ref := key_of(fn)) is not None]
    return out
