"""Generated fast paths for compiled SOAP bodies: one Python function per complex type.

Interpreting a :class:`~adapters.body.Node` tree costs a function call and several lookups per
element, per message. For a partner doing thousands of calls a second that is most of the adapter's
own cost, so :class:`CompiledBody` generates Python source specialised to the tree once per
operation: each complex type becomes one function with its children unrolled, the common cases
inline (a dict for a complex child; plain text or a scalar for a simple one; a text node when
reading). Anything else (lists, missing or nil elements, wrong kinds, bad values, unexpected
elements) goes to the interpreted functions of :mod:`adapters.body`, which stay the reference: the
tests check the two agree. The source never contains a string from the WSDL: element names and tags
reach it as variables of its namespace, so a hostile WSDL cannot inject code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from adapters.body import (
    NEEDS_ESCAPING,
    XSI_NIL,
    BodyInvalid,
    Node,
    read_children,
    read_element,
    unexpected,
    write_children,
    write_general,
)
from adapters.xsdtypes import BadValue

Writer = Callable[[Any, list[str], list[str], str, list[str]], None]
Reader = Callable[[Any, list[str], str], dict[str, Any]]
_NIL = ("true", "1")


class CompiledBody:
    """A body written and read through generated code for a compiled :class:`Node` tree."""

    def __init__(self, root: Node, nsmap: Mapping[str, str]) -> None:
        self.root = root
        self.nsmap = nsmap
        self.tag = root.tag
        self._write = generate_writer(root)
        self._read = generate_reader(root)

    def write(self, values: Mapping[str, Any]) -> str:
        out: list[str] = [self.root.open]
        problems: list[str] = []
        texts: list[str] = []
        self._write(values, out, problems, "", texts)
        if texts and NEEDS_ESCAPING.search("".join(texts)) is not None:
            # Some text needs escaping (or cannot be carried): the interpreted path does it right.
            return self.write_slowly(values)
        if problems:
            raise BodyInvalid(problems)
        out.append(self.root.close)
        return "".join(out)

    def read(self, body: etree._Element, first: etree._Element | None) -> dict[str, Any]:
        problems: list[str] = []
        if first is None or first.tag != self.root.tag:
            found = "nothing" if first is None else etree.QName(first).localname
            raise BodyInvalid([f"expected {etree.QName(self.root.tag).localname}, found {found}"])
        result = self._read(first, problems, "")
        if problems:
            raise BodyInvalid(problems)
        return result

    def write_slowly(self, values: Mapping[str, Any]) -> str:
        """:meth:`write` by the interpreted rules: the reference for tests."""
        out: list[str] = [self.root.open]
        problems: list[str] = []
        write_children(self.root, values, "", out, problems)
        if problems:
            raise BodyInvalid(problems)
        out.append(self.root.close)
        return "".join(out)

    def read_slowly(self, first: etree._Element) -> dict[str, Any]:
        """:meth:`read` by the interpreted rules: the reference for tests."""
        problems: list[str] = []
        result = read_children(self.root, first, "", problems)
        if problems:
            raise BodyInvalid(problems)
        return result


class _Source:
    """Lines of generated code and the namespace they run in."""

    def __init__(self, **env: Any) -> None:
        self.env: dict[str, Any] = env
        self.lines: list[str] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def compile(self, top: str, what: str) -> Any:
        exec(compile("\n".join(self.lines), f"<{what}>", "exec"), self.env)
        return self.env[top]


def generate_writer(root: Node) -> Writer:
    """Writes ``root``'s children from a payload mapping into ``out``; problems go to ``problems``.

    Plain text goes out unescaped and is also collected in ``texts``: the caller checks all of it at
    once for characters that need escaping, and if there are any, writes the body again slowly.
    """
    src = _WriterSource()
    writer: Writer = src.compile(src.emit(root), f"soap writer for {root.key}")
    return writer


def generate_reader(root: Node) -> Reader:
    """Reads the children of an element matching ``root`` into a dict; problems go to ``problems``."""
    src = _ReaderSource()
    reader: Reader = src.compile(src.emit(root), f"soap reader for {root.key}")
    return reader


class _WriterSource(_Source):
    """The writer's source: a function ``w<n>`` per complex type, children unrolled."""

    def __init__(self) -> None:
        super().__init__(BadValue=BadValue, general=write_general, children=write_children)

    def emit(self, node: Node) -> str:
        """Generate the function writing ``node``'s children (and those of its complex children)."""
        fn = self.name("w")
        self.env.update({f"{fn}_node": node, f"{fn}_keys": frozenset(node.by_key)})
        code = [
            f"def {fn}(values, out, problems, prefix, texts):",
            f"    if type(values) is not dict or not values.keys() <= {fn}_keys:",
            f"        return children({fn}_node, values, prefix, out, problems)",
        ]
        for j, child in enumerate(node.children):
            code += self._child(f"{fn}_{j}", child)
        self.lines += [*code, ""]
        return fn

    def _child(self, c: str, child: Node) -> list[str]:
        # The common case inline; anything else (lists, None, wrong kinds) goes to general().
        self.env.update({c: child, f"{c}_k": child.key, f"{c}_o": child.open})
        self.env.update({f"{c}_e": child.close, f"{c}_sub": child.key + "."})
        code = [f"    v = values.get({c}_k)"]
        if child.simple is None:
            inner = self.emit(child)
            code += [
                "    if type(v) is dict:",
                f"        out.append({c}_o)",
                f"        {inner}(v, out, problems, prefix + {c}_sub, texts)",
                f"        out.append({c}_e)",
            ]
        elif child.text:
            code += [
                "    if type(v) is str:",
                f"        out.append({c}_o + v + {c}_e)",
                "        texts.append(v)",
            ]
        else:
            self.env[f"{c}_w"] = child.simple.write
            code += [
                "    if type(v) is str or type(v) is int:",
                "        try:",
                f"            out.append({c}_o + {c}_w(v) + {c}_e)",
                "        except BadValue:",
                f"            general({c}, v, prefix + {c}_k, out, problems)",
            ]
        return [*code, "    else:", f"        general({c}, v, prefix + {c}_k, out, problems)"]


