"""Compiling field specs into one plain Python function per section.

Mapping runs once per application on the broker's hot path, so a section becomes straight-line Python
(dictionary gets, a few ``if``s, direct calls of the transform steps) instead of an interpreter
walking the spec: see bench/mapping.py. Problems are collected as ``(field, prefix, message)`` tuples
and turned into located Problems only when there are some. A message is a Text (its English
template and values, said in the reader's language by the CLI and the console): a constant made
once when the mapping compiles, or built on the failing branch only, never on the way of a value
that maps.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from federation.domain.paths import MISSING
from federation.domain.texts import N_, Text, said
from federation.mapping.spec import NOTHING, Condition, FieldSpec, SourcePath
from federation.mapping.transforms import TransformError

# (item, top of the input, problems, warnings, path prefix) → output; inside 'each' also the position
SectionFn = Callable[[Any, Any, list[Any], list[Any], str], dict[str, Any]]
_IMMUTABLE = (str, int, float, bool, type(None))


class _Take:
    """A switch case that takes another field's value."""

    __slots__ = ("get",)

    def __init__(self, get: Callable[[Any, Any], Any]) -> None:
        self.get = get


_NOCASE: Any = object()
_SKIP: Any = object()
_NO_CASE = N_("no case for %(value)r; cases: %(cases)s")
_NOT_A_LIST = said("expected a list of items")


def _required(spec: FieldSpec) -> Text:
    return said("required, but missing (maps to %(target)s)", target=".".join(spec.target))


def _no_case(value: Any, cases: str) -> Text:
    return Text(_NO_CASE, (("value", value), ("cases", cases)))


