"""Reply rules: what a partner's answer means, declared in partners.yaml under ``reply:``.

A platform that answers every call with HTTP 200 and puts its yes or no in the body
(``{"code": 0, "msg": "ok", "data": {…}}``) declares where its code is and which codes mean what::

    reply:
      code: code                  # path of the business code in the reply body
      message: msg                # path of its message (optional)
      success: {code: [0]}        # the yes; a list of such mappings: every condition must hold
      permanent: [1001, "1100..1199", "/^E4\\d{2}$/"]   # codes that refuse for good
      transient: [5003, "5000..5999"]                   # codes worth retrying
      otherwise: unconfirmed      # any other answer: unconfirmed (default) | permanent | transient
      faults: {permanent: ["Client.*"], transient: ["Server.*"]}   # SOAP fault codes

A success condition is ``code: [codes]`` (the code at ``code:`` is one of them), ``status: [200,
201]`` (the HTTP status, 2xx only), ``path: P, exists: true|false`` (a value is, or is not, at
``P``) or ``path: P, in: [codes]``. Codes are listed as numbers or text (compared as text: ``0``
matches ``0`` and ``"0"``, never ``"00"``), ranges ``"LOW..HIGH"`` of whole numbers, or patterns
``"/regex/"`` (searched). Fault patterns are globs (``Client.*``) or ``/regex/``, matched without
case against the fault code with its namespace prefix stripped (and SOAP 1.2 subcodes).

A partner declares ``reply:`` once; a service item's ``reply:`` overrides it key by key. The rules
are parsed here into values; :mod:`adapters.replies` evaluates them against a reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fnmatch import translate
from typing import Any

from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.paths import PathSyntaxError, Segment, parse_path
from federation.domain.texts import said

OTHERWISE = ("unconfirmed", "permanent", "transient")
REPLY_KEYS = ("code", "message", "success", "permanent", "transient", "otherwise", "faults")
_RANGE = re.compile(r"(-?\d+)\s*\.\.\s*(-?\d+)")
_INTEGER = re.compile(r"-?\d+")


def code_text(value: Any) -> str | None:
    """A partner's code as text for matching (``0`` and ``"0"`` alike); None if it is no code."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value.is_finite() and value == int(value) else str(value)
    if isinstance(value, str):
        return value
    return None  # objects, lists, or nothing at all


