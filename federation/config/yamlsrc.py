"""YAML loading that remembers where every value came from.

Configuration and mapping errors must name ``file:line``; PyYAML forgets lines once it builds Python
objects, so we compose the node tree ourselves and keep a path → line table beside the data.
Two deliberate departures from PyYAML's defaults, both because operators edit these files by hand:
duplicate keys are errors (PyYAML keeps the last one silently), and only ``true``/``false`` are
booleans and dates stay strings (YAML 1.2 core schema; ``NO`` is Norway, ``2024-01-01`` is text).

Anchors, aliases and ``<<`` merge keys work (shared timeouts, say), within the limits of
:mod:`federation.config.yamlguard` (what aliases may add, how deep a document may nest).
"""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from federation.config.recognised import invalid_yaml
from federation.config.yamlguard import Guarded, Refused
from federation.domain.errors import ConfigError, Problem
from federation.domain.texts import Text, quoted, said

PathKey = tuple[str | int, ...]


class _Resolver(yaml.resolver.BaseResolver):
    pass


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.inf|\.nan)$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class _Loader(
    Guarded,
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        Guarded.__init__(self)


@dataclass(frozen=True)
class Located:
    """Parsed YAML data plus the line (1-based) of every key and item."""

    data: Any
    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, path: PathKey, message: str | Text, *, severity: str = "error") -> Problem:
        """A problem at ``path``: its line, or its nearest ancestor's."""
        return Problem(
            message=str(message),
            text=message if isinstance(message, Text) else None,
            path=format_path(path),
            file=self.file,
            line=self.line(path),
            severity=severity,
        )


def format_path(path: PathKey) -> str:
    """``('partners', 3, 'endpoint')`` → ``partners[3].endpoint``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(path: Path, *, display: str | None = None) -> Located:
    """Parse one YAML file; syntax errors, duplicate keys and odd keys raise ConfigError."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(text=said("file not found"), file=shown)]) from None
    except OSError as exc:
        problem = Problem(text=said("cannot read: %(error)s", error=str(exc)), file=shown)
        raise ConfigError([problem]) from exc
    return parse_yaml(utf8_text(raw, display=shown), display=shown)


# Byte order marks of the encodings a file saved as "Unicode" may be in, longest first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def utf8_text(raw: bytes, *, display: str) -> str:
    """A file's bytes as UTF-8 text; ConfigError at the line and column of the first byte that is
    not UTF-8, or saying the file is UTF-16 (or UTF-32) text, which must be saved as UTF-8."""
    encoding = _wide_encoding(raw)
    if encoding is not None:
        message = said(
            "the file is %(encoding)s text: tongban reads UTF-8 only; save it as UTF-8",
            encoding=encoding,
        )
        raise ConfigError([Problem(text=message, file=display, line=1)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1  # the start of the line the byte is on
        column = len(raw[start : exc.start].decode("utf-8")) + 1  # valid up to exc.start
        message = said(
            "not UTF-8 text: byte %(byte)s at column %(column)s; save the file as UTF-8",
            byte=format(raw[exc.start], "#04x"),
            column=column,
        )
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Problem(text=message, file=display, line=line)]) from None


def _wide_encoding(raw: bytes) -> str | None:
    """UTF-16 or UTF-32 when ``raw`` starts with their byte order mark, or without one with a NUL
    beside its first character (a NUL is never in a YAML file, nor in UTF-8 text's first bytes)."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    if (len(raw) >= 4 and raw[1:4] == b"\0\0\0") or raw[:3] == b"\0\0\0":
        return "UTF-32"
    if len(raw) >= 2 and (raw[0] == 0) != (raw[1] == 0):
        return "UTF-16"
    return None


def read_source(path: Path, *, display: str, what: str) -> tuple[bytes, str]:
    """A data file's bytes (for its content hash) and its UTF-8 text; ConfigError if unreadable.

    ``what`` names the file in the problem (``cannot read mapping: …``); text that is not UTF-8
    is refused at the line of its first stray byte (:func:`utf8_text`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [
                Problem(
                    text=said("cannot read %(what)s: %(error)s", what=what, error=exc.strerror),
                    file=display,
                )
            ]
        ) from exc
    return raw, utf8_text(raw, display=display)


