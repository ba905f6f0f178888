"""XML Schema simple types read from a WSDL's schema, each turned into a check of a value's text
that is True only where libxml2 surely agrees (for :mod:`adapters.facetcheck`).

Each built-in is read in a conservative ASCII lexical form; every facet of every derivation step
applies. A type, facet or spelling not judged exactly raises :class:`Unknown`, and the values of
that type then go to libxml2. Why each rule is as narrow as it is:

* integers: ``0`` or ``-?[1-9][0-9]*`` with at most 18 digits, the form the compiled writer gives an
  integer, so an enumeration compares the same whether libxml2 compares values or spellings (its
  literals must be in that form too) and no digit count reaches libxml2's own limits;
* xs:decimal: ASCII digits, at most 18, a fraction only after a digit; totalDigits and
  fractionDigits count the digits as written, trailing and leading zeros included, never fewer than
  libxml2 counts; ``-0`` is left to libxml2 (how it orders a negative zero against a bound is not
  worth knowing here);
* xs:date and xs:dateTime: four-digit years 0002–9998 (a time zone cannot carry them out of range),
  real calendar days, hours 00–23 (no ``24:00:00``), no leap second, time zones up to ±14:00;
  no facets;
* xs:string: white space kept; lengths in characters; enumerations exact; patterns only as
  :mod:`adapters.xsdregex` translates them, and not on values over 512 characters;
* xs:anyURI: a plain ``scheme://host[:port]/path`` of unreserved characters, no facets (libxml2
  reads a URI with its RFC 3986 parser; this form is a subset of what that parser takes);
* xs:boolean: ``true``, ``false``, ``1``, ``0``; no facets.

No value has white space to collapse: the writer never puts it around a number or a date, and a
value that has it is left to libxml2.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable
from decimal import Decimal

from lxml import etree  # type: ignore[import-untyped]

from adapters.xsdregex import compile_pattern
from adapters.xsdtypes import INTEGER_TYPES

XS = "http://www.w3.org/2001/XMLSchema"
Check = Callable[[str], bool]
MAX_DEPTH = 32
_MAX_PATTERN_TEXT = 512  # longer values are left to libxml2 (backtracking stays bounded)
_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"-?([0-9]{1,18})(?:\.([0-9]{1,18}))?")
LENGTH = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"[+-]?[0-9]{1,30}(?:\.[0-9]{1,30})?")
_TZ = r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?"
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})" + _TZ)
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    + _TZ
)
# Years 1000–8999 and days 01–28 (in every month): a full match alone means a valid date.
_EARLY = r"[1-8][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
_QUICK = {
    "date": re.compile(_EARLY + _TZ),
    "dateTime": re.compile(
        _EARLY + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?" + _TZ
    ),
}
# xs:anyURI: libxml2 accepts what its RFC 3986 parser reads; this is a plain subset of that
# (scheme, host, optional port, path of unreserved characters: no query, fragment or escapes).
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]{0,30}://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]{0,200}){0,30}"
)
_INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "long": (-(2**63), 2**63 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
}


def ANY(text: str) -> bool:
    """xs:string without facets: any text the writer could put in XML is valid."""
    return True


def _never(text: str) -> bool:
    """What a :class:`Quick` check's expression does not match is left to libxml2."""
    return False


class Unknown(Exception):
    """Something this module does not judge exactly: the element (or body) goes to lxml."""


class SchemaIndex:
    """The named types and global elements of one schema, and how it qualifies local elements."""

    def __init__(self, schema: etree._Element) -> None:
        self.tns = schema.get("targetNamespace", "")
        self.qualified = schema.get("elementFormDefault") == "qualified"
        self.simple: dict[str, etree._Element] = {}
        self.complex: dict[str, etree._Element] = {}
        self.elements: dict[str, etree._Element] = {}
        for el in schema:
            name = el.get("name")
            if el.tag == f"{{{XS}}}simpleType" and name:
                self.simple[name] = el
            elif el.tag == f"{{{XS}}}complexType" and name:
                self.complex[name] = el
            elif el.tag == f"{{{XS}}}element" and name:
                self.elements[name] = el

    def ref(self, el: etree._Element, value: str) -> tuple[str, str]:
        """The (namespace, local name) a QName attribute value of ``el`` names."""
        prefix, _, local = value.rpartition(":")
        ns = el.nsmap.get(prefix or None)
        if ns is None and prefix:
            raise Unknown("an undeclared prefix")
        return ns or "", local


def children(el: etree._Element) -> list[etree._Element]:
    """``el``'s schema children, annotations and comments left out."""
    return [c for c in el if isinstance(c.tag, str) and c.tag != f"{{{XS}}}annotation"]


