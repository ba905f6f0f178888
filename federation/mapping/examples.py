"""Golden examples: sample applications beside each mapping, with what every section must make.

``mappings/hk/td-vehicle-licence-renewal.yaml`` keeps its examples in
``mappings/hk/td-vehicle-licence-renewal.examples/*.json``, each an object with ``description``,
``application`` and either ``expected`` (the exact mapped request) or ``expected_errors`` (a list of
``{"path": …, "contains": …}`` the mapping must report). It may add ``expected_warnings`` (every
warning, listed like errors), ``expected_headers`` (the SOAP header values: then ``expected`` is the
body alone), and one case or a list of cases for any other section of the mapping (``response``,
``status``, ``status_query``, ``supplement``, ``report``): ``{"input": …, "expected": …}`` or
``{"input": …, "expected_errors": […]}``, with ``expected_warnings`` too. ``demo: true`` examples
are what ``tongban demo`` submits, from ``source``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson

from federation.config.headers import EXCHANGE_KEY, HEADERS_KEY
from federation.config.reader import written_inside
from federation.domain import strictjson
from federation.domain.errors import ConfigError, MappingError, Problem
from federation.domain.texts import N_, Gettext, Text, said
from federation.mapping.engine import CompiledMapping, Section, tables_root

# The sections a case may exercise: every Section of a compiled mapping but the request (the
# example's own application) and headers (written by the request, under @headers).
CASE_SECTIONS = tuple(
    f.name
    for f in fields(CompiledMapping)
    if "Section" in str(f.type) and f.name not in ("request", "headers")
)
_TOP = ("description", "demo", "source", "application", "expected", "expected_errors")
_MORE = ("expected_warnings", "expected_headers")
Expectations = list[dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class Case:
    """One input to a section other than the request, and what it must make."""

    section: str
    input: Any
    expected: Any = None
    expected_errors: Expectations | None = None
    expected_warnings: Expectations | None = None


@dataclass(frozen=True, kw_only=True)
class Example:
    file: Path
    description: str
    demo: bool
    source: str | None
    application: dict[str, Any]
    expected: dict[str, Any] | None
    expected_errors: list[dict[str, str]] | None
    expected_warnings: Expectations | None = None
    expected_headers: dict[str, Any] | None = None
    cases: tuple[Case, ...] = ()


def examples_dir(mapping_path: Path) -> Path:
    return mapping_path.with_name(mapping_path.stem + ".examples")


def load_examples(mapping_path: Path) -> list[Example]:
    """Every example beside a mapping, sorted by file name; ConfigError if one is malformed.

    Each is found by listing the mapping's examples folder, so its name as written stays in it;
    an example that is a symlink is followed when read, as the code tables' links are: the
    operator who owns the mappings/ directory placed it. A link loop is said, not a traceback."""
    folder = examples_dir(mapping_path)
    if not folder.is_dir():
        return []
    root = tables_root(mapping_path)
    out: list[Example] = []
    problems: list[Problem] = []
    for file in sorted(folder.glob("*.json")):
        try:
            _inside(file, folder, root)
            out.append(load_example(file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


def _inside(file: Path, folder: Path, root: Path) -> None:
    """ConfigError unless ``file``, as written (not its links), lies in ``folder`` and resolves
    (no link loop); ``root`` is where examples are said to be read from."""
    if written_inside(os.path.relpath(file, folder)) is None:
        message = said(
            "the golden example leads outside %(root)s, where it is read from", root=str(root)
        )
        raise ConfigError([Problem(text=message, file=str(file))])
    try:
        file.resolve()
    except (OSError, RuntimeError):  # a link loop
        message = said("%(name)r cannot be resolved to a file", name=file.name)
        raise ConfigError([Problem(text=message, file=str(file))]) from None


# A JSON string (escapes kept) or a character that opens, closes or separates.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],]', re.DOTALL)


@dataclass
class _Open:
    """An object (``keys`` the keys it has so far, ``key`` the last) or an array (``keys`` None,
    ``index`` the item being read) that :func:`duplicated` is inside."""

    path: str
    keys: set[str] | None
    key: str = ""
    index: int = 0

    def child(self) -> str:
        """The path of the value being read in it."""
        if self.keys is None:
            return f"{self.path}[{self.index}]"
        return f"{self.path}.{self.key}" if self.path else self.key


def duplicated(raw: bytes) -> tuple[str, int] | None:
    """The path and line of the first key written twice in one object of ``raw`` (JSON that
    parses), in the order they are written; None when there is none. The strict parser
    (federation/domain/strictjson.py) tells there is one; this says where, for people."""
    stack: list[_Open] = []
    key_next = False  # the next string is an object's key
    for match in _TOKEN.finditer(raw):
        token = match.group()
        top = stack[-1] if stack else None
        if token in (b"{", b"["):
            stack.append(_Open(top.child() if top else "", set() if token == b"{" else None))
            key_next = token == b"{"
        elif token in (b"}", b"]"):
            stack.pop()
            key_next = False
        elif token == b"," and top is not None:
            top.index += 1
            key_next = top.keys is not None
        elif key_next and top is not None and top.keys is not None:
            top.key = json.loads(token)
            if top.key in top.keys:
                return top.child(), raw.count(b"\n", 0, match.start()) + 1
            top.keys.add(top.key)
            key_next = False
    return None


def load_example(file: Path) -> Example:
    """One golden example file; ConfigError says what is wrong with it."""

    def bad(message: Text, line: int | None = None) -> ConfigError:
        return ConfigError([Problem(text=message, file=str(file), line=line)])

    try:
        raw = file.read_bytes()
        data = strictjson.loads(raw)
    except strictjson.DuplicateKey as exc:
        path, line = duplicated(raw) or (exc.path, None)
        raise bad(said("duplicate key %(key)r", key=path), line) from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise bad(said("not a readable JSON example: %(error)s", error=str(exc))) from exc
    if not isinstance(data, dict) or not isinstance(data.get("application"), dict):
        raise bad(said("an example needs an 'application' object"))
    if ("expected" in data) == ("expected_errors" in data):
        raise bad(said("give exactly one of 'expected' or 'expected_errors'"))
    for key in data:
        if key not in (*_TOP, *_MORE, *CASE_SECTIONS):
            hint = difflib.get_close_matches(key, (*_TOP, *_MORE, *CASE_SECTIONS), n=1)
            cases = ", ".join(CASE_SECTIONS)
            raise bad(
                said(
                    "unknown key %(key)r (did you mean %(hint)r?); sections with cases: %(cases)s",
                    key=key,
                    hint=hint[0],
                    cases=cases,
                )
                if hint
                else said(
                    "unknown key %(key)r; sections with cases: %(cases)s", key=key, cases=cases
                )
            )
    wanted = _expectations(data, "expected_errors", bad)
    headers = data.get("expected_headers")
    if headers is not None and not isinstance(headers, dict):
        raise bad(said("'expected_headers' must be an object (the request's @headers)"))
    return Example(
        file=file,
        description=str(data.get("description", "")),
        demo=bool(data.get("demo", False)),
        source=data.get("source"),
        application=data["application"],
        expected=data.get("expected"),
        expected_errors=wanted,
        expected_warnings=_expectations(data, "expected_warnings", bad),
        expected_headers=headers,
        cases=tuple(_cases(data, bad)),
    )


def _expectations(
    data: dict[str, Any], key: str, bad: Callable[[Text], ConfigError]
) -> Expectations | None:
    wanted = data.get(key)
    if wanted is not None and not (
        isinstance(wanted, list)
        and all(isinstance(w, dict) and isinstance(w.get("path"), str) for w in wanted)
    ):
        raise bad(said('%(key)r must be a list of {"path": …, "contains": …}', key=key))
    return wanted


def _cases(data: dict[str, Any], bad: Callable[[Text], ConfigError]) -> list[Case]:
    out: list[Case] = []
    for name in CASE_SECTIONS:
        raw = data.get(name)
        if raw is None:
            continue
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            where = f"{name}[{i}]" if isinstance(raw, list) else name
            if not isinstance(item, dict) or "input" not in item:
                raise bad(said("%(where)s: a case is an object with 'input'", where=where))
            if ("expected" in item) == ("expected_errors" in item):
                raise bad(
                    said(
                        "%(where)s: give exactly one of 'expected' or 'expected_errors'",
                        where=where,
                    )
                )
            extra = set(item) - {"input", "expected", "expected_errors", "expected_warnings"}
            if extra:
                raise bad(said("%(where)s: unknown key %(key)r", where=where, key=sorted(extra)[0]))
            out.append(
                Case(
                    section=name,
                    input=item["input"],
                    expected=item.get("expected"),
                    expected_errors=_expectations(item, "expected_errors", bad),
                    expected_warnings=_expectations(item, "expected_warnings", bad),
                )
            )
    return out


@dataclass(frozen=True)
class _Say:
    """How the differences are said: English (``gettext`` None) or through a cli catalogue."""

    gettext: Gettext | None

    def __call__(self, template: str, /, **values: Any) -> str:
        return said(template, **values).render(self.gettext)

    def problem(self, p: Problem) -> str:
        if self.gettext is None:
            return str(p)
        return p.shown(self.gettext, warning=Text(_WARNING).render(self.gettext))

    def sides(self) -> tuple[str, str]:
        """The names of a diff's two sides (``--- expected``, ``+++ mapped``)."""
        return self(_EXPECTED), self(_MAPPED)