@dataclass(frozen=True, kw_only=True)
class CodeSet:
    """Codes as listed: exact texts, whole-number ranges and patterns; ``shown`` as written."""

    exact: frozenset[str] = frozenset()
    ranges: tuple[tuple[int, int], ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    shown: tuple[str, ...] = ()

    def matches(self, code: str | None) -> bool:
        """Whether ``code`` (see :func:`code_text`) is one of these."""
        if code is None:
            return False
        if code in self.exact or any(p.search(code) for p in self.patterns):
            return True
        if self.ranges and _INTEGER.fullmatch(code.strip()):
            number = int(code)
            return any(low <= number <= high for low, high in self.ranges)
        return False

    def __bool__(self) -> bool:
        return bool(self.exact or self.ranges or self.patterns)


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One success condition; every field that is set must hold."""

    codes: CodeSet | None = None  # the code at the rules' ``code:`` path is one of these
    statuses: frozenset[int] | None = None  # the HTTP status is one of these
    path: tuple[Segment, ...] | None = None
    path_text: str | None = None
    exists: bool | None = None  # a value (not null) is at ``path``, or is not
    values: CodeSet | None = None  # the value at ``path`` is one of these


@dataclass(frozen=True, kw_only=True)
class FaultRules:
    """SOAP fault codes (prefix stripped, no case) that are permanent or transient."""

    permanent: tuple[re.Pattern[str], ...] = ()
    transient: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReplyRules:
    """A partner's (or service item's) reply rules, parsed."""

    code: tuple[Segment, ...] | None = None
    code_text: str | None = None  # the path as written, for messages
    message: tuple[Segment, ...] | None = None
    success: tuple[Condition, ...] = ()
    permanent: CodeSet = field(default_factory=CodeSet)
    transient: CodeSet = field(default_factory=CodeSet)
    otherwise: str = "unconfirmed"
    faults: FaultRules | None = None


def parse_reply(
    r: Reader, path: PathKey, raw: Any, base: ReplyRules | None, *, soap: bool
) -> ReplyRules | None:
    """The ``reply:`` under ``path``, each key falling back to ``base`` (the partner's rules)."""
    if raw is None:
        return base
    m = r.mapping(path, raw, optional=REPLY_KEYS)
    if m is None:
        return base
    values: dict[str, Any] = {}
    for key in ("code", "message"):
        if key in m and (parsed := _path(r, (*path, key), m[key])) is not None:
            values[key] = parsed
            if key == "code":
                values["code_text"] = str(m[key])
    if "success" in m:
        values["success"] = _success(r, (*path, "success"), m["success"])
    for key in ("permanent", "transient"):
        if key in m:
            values[key] = parse_codes(r, (*path, key), m[key])
    if "otherwise" in m:
        values["otherwise"] = r.choice((*path, "otherwise"), m["otherwise"], OTHERWISE)
    if "faults" in m:
        values["faults"] = _faults(r, (*path, "faults"), m["faults"])
        if not soap:
            r.warn(
                (*path, "faults"),
                said("SOAP fault rules do nothing for a partner that is not SOAP"),
            )
    rules = replace(base or ReplyRules(), **{k: v for k, v in values.items() if v is not None})
    _check(r, path, rules, said_success="success" in m)
    return rules


def _check(r: Reader, path: PathKey, rules: ReplyRules, *, said_success: bool) -> None:
    """What the rules need as a whole: a yes, and a code path for anything about codes."""
    if not rules.success and not said_success:  # a wrong success: is reported where it is wrong
        r.error(
            path, said("reply rules need 'success:' (the answer that means the partner said yes)")
        )
    needs_code = rules.permanent or rules.transient or any(c.codes for c in rules.success)
    if needs_code and rules.code is None:
        r.error(path, said("codes are listed but 'code:' (where the partner's code is) is missing"))
    for cond in rules.success:
        for code in sorted(cond.codes.exact if cond.codes else ()):
            for kind in ("permanent", "transient"):
                if getattr(rules, kind).matches(code):
                    r.error(
                        path,
                        said(
                            "success code %(code)r is listed as %(kind)s too", code=code, kind=kind
                        ),
                    )


def _path(r: Reader, path: PathKey, raw: Any) -> tuple[Segment, ...] | None:
    text = r.text(path, raw)
    if text is None:
        return None
    try:
        return parse_path(text)
    except PathSyntaxError as exc:
        r.error(path, said("bad path: %(error)s", error=exc.text))
        return None


def _success(r: Reader, path: PathKey, raw: Any) -> tuple[Condition, ...] | None:
    """A condition mapping, or a list of them (all must hold)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        r.error(path, said("lists no condition"))
        return None
    out = []
    for i, item in enumerate(items):
        cond = _condition(r, (*path, i) if isinstance(raw, list) else path, item)
        if cond is not None:
            out.append(cond)
    return tuple(out) if len(out) == len(items) else None


def _condition(r: Reader, path: PathKey, raw: Any) -> Condition | None:
    m = r.mapping(path, raw, optional=("code", "status", "path", "exists", "in"))
    if m is None:
        return None
    if not m:
        r.error(path, said("an empty condition: say code:, status:, or path: with exists: or in:"))
        return None
    cond = Condition()
    if "code" in m:
        cond = replace(cond, codes=parse_codes(r, (*path, "code"), m["code"]))
    if "status" in m:
        cond = replace(cond, statuses=_statuses(r, (*path, "status"), m["status"]))
    if ("path" in m) != ("exists" in m or "in" in m) or ("exists" in m and "in" in m):
        r.error(path, said("'path:' goes with exactly one of 'exists:' or 'in:'"))
        return None
    if "path" in m:
        where = _path(r, (*path, "path"), m["path"])
        cond = replace(cond, path=where, path_text=str(m["path"]))
        if "exists" in m:
            cond = replace(cond, exists=r.boolean((*path, "exists"), m["exists"]))
        else:
            cond = replace(cond, values=parse_codes(r, (*path, "in"), m["in"]))
    return cond


def _statuses(r: Reader, path: PathKey, raw: Any) -> frozenset[int]:
    out = set()
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        at = (*path, i) if isinstance(raw, list) else path
        status = r.integer(at, item, low=100, high=599)
        if status is not None and not 200 <= status < 300:
            r.error(
                at,
                said(
                    "%(status)s is no success status: only 2xx answers can be a yes", status=status
                ),
            )
        elif status is not None:
            out.add(status)
    return frozenset(out)


def parse_codes(r: Reader, path: PathKey, raw: Any) -> CodeSet:
    """A code, or a list of codes, ranges ``"LOW..HIGH"`` and patterns ``"/regex/"``."""
    exact: set[str] = set()
    ranges: list[tuple[int, int]] = []
    patterns: list[re.Pattern[str]] = []
    shown: list[str] = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        at = (*path, i) if isinstance(raw, list) else path
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            r.error(
                at,
                said("expected a code (a whole number or text), a range 'LOW..HIGH' or '/regex/'"),
            )
            continue
        text = str(item)
        if isinstance(item, str) and len(text) >= 2 and text[0] == text[-1] == "/":
            if (pattern := _regex(r, at, text[1:-1], 0)) is not None:
                patterns.append(pattern)
        elif isinstance(item, str) and (bounds := _RANGE.fullmatch(text.strip())):
            low, high = int(bounds.group(1)), int(bounds.group(2))
            if low > high:
                r.error(
                    at,
                    said("range %(text)r is empty (its low end is above its high end)", text=text),
                )
                continue
            ranges.append((low, high))
        elif not text.strip():
            r.error(at, said("must not be empty"))
            continue
        else:
            exact.add(text)
        shown.append(text)
    return CodeSet(
        exact=frozenset(exact), ranges=tuple(ranges), patterns=tuple(patterns), shown=tuple(shown)
    )


def _faults(r: Reader, path: PathKey, raw: Any) -> FaultRules | None:
    m = r.mapping(path, raw, optional=("permanent", "transient"))
    if m is None:
        return None
    found: dict[str, tuple[re.Pattern[str], ...]] = {}
    for kind in ("permanent", "transient"):
        out = []
        for i, item in enumerate(r.items((*path, kind), m.get(kind, []))):
            text = r.text((*path, kind, i), item)
            if text is None:
                continue
            source = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "/" else None
            if source is None:
                source = r"\A" + translate(text)  # a glob (Client.*): the whole code
            if (pattern := _regex(r, (*path, kind, i), source, re.IGNORECASE)) is not None:
                out.append(pattern)
        found[kind] = tuple(out)
    return FaultRules(**found)


def _regex(r: Reader, path: PathKey, source: str, flags: int) -> re.Pattern[str] | None:
    try:
        return re.compile(source, flags)
    except re.error as exc:
        r.error(path, said("bad pattern: %(error)s", error=str(exc)))
        return None


def with_rules(services: Mapping[str, Any], rules: ReplyRules | None) -> dict[str, Any]:
    """Service items that declare no rules of their own, given ``rules`` (the system's)."""
    return {
        code: svc if svc.reply is not None or rules is None else replace(svc, reply=rules)
        for code, svc in services.items()
    }
