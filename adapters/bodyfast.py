"""The SOAP body written and its facets checked in one generated pass, for the common payload.

:class:`adapters.facets.CheckedBody` wrote a body with the generated writer of
:mod:`adapters.bodygen` (a function per complex type, a list appended to element by element), then
walked the payload a second time with the quick facet check of :mod:`adapters.facetcheck`. Both
walks are the same tree. :func:`generate_fast` unrolls them together: one function per complex
type that takes each value, tests its type and the quick check's own expression for it, and
returns the type's text in one f-string of the element tags and values.

It answers only for a payload both earlier walks take on their common path, and then exactly what
they answer: the text the writer writes (the same tags, values and conversions, in the same order)
for values the quick check calls surely valid. Anything else (a list, a wrong kind, a value that
needs escaping or that a writer refuses, an unknown key, a nil or missing required element, a value
the quick check is not sure of) returns None, and the body is written and checked as before, by the
writer, the quick check and lxml, which decide every refusal and its messages.

The source never holds a string from the WSDL: keys, tags and checks are variables of its
namespace, so a hostile WSDL cannot inject code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.body import NEEDS_ESCAPING, Node
from adapters.facetcheck import Child, value_test
from adapters.facettypes import ANY
from adapters.xsdtypes import BadValue

Fast = Callable[[Any], str | None]


def generate_fast(root: Node, tree: tuple[Child, ...]) -> Fast:
    """``values`` → the body text (``root``'s element and children) when the compiled writer
    would write it and the quick check (``tree``, compiled from the same ``root``) would call it
    surely valid; None for anything else."""
    src = _FastSource()
    top = src.emit(root, tree, outer=True)
    exec(compile("\n".join(src.lines), "<soap fast body>", "exec"), src.env)
    inner: Callable[[Any, list[str]], str | None] = src.env[top]
    needs_escaping = NEEDS_ESCAPING.search

    def fast(values: Any) -> str | None:
        texts: list[str] = []
        text = inner(values, texts)
        if text is None or (texts and needs_escaping("".join(texts)) is not None):
            return None
        return text

    return fast


class _FastSource:
    """Lines of generated code and the namespace they run in."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"BadValue": BadValue}
        self.lines: list[str] = []
        self.count = 0

    def emit(self, node: Node, tree: tuple[Child, ...], *, outer: bool = False) -> str:
        """The function writing ``node``'s children (with ``node``'s own tags when ``outer``)."""
        self.count += 1
        fn = f"f{self.count}"
        self.env[f"{fn}_keys"] = frozenset(node.by_key)
        checks = {child.key: child for child in tree}
        code = [
            f"def {fn}(values, texts):",
            f"    if type(values) is not dict or not values.keys() <= {fn}_keys:",
            "        return None",
        ]
        pieces: list[tuple[bool, str]] = []  # (a constant of the namespace, name)
        if outer:
            self.env[f"{fn}_o"], self.env[f"{fn}_e"] = node.open, node.close
            pieces.append((True, f"{fn}_o"))
        for j, child in enumerate(node.children):
            c = f"{fn}_{j}"
            code += self._child(c, child, checks.get(child.key), pieces)
        if outer:
            pieces.append((True, f"{fn}_e"))
        code.append(f"    return {self._joined(fn, pieces)}")
        self.lines += [*code, ""]
        return fn

    def _child(
        self, c: str, child: Node, check: Child | None, pieces: list[tuple[bool, str]]
    ) -> list[str]:
        """Code leaving one child's text in ``p_<c>`` (with its tags when it is optional)."""
        self.env.update({f"{c}_k": child.key, f"{c}_o": child.open, f"{c}_e": child.close})
        value = self._value(c, child, check)
        code = [f"    v = values.get({c}_k)", "    if v is None:"]
        if child.min_occurs:  # a nil element or a missing one: the writer's and lxml's to say
            pieces += [(True, f"{c}_o"), (False, f"p_{c}"), (True, f"{c}_e")]
            return [*code, "        return None", *["    " + line for line in value]]
        pieces.append((False, f"p_{c}"))
        return [
            *code,
            f'        p_{c} = ""',
            "    else:",
            *["        " + line for line in value],
            f"        p_{c} = {c}_o + p_{c} + {c}_e",
        ]

    def _value(self, c: str, child: Node, check: Child | None) -> list[str]:
        """Code (not indented) that tests ``v`` and leaves its text in ``p_<c>``."""
        if child.simple is None:
            if check is None or check.inner is None:
                return ["return None"]  # no check for it: never surely valid
            inner = self.emit(child, check.inner)
            return [
                "if type(v) is not dict:",
                "    return None",
                f"p_{c} = {inner}(v, texts)",
                f"if p_{c} is None:",
                "    return None",
            ]
        tests = self._tests(c, check)
        if tests is None:
            return ["return None"]
        if child.text:
            code = ["if type(v) is not str:", "    return None"]
            code += [f"if not ({tests[0]}):", "    return None"] if tests else []
            return [*code, "texts.append(v)", f"p_{c} = v"]
        self.env[f"{c}_w"] = child.simple.write
        code = ["if type(v) is str:"]
        code += [f"    if not ({tests[0]}):", "        return None"] if tests else ["    pass"]
        code += ["elif type(v) is int:"]
        code += [f"    if not ({tests[1]}):", "        return None"] if tests else ["    pass"]
        return [
            *code,
            "else:",
            "    return None",
            "try:",
            f"    p_{c} = {c}_w(v)",
            "except BadValue:",
            "    return None",
        ]

    def _tests(self, c: str, check: Child | None) -> list[str] | None:
        """The quick check's tests of a simple value: for a ``str`` (first) and for an ``int``
        (second, when there is one); [] when the check takes any value; None when it takes none.

        No entry in the check's tree is an optional string element without facets (any text
        valid); a check of None is a type it does not judge: never surely valid."""
        if check is None:
            return []
        if check.check is None:
            return None
        if check.check is ANY:
            return []
        tests = [value_test(c, check.check, self.env)]
        if check.numeric:
            return [*tests, f"{c}_f(str(v))"]
        return [*tests, "False"]  # an int for a type that is not a number: lxml's to judge

    def _joined(self, fn: str, pieces: list[tuple[bool, str]]) -> str:
        """An f-string of the pieces, neighbouring constants joined into one."""
        merged: list[tuple[bool, str]] = []
        for constant, name in pieces:
            if constant and merged and merged[-1][0]:
                joined = f"{fn}_j{len(self.env)}"
                self.env[joined] = self.env[merged[-1][1]] + self.env[name]
                merged[-1] = (True, joined)
            else:
                merged.append((constant, name))
        if not merged:
            return '""'
        return 'f"' + "".join("{" + name + "}" for _, name in merged) + '"'