def simple_type(
    index: SchemaIndex, definition: etree._Element | str, depth: int
) -> tuple[str, Check]:
    """A simple type's built-in base and its check, facets of every derivation step included."""
    steps: list[etree._Element] = []
    while not isinstance(definition, str):
        if definition.tag != f"{{{XS}}}simpleType" or depth > MAX_DEPTH:
            raise Unknown("not a simple type")
        parts = children(definition)
        if len(parts) != 1 or parts[0].tag != f"{{{XS}}}restriction":
            raise Unknown("a list or a union")
        restriction = parts[0]
        steps.append(restriction)
        base = restriction.get("base")
        if base is None:
            raise Unknown("an inline base type")
        ns, local = index.ref(restriction, base)
        if ns == XS:
            definition = local
        elif ns == index.tns and local in index.simple:
            definition = index.simple[local]
        else:
            raise Unknown("a base type from elsewhere")
        depth += 1
    facets = [f for step in steps for f in children(step)]
    builder = _BUILDERS.get(definition) or (_integer if definition in INTEGER_TYPES else None)
    if builder is None:
        raise Unknown("a built-in type not judged here")
    return definition, builder(definition, facets, steps)


_Builder = Callable[[str, list[etree._Element], list[etree._Element]], Check]


def _facet(el: etree._Element) -> tuple[str, str]:
    value = el.get("value")
    if value is None or not el.tag.startswith(f"{{{XS}}}"):
        raise Unknown("a facet without a value")
    return etree.QName(el).localname, value