def parse_yaml(text: str, *, display: str) -> Located:
    """Parse YAML text (see :func:`load_yaml`)."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, BEL …)
        at = text.count("\n", 0, exc.position) + 1
        msg = invalid_yaml(str(exc).split("\n", 1)[0])
        raise ConfigError([Problem(text=msg, file=display, line=at)]) from None
    try:
        node = loader.get_single_node()
    except Refused as exc:
        raise ConfigError([Problem(text=exc.text, file=display, line=exc.line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = invalid_yaml(unquoted(str(exc.problem or exc.context)))
        raise ConfigError([Problem(text=msg, file=display, line=line)]) from None
    except yaml.YAMLError as exc:
        msg = said("invalid YAML: %(problem)s", problem=unquoted(str(exc)))
        raise ConfigError([Problem(text=msg, file=display)]) from None
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    problems: list[Problem] = []
    if node is None:
        return Located(None, display, lines)
    data = _build(node, (), lines, problems, loader, display)
    if problems:
        raise ConfigError(problems)
    return Located(data, display, lines)


# What PyYAML quotes of a file that does not parse: a token's kind ('<scalar>'), one character
# ('@', '\t': one that cannot start a token is never a letter or a digit) or a name from the text
# (an alias, a tag). A file that does not parse may be no YAML at all but a key file named by
# mistake, so a name is not repeated: file and line say where, the words what was expected.
_QUOTED = re.compile(r"'([^'\n]*)'")
_ONE = re.compile(r"<[a-z ]+>|.|\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)")


def unquoted(problem: str) -> str:
    """PyYAML's ``problem`` without a name it quotes from the text (``'…'`` in its place)."""
    return _QUOTED.sub(lambda m: m[0] if _ONE.fullmatch(m[1]) else "'…'", problem)


def _build(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    problems: list[Problem],
    loader: _Loader,
    display: str,
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    try:
        return _build_node(node, path, lines, problems, loader, display)
    except (yaml.YAMLError, ValueError) as exc:
        msg = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
        problems.append(
            Problem(
                text=exc.text
                if isinstance(exc, TooManyDigits)
                else invalid_yaml(unquoted(str(msg))),
                path=format_path(path),
                file=display,
                line=node.start_mark.line + 1,
            )
        )
        return None


def _build_node(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    problems: list[Problem],
    loader: _Loader,
    display: str,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves << merge keys; merged pairs come first
        out: dict[str, Any] = {}
        written: set[str] = set()  # keys written in this mapping itself, not merged in
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:int":
                key = key_node.value  # keys are text: a code written 01 stays "01", not 1
            else:
                key = loader.construct_object(key_node)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                problems.append(
                    Problem(
                        text=said("keys must be text, not %(key)r", key=quoted(key)),
                        path=format_path(path),
                        file=display,
                        line=line,
                    )
                )
                continue
            key = str(key)
            if id(key_node) in own and key in written:
                problems.append(
                    Problem(
                        text=said("duplicate key %(key)r", key=key),
                        path=format_path(path),
                        file=display,
                        line=line,
                    )
                )
                continue
            if id(key_node) in own:
                written.add(key)
            lines[(*path, key)] = line
            out[key] = _build(value_node, (*path, key), lines, problems, loader, display)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), lines, problems, loader, display)
            for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        return _yaml12_int(node.value)  # PyYAML would read 012 as octal and fail on 08
    return loader.construct_object(node)


class TooManyDigits(ValueError):
    """A whole number longer than Python reads as one (``sys.get_int_max_str_digits()``)."""

    def __init__(self, count: int) -> None:
        self.text = said(
            "the number has %(count)s digits, more than the %(limit)s a number may have",
            count=count,
            limit=sys.get_int_max_str_digits(),
        )
        super().__init__(str(self.text))


def _yaml12_int(text: str) -> int:
    """``012`` is twelve and ``08`` is eight; only 0x and 0o prefixes change the base."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2] in ("0x", "0o"):
        return sign * int(digits, 0)  # no limit on digits in a base that is a power of two
    try:
        return sign * int(digits, 10)
    except ValueError:  # the digits match [0-9]+: only their number can be refused
        raise TooManyDigits(len(digits)) from None


def walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) in a parsed document, parents before children."""
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from walk(v, (*path, i))