_WARNING = N_("warning: ")
_EXPECTED, _MAPPED = N_("expected"), N_("mapped")


def check_example(
    mapping: CompiledMapping, example: Example, *, gettext: Gettext | None = None
) -> list[str]:
    """Differences between what the mapping does with the example and what the example expects:
    the request (and its headers and warnings), then every case of the other sections. With a
    ``gettext`` of the cli catalogues they are said in its language (English without one)."""
    say = _Say(gettext)
    out = _check_request(mapping, example, say)
    for case in example.cases:
        section: Section | None = getattr(mapping, case.section)
        if section is None:
            out.append(
                say(
                    N_("%(section)s: the mapping has no %(section)s: section"), section=case.section
                )
            )
            continue
        found = _check(
            section, case.input, case.expected, case.expected_errors, case.expected_warnings, say
        )
        out += [f"{case.section}: {line}" for line in found]
    return out


def _check_request(mapping: CompiledMapping, example: Example, say: _Say) -> list[str]:
    expected = example.expected
    if example.expected_headers is None or expected is None:
        return _check(
            mapping.request,
            example.application,
            expected,
            example.expected_errors,
            example.expected_warnings,
            say,
        )
    out = _check(mapping.request, example.application, None, None, example.expected_warnings, say)
    if out:  # the mapping failed: _check said how
        return out
    mapped, _ = mapping.request.apply_checked(example.application)
    headers = dict(mapped.pop(HEADERS_KEY, {}))
    if EXCHANGE_KEY in mapped:
        headers[EXCHANGE_KEY] = mapped.pop(EXCHANGE_KEY)
    if _normalise(headers) != _normalise(example.expected_headers):
        out.append("headers:\n" + diff_text(example.expected_headers, headers, names=say.sides()))
    if _normalise(mapped) != _normalise(expected):
        out.append(diff_text(expected, mapped, names=say.sides()))
    return out