def _string(_: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    """xs:string and its restrictions: white space kept, lengths in characters."""
    low, high = 0, None
    enumerations: list[frozenset[str]] = []
    patterns: list[list[re.Pattern[str]]] = []
    for step in steps:
        values = [v for name, v in map(_facet, children(step)) if name == "enumeration"]
        if values:
            enumerations.append(frozenset(values))
        found = [compile_pattern(v) for n, v in map(_facet, children(step)) if n == "pattern"]
        if None in found:
            raise Unknown("a pattern not translated")
        if found:
            patterns.append([p for p in found if p is not None])
    for name, value in map(_facet, facets):
        if name in ("length", "minLength", "maxLength"):
            if not LENGTH.fullmatch(value):
                raise Unknown("a length not written plainly")
            if name != "maxLength":
                low = max(low, int(value))
            if name != "minLength":
                high = int(value) if high is None else min(high, int(value))
        elif not (
            name in ("enumeration", "pattern") or (name, value) == ("whiteSpace", "preserve")
        ):
            raise Unknown(f"the facet {name} on a string")

    if not enumerations and not patterns:
        return ANY if low == 0 and high is None else Lengths(low, high)
    one_pattern = len(patterns) == 1 and len(patterns[0]) == 1
    if one_pattern and not enumerations and low == 0 and high is None:
        return Quick(patterns[0][0], _never, _MAX_PATTERN_TEXT)

    def check(text: str) -> bool:
        n = len(text)
        if n < low or (high is not None and n > high):
            return False
        if any(text not in allowed for allowed in enumerations):
            return False
        if patterns and n > _MAX_PATTERN_TEXT:
            return False
        return all(any(p.fullmatch(text) for p in level) for level in patterns)

    return _enumerated(enumerations, check)


def _enumerated(enumerations: list[frozenset[str]], check: Check) -> Check:
    """With enumerations, the literals in all of them that pass ``check``: a set that holds
    exactly the valid texts (found once, here, rather than for every value)."""
    if not enumerations:
        return check
    return Enumeration(frozenset(v for v in frozenset.intersection(*enumerations) if check(v)))


class Lengths:
    """A string type with length facets only (the common case, which the generated check of
    :mod:`adapters.facetcheck` writes inline)."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int | None) -> None:
        self.low = low
        self.high = sys.maxsize if high is None else high

    def __call__(self, text: str) -> bool:
        return self.low <= len(text) <= self.high


class Quick:
    """A check whose regular expression, fully matched by a text of at most ``limit``
    characters, alone means valid; ``check`` decides the rest (inlined, as :class:`Lengths`)."""

    __slots__ = ("check", "limit", "pattern")

    def __init__(self, pattern: re.Pattern[str], check: Check, limit: int = sys.maxsize) -> None:
        self.pattern = pattern
        self.check = check
        self.limit = limit

    def __call__(self, text: str) -> bool:
        quick = len(text) <= self.limit and self.pattern.fullmatch(text) is not None
        return quick or self.check(text)


class Enumeration:
    """A type whose valid texts are a set known in advance (inlined, as :class:`Lengths`)."""

    __slots__ = ("values",)

    def __init__(self, values: frozenset[str]) -> None:
        self.values = values

    def __call__(self, text: str) -> bool:
        return text in self.values


def _bounds(facets: list[etree._Element], allowed: frozenset[str]) -> dict[str, list[Decimal]]:
    """Numeric facets by name, each value read exactly; any facet outside ``allowed`` is unknown."""
    out: dict[str, list[Decimal]] = {}
    for name, value in map(_facet, facets):
        if name == "whiteSpace" and value == "collapse":
            continue
        if name not in allowed or not _NUMBER.fullmatch(value):
            raise Unknown(f"the facet {name}, or a value not written plainly")
        out.setdefault(name, []).append(Decimal(value))
    return out


def _within(bounds: dict[str, list[Decimal]]) -> Callable[[Decimal | int], bool]:
    """Whether a number lies within every bound (each kind reduced to its tightest once)."""
    low = max(bounds.get("minInclusive", []), default=None)
    above = max(bounds.get("minExclusive", []), default=None)
    high = min(bounds.get("maxInclusive", []), default=None)
    below = min(bounds.get("maxExclusive", []), default=None)

    def within(n: Decimal | int) -> bool:
        return (
            (low is None or n >= low)
            and (above is None or n > above)
            and (high is None or n <= high)
            and (below is None or n < below)
        )

    return within


def _nonnegative_within(bounds: dict[str, list[Decimal]]) -> bool:
    """Whether every number >= 0 lies within the bounds (no upper bound, lower ones below 0)."""
    return (
        not bounds.get("maxInclusive")
        and not bounds.get("maxExclusive")
        and all(b <= 0 for b in bounds.get("minInclusive", []))
        and all(b < 0 for b in bounds.get("minExclusive", []))
    )


_RANGE_FACETS = frozenset({"minInclusive", "maxInclusive", "minExclusive", "maxExclusive"})
_DIGIT_FACETS = frozenset({"totalDigits", "fractionDigits"})


def _integer(base: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    """The integer types in canonical form (no sign but ``-``, no leading zero): an enumeration
    then compares the same whether libxml2 compares values or spellings."""
    bounds = _bounds(facets, _RANGE_FACETS | _DIGIT_FACETS | {"enumeration"})
    low, high = _INT_RANGES.get(base, (None, None))
    if low is not None:
        bounds.setdefault("minInclusive", []).append(Decimal(low))
    if high is not None:
        bounds.setdefault("maxInclusive", []).append(Decimal(high))
    enumerations = []
    for step in steps:
        values = [v for name, v in map(_facet, children(step)) if name == "enumeration"]
        if values and not all(_INT.fullmatch(v) for v in values):
            raise Unknown("an enumeration not in canonical form")
        if values:
            enumerations.append(frozenset(values))
    total = int(min(bounds.get("totalDigits", [Decimal(18)])))
    within = _within(bounds)

    def check(text: str) -> bool:
        if _INT.fullmatch(text) is None or len(text.lstrip("-")) > total:
            return False
        return within(int(text))

    return _enumerated(enumerations, check)


def _decimal(_: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    """xs:decimal: digits counted as written (trailing zeros too), so never fewer than libxml2's."""
    bounds = _bounds(facets, _RANGE_FACETS | _DIGIT_FACETS)
    total = int(min(bounds.get("totalDigits", [Decimal(18)])))
    fraction = int(min(bounds.get("fractionDigits", [Decimal(18)])))
    within = _within(bounds)
    nonnegative = _nonnegative_within(bounds)

    def check(text: str) -> bool:
        m = _DECIMAL.fullmatch(text)
        if m is None:
            return False
        whole, part = m.group(1), m.group(2) or ""
        if len(whole) + len(part) > total or len(part) > fraction:
            return False
        if text[0] != "-":
            return nonnegative or within(Decimal(text))
        n = Decimal(text)
        return n != 0 and within(n)

    # Non-negative, whole and fraction digits each within bounds that keep the total too.
    fraction_ = min(fraction, total)
    whole = min(total - fraction_, 18)
    if not nonnegative or whole < 1:
        return check
    quick = f"[0-9]{{1,{whole}}}" + (f"(?:\\.[0-9]{{1,{fraction_}}})?" if fraction_ else "")
    return Quick(re.compile(quick), check)


def _temporal(base: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    """xs:date and xs:dateTime in four-digit years 0002–9998, on the Gregorian calendar."""
    if any(_facet(f) != ("whiteSpace", "collapse") for f in facets):
        raise Unknown("facets on a date")
    pattern = _DATE if base == "date" else _DATETIME

    def check(text: str) -> bool:
        m = pattern.fullmatch(text)
        if m is None:
            return False
        year, month, day = m.group(1, 2, 3)
        if not "0002" <= year <= "9998":  # no year a time zone could carry out of 0001–9999
            return False
        if "01" <= day <= "28" and "01" <= month <= "12":  # in every month: no calendar needed
            return True
        try:
            return dt.date(int(year), int(month), int(day)) is not None
        except ValueError:
            return False

    return Quick(_QUICK[base], check)


def _boolean(_: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    if any(_facet(f) != ("whiteSpace", "collapse") for f in facets):
        raise Unknown("facets on a boolean")
    return lambda text: text in ("true", "false", "1", "0")


def _uri(_: str, facets: list[etree._Element], steps: list[etree._Element]) -> Check:
    """xs:anyURI in :data:`_URI`'s form; no facets (their lengths count differently)."""
    if any(_facet(f) != ("whiteSpace", "collapse") for f in facets):
        raise Unknown("facets on a URI")
    return Quick(_URI, _never)


_BUILDERS: dict[str, _Builder] = {
    "anyURI": _uri,
    "string": _string,
    "decimal": _decimal,
    "date": _temporal,
    "dateTime": _temporal,
    "boolean": _boolean,
}