class Compiler:
    """Generates the source of one mapping's section functions and executes it once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.globals: dict[str, Any] = {
            "MISSING": MISSING,
            "TransformError": TransformError,
            "_NOCASE": _NOCASE,
            "_SKIP": _SKIP,
            "_Take": _Take,
            "_deepcopy": copy.deepcopy,
            "_tag": _tag,
            "_no_case": _no_case,
            "_NOT_A_LIST": _NOT_A_LIST,
        }
        self.fields: list[FieldSpec] = []  # index in generated code → spec (for problems)
        self.lines: list[str] = []
        self._ids = itertools.count()
        self._cache: dict[tuple[Any, ...], str] = {}  # source prefix → local holding it
        self._objs: dict[tuple[str, ...], str] = {}  # target prefix → local holding that object

    def compile(self, specs: tuple[FieldSpec, ...]) -> tuple[SectionFn, list[FieldSpec]]:
        """The section function and the field table its problem tuples index into."""
        entry = self._function(specs)
        source = "\n".join(self.lines)
        exec(compile(source, f"<mapping {self.name}>", "exec"), self.globals)
        fn: SectionFn = self.globals[entry]
        return fn, self.fields

    # -- code generation ------------------------------------------------------------------

    def _const(self, value: Any) -> str:
        name = f"C{next(self._ids)}"
        self.globals[name] = value
        return name

    def _function(self, specs: tuple[FieldSpec, ...]) -> str:
        name = f"section_{next(self._ids)}"
        saved, self._cache = self._cache, {}
        saved_objs, self._objs = self._objs, {}
        for spec in specs:
            for k in range(1, len(spec.target)):
                self._objs.setdefault(spec.target[:k], f"o{next(self._ids)}")
        # Read every source prefix that two or more fields share once, into a local: reads have
        # no side effects, so doing them up front is safe even for fields under 'when'.
        counts: dict[tuple[Any, ...], int] = {}
        for spec in specs:
            kind = spec.value.kind
            paths = (
                spec.value.paths
                if kind in ("from", "format", "concat", "first")
                else spec.value.paths[:1]
            )
            for path in paths:
                if not path.root:
                    for k in range(1, len(path.segments)):
                        counts[path.segments[:k]] = counts.get(path.segments[:k], 0) + 1
        prelude: list[str] = []
        for seg, n in sorted(counts.items(), key=lambda kv: len(kv[0])):
            if n >= 2:
                var = f"s{next(self._ids)}"
                prelude += self._get(SourcePath(text="", segments=seg), var)
                self._cache[seg] = var
        body: list[str] = []
        for spec in specs:
            body += self._field(spec)
        objs = self._objs
        self._cache, self._objs = saved, saved_objs
        self.lines.append(f"def {name}(src, root, P, W, prefix, pos=0):")
        self.lines.append("    out = {}")
        if objs:
            self.lines.append("    " + " = ".join(objs.values()) + " = None")
        self.lines += _ind(prelude, "    ")
        self.lines += _ind(body, "    ")
        self.lines.append("    return out")
        self.lines.append("")
        return name

    def _field(self, spec: FieldSpec) -> list[str]:
        index = len(self.fields)
        self.fields.append(spec)
        code = [f"# {'.'.join(spec.target)} (line {spec.line})"]
        inner: list[str] = []
        inner += self._value(spec, index)
        missing = "v is MISSING or v is None" + (' or v == ""' if spec.required else "")
        inner.append(f"if v is _SKIP:\n    pass\nelif {missing}:")
        if spec.default is not NOTHING:
            inner.append(f"    {self._copy(spec.default)}")
            inner += _ind(self._put(spec.target), "    ")
        elif spec.required:
            inner.append(f"    P.append(({index}, prefix, {self._const(_required(spec))}))")
        else:
            inner.append("    if v is None:")
            inner += _ind(self._put(spec.target), "        ")
        inner.append("else:")
        if spec.steps:
            inner.append("    n = len(W)")
            inner.append("    try:")
            for name, fn in spec.steps:
                inner.append(f"        v = {self._const(fn)}(v, W)  # {name}")
            inner.append("    except TransformError as e:")
            inner.append(f"        P.append(({index}, prefix, e.reason))")
            inner.append("    else:")
            inner.append(f"        if len(W) > n:\n            _tag(W, n, {index}, prefix)")
            put = self._put(spec.target)
            if any(getattr(fn, "may_miss", False) for _, fn in spec.steps):
                put = ["if v is not MISSING:", *_ind(put, "    "), *self._absent(spec, index)]
            inner += _ind(put, "        ")
        else:
            inner += _ind(self._put(spec.target), "    ")
        if spec.when:
            code.append(f"if {self._conditions(spec.when)}:")
            code += _ind(inner, "    ")
        else:
            code += inner
        return code

    def _absent(self, spec: FieldSpec, index: int) -> list[str]:
        """The ``else`` of a step that found nothing (pick): a default, or required's problem."""
        if spec.default is not NOTHING:
            return [
                "else:",
                "    " + self._copy(spec.default),
                *_ind(self._put(spec.target), "    "),
            ]
        if spec.required:
            return ["else:", f"    P.append(({index}, prefix, {self._const(_required(spec))}))"]
        return []

    def _copy(self, value: Any) -> str:
        const = self._const(value)
        return f"v = {const}" if isinstance(value, _IMMUTABLE) else f"v = _deepcopy({const})"

    def _get(self, path: SourcePath, var: str = "v", cached: bool = True) -> list[str]:
        start, segments = ("root" if path.root else "src"), path.segments
        if cached and not path.root:
            for k in range(len(segments), 0, -1):
                if segments[:k] in self._cache:
                    start, segments = self._cache[segments[:k]], segments[k:]
                    break
        lines = [f"{var} = {start}"]
        for seg in segments:
            if isinstance(seg, int):
                lines.append(
                    f"{var} = {var}[{seg}] if type({var}) is list and len({var}) > {seg} else MISSING"
                )
            else:
                lines.append(
                    f"{var} = {var}.get({seg!r}, MISSING) if type({var}) is dict else MISSING"
                )
        return lines

    def _value(self, spec: FieldSpec, index: int) -> list[str]:
        value = spec.value
        kind = value.kind
        if kind == "value":
            return [self._copy(value.constant)]
        if kind == "position":
            return [f"v = pos + {int(value.constant)}"]
        if kind == "from":
            return self._get(value.paths[0])
        if kind == "format":
            lines: list[str] = []
            names = []
            for i, path in enumerate(value.paths):
                lines += self._get(path, f"t{i}")
                names.append(f"t{i}")
                if value.part_steps and value.part_steps[i]:
                    lines += self._part_steps(f"t{i}", value.part_steps[i], index, path)
            absent = " or ".join(f"{n} is MISSING or {n} is None" for n in names)
            fill = f"{self._const(value.template)}.format({', '.join(names)})"
            if value.part_steps:
                skipped = " or ".join(f"{n} is _SKIP" for n in names)
                fill = f"_SKIP if {skipped} else {fill}"
            lines.append(f"v = MISSING if {absent} else {fill}")
            return lines
        if kind == "first" and value.part_steps:
            return self._first(spec, index)
        if kind in ("concat", "first"):
            lines = ["parts = []"]
            for path in value.paths:
                lines += self._get(path, "t")
                lines.append(
                    'if t is not MISSING and t is not None and t != "":\n    parts.append(t)'
                )
            if kind == "first":
                lines.append("v = parts[0] if parts else MISSING")
            else:
                sep = self._const(value.separator)
                lines.append(f"v = {sep}.join(str(x) for x in parts) if parts else MISSING")
            return lines
        if kind == "switch":
            return self._switch(spec, index)
        return self._each(spec, index)

    def _part_steps(
        self, var: str, steps: tuple[tuple[str, Any], ...], index: int, path: SourcePath
    ) -> list[str]:
        """Run one placeholder's or alternative's steps on ``var`` (``_SKIP`` when one fails);
        a failure is reported at the field it read, not at the target."""
        at = self._const(path.text.removeprefix("$."))
        lines = [f"if {var} is not MISSING and {var} is not None:", "    n = len(W)", "    try:"]
        for name, fn in steps:
            lines.append(f"        {var} = {self._const(fn)}({var}, W)  # {name}")
        lines.append("    except TransformError as e:")
        lines.append(f"        P.append(({index}, prefix, e.reason, {at}))")
        lines.append(f"        {var} = _SKIP")
        lines.append(f"    if len(W) > n:\n        _tag(W, n, {index}, prefix)")
        return lines

    def _first(self, spec: FieldSpec, index: int) -> list[str]:
        """``first`` with steps per alternative: only the chosen alternative is transformed."""
        lines = ["v = MISSING"]
        for i, path in enumerate(spec.value.paths):
            body = self._get(path, "t")
            body.append('if t is not MISSING and t is not None and t != "":')
            steps = spec.value.part_steps[i]
            if steps:
                body += _ind(self._part_steps("t", steps, index, path), "    ")
            body.append("    v = t")
            lines += body if i == 0 else ["if v is MISSING:", *_ind(body, "    ")]
        return lines

    def _switch(self, spec: FieldSpec, index: int) -> list[str]:
        value = spec.value
        cases = {k: self._case(c) for k, c in value.cases.items()}
        lines = self._get(value.paths[0], "k")
        lines.append("if k is MISSING or k is None:\n    v = MISSING\nelse:")
        lines.append(f"    v = {self._const(cases)}.get(k if type(k) is str else str(k), _NOCASE)")
        lines.append("    if v is _NOCASE:")
        if value.otherwise is not NOTHING:
            lines.append(f"        v = {self._const(self._case(value.otherwise))}")
        else:
            listed = self._const(", ".join(value.cases))
            lines.append(f"        P.append(({index}, prefix, _no_case(k, {listed})))")
            lines.append("        v = _SKIP")
        lines.append("    if type(v) is _Take:\n        v = v.get(src, root)")
        return lines

    def _case(self, case: Any) -> Any:
        if isinstance(case, SourcePath):
            sub = Compiler(self.name)
            fn_lines = sub._get(case, cached=False)
            src = (
                "def take(src, root):\n"
                + "\n".join("    " + ln for ln in fn_lines)
                + "\n    return v\n"
            )
            exec(compile(src, f"<mapping {self.name} case>", "exec"), sub.globals)
            return _Take(sub.globals["take"])
        return case

    def _each(self, spec: FieldSpec, index: int) -> list[str]:
        value = spec.value
        sub = self._function(value.fields)
        label = self._const(value.paths[0].text)
        lines = self._get(value.paths[0])
        lines.append("if type(v) is list:")
        lines.append(
            f"    v = [{sub}(item, root, P, W, prefix + {label} + '[' + str(j) + '].', j) "
            "for j, item in enumerate(v)]"
        )
        lines.append("elif v is not MISSING and v is not None:")
        lines.append(f"    P.append(({index}, prefix, _NOT_A_LIST))")
        lines.append("    v = _SKIP")
        return lines

    def _conditions(self, conditions: tuple[Condition, ...]) -> str:
        tests = []
        for cond in conditions:
            test = f"COND{next(self._ids)}"
            getter_lines = self._get(cond.path, cached=False)
            op, operand = cond.op, self._const(cond.operand)
            check = {
                "equals": f"v == {operand}",
                "not_equals": f"v != {operand}",
                "in": f"v in {operand}",
                "not_in": f"v not in {operand}",
                "present": f'(v is not MISSING and v is not None and v != "") == {operand}',
                "in_table": f"v is not MISSING and v is not None and str(v) in {operand}",
                "not_in_table": f"not (v is not MISSING and v is not None and str(v) in {operand})",
            }[op]
            src = f"def {test}(src, root):\n" + "\n".join("    " + ln for ln in getter_lines)
            src += f"\n    return {check}\n"
            self.lines.append(src)
            tests.append(f"{test}(src, root)")
        return " and ".join(tests)

    def _put(self, target: tuple[str, ...]) -> list[str]:
        if len(target) == 1:
            return [f"out[{target[0]!r}] = v"]
        # Each nested object is created at its first write (so objects keep the order fields are
        # written in, and an object no field writes is left out) and then held in a local.
        lines: list[str] = []
        for k in range(1, len(target)):
            var, parent = self._objs[target[:k]], ("out" if k == 1 else self._objs[target[: k - 1]])
            lines.append(f"if {var} is None:\n    {var} = {parent}[{target[k - 1]!r}] = {{}}")
        lines.append(f"{self._objs[target[:-1]]}[{target[-1]!r}] = v")
        return lines


def _ind(lines: list[str], prefix: str) -> list[str]:
    """Indent generated lines, including entries that hold several lines."""
    return [prefix + part for entry in lines for part in entry.split("\n")]


def _tag(warnings: list[Any], start: int, index: int, prefix: str) -> None:
    """Turn the warnings a step appended (English text or a Text) into (field, prefix, message)
    tuples."""
    for i in range(start, len(warnings)):
        if type(warnings[i]) is not tuple:
            warnings[i] = (index, prefix, warnings[i])