class _ReaderSource(_Source):
    """The reader's source: a function ``r<n>`` per complex type, one branch per child tag."""

    def __init__(self) -> None:
        super().__init__(
            BadValue=BadValue, slow=read_element, unexpected=unexpected, NIL=_NIL, XSI_NIL=XSI_NIL
        )

    def emit(self, node: Node) -> str:
        """Generate the function reading ``node``'s children (and those of its complex children)."""
        fn = self.name("r")
        code = self._start(fn, node)
        code += ["    for sub in el:", "        tag = sub.tag"]
        for j, child in enumerate(node.children):
            code += self._branch(f"{fn}_{j}", j, child)
        if node.children:
            code += ["        else:", "            unexpected(sub, prefix, problems)"]
        else:
            code.append("        unexpected(sub, prefix, problems)")
        code += self._missing(fn, node)
        code.append("    return result")
        self.lines += [*code, ""]
        return fn

    def _start(self, fn: str, node: Node) -> list[str]:
        # Every key present (None when absent); s<j> flags catch a repeated single element.
        self.env[f"{fn}_t"] = dict.fromkeys(node.by_key)
        code = [f"def {fn}(el, problems, prefix):", f"    result = {fn}_t.copy()"]
        singles = [j for j, c in enumerate(node.children) if not c.many]
        if singles:
            code.append("    " + " = ".join(f"s{j}" for j in singles) + " = False")
        for j, child in enumerate(node.children):
            self.env.update({f"{fn}_{j}_k": child.key})
            if child.many:
                code.append(f"    result[{fn}_{j}_k] = []")
        return code

    def _branch(self, c: str, j: int, child: Node) -> list[str]:
        self.env.update({c: child, f"{c}_t": child.tag, f"{c}_sub": child.key + "."})
        self.env[f"{c}_rep"] = f"{child.key}: repeated, the WSDL allows one"
        code = [f"        {'if' if j == 0 else 'elif'} tag == {c}_t:"]
        if not child.many:
            code += [
                f"            if s{j}:",
                f"                problems.append(prefix + {c}_rep)",
                "                continue",
                f"            s{j} = True",
            ]
        code += self._value(c, child)
        target = f"result[{c}_k].append(v)" if child.many else f"result[{c}_k] = v"
        self.env[f"{c}_k"] = child.key
        return [*code, f"            {target}"]

    def _value(self, c: str, child: Node) -> list[str]:
        # The common case inline (a text node, a nested element); the rest goes to slow().
        if child.simple is None:
            inner = self.emit(child)
            return [
                "            if len(sub) or sub.get(XSI_NIL) not in NIL:",
                f"                v = {inner}(sub, problems, prefix + {c}_sub)",
                "            else:",
                "                v = None",
            ]
        code = [
            "            v = sub.text",
            "            if v is None or len(sub):",
            f"                v = slow({c}, sub, prefix, problems)",
        ]
        if child.text:
            return code
        self.env[f"{c}_r"] = child.simple.read
        return [
            *code,
            "            else:",
            "                try:",
            f"                    v = {c}_r(v)",
            "                except BadValue:",
            f"                    v = slow({c}, sub, prefix, problems)",
        ]

    def _missing(self, fn: str, node: Node) -> list[str]:
        code = []
        for j, child in enumerate(node.children):
            if not child.min_occurs:
                continue
            c = f"{fn}_{j}"
            self.env[f"{c}_miss"] = f"{child.key}: required element missing"
            test = f"not result[{c}_k]" if child.many else f"not s{j}"
            code += [f"    if {test}:", f"        problems.append(prefix + {c}_miss)"]
        return code