def _check(
    section: Section,
    data: Any,
    expected: Any,
    errors: Expectations | None,
    warnings: Expectations | None,
    say: _Say,
) -> list[str]:
    """One section on one input: the output (``expected``, None: not compared) or the errors."""
    try:
        mapped, found = section.apply_checked(data)
    except MappingError as exc:
        if errors is None:
            return [
                say(N_("mapping failed: %(problem)s"), problem=say.problem(p)) for p in exc.problems
            ]
        return _match_errors(exc.problems, errors, say)
    if errors is not None:
        return [say(N_("expected errors %(errors)s, but the mapping succeeded"), errors=errors)]
    out = _match_errors(tuple(found), warnings, say, "warning") if warnings is not None else []
    if expected is not None and _normalise(mapped) != _normalise(expected):
        out.append(diff_text(expected, mapped, names=say.sides()))
    return out


# (error or warning) → what is said of one expected but not found, and of one found but not expected
_MISSED = {
    "error": N_("no error at %(path)r containing %(contains)r"),
    "warning": N_("no warning at %(path)r containing %(contains)r"),
}
_UNEXPECTED = {
    "error": N_("unexpected error: %(problem)s"),
    "warning": N_("unexpected warning: %(problem)s"),
}


def _match_errors(
    problems: tuple[Problem, ...], expected: list[dict[str, str]], say: _Say, what: str = "error"
) -> list[str]:
    # an expectation is matched against the English message, whatever the reader's language
    out = []
    for want in expected:
        if not any(
            p.path == want.get("path") and want.get("contains", "") in p.message for p in problems
        ):
            path, contains = want.get("path"), want.get("contains", "")
            out.append(say(_MISSED[what], path=path, contains=contains))
    wanted = {w.get("path") for w in expected}
    out += [
        say(_UNEXPECTED[what], problem=say.problem(p)) for p in problems if p.path not in wanted
    ]
    return out


def _normalise(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def diff_text(
    expected: Any, actual: Any, *, names: tuple[str, str] = ("expected", "mapped")
) -> str:
    """A readable unified diff of two JSON values, its sides named ``names``."""
    a = orjson.dumps(_normalise(expected), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    b = orjson.dumps(_normalise(actual), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    lines = difflib.unified_diff(
        a.decode().splitlines(), b.decode().splitlines(), *names, lineterm=""
    )
    return "\n".join(lines)


def dump(value: Any) -> str:
    return orjson.dumps(
        _normalise(value), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    ).decode()
