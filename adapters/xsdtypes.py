"""XML Schema built-in simple types: checking a mapped value and writing it as XML text, and back.

zeep's own conversion is lenient (an ``xs:int`` element takes ``"twelve"``, an ``xs:date`` takes any
string, ``xs:boolean`` turns ``"no"`` into ``true``): a partner would refuse such a request with a
Client fault, after the round trip. These converters check the lexical space of each built-in type
before anything is sent. Facets (patterns, enumerations, lengths) are not checked: zeep does not keep
them, and the partner's own validation still applies.

Writers turn a payload value into text (``str``, ``int``, ``Decimal``, ``date``… as fits the type);
readers turn a reply's text into a JSON-ready value (numbers as ``int``, decimals, dates and times as
their strings, never ``float`` for a decimal). Both raise :class:`BadValue` with a short reason,
kept as a template and its values so that ``tongban check`` can say it in the reader's language.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from federation.domain.texts import N_, Text, said


class BadValue(ValueError):
    """A value outside the lexical or value space of its XML Schema type; ``text`` is the
    reason as a template and its values (``str(exc)`` is the English)."""

    def __init__(self, reason: Text | str) -> None:
        super().__init__(str(reason))
        self.text = reason


# Reasons several types give (marked for the cli catalogues; a Text is made only when a value fails)
_EXPECTED = N_("expected %(type)s, got %(kind)s")
_NOT = N_("%(kind)s is not %(type)s")
_OUTSIDE = N_("%(kind)s is outside the range of %(type)s")


Writer = Callable[[Any], str]
Reader = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class SimpleType:
    name: str  # the built-in's name, for messages: "xs:int"
    write: Writer
    read: Reader


_TZ = r"(?:Z|[+-]\d{2}:\d{2})?"
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# A decimal that str(Decimal(text)) gives back unchanged: ASCII digits, no sign but "-", no
# leading zeros, not so small that Decimal writes an exponent (under 1e-6). Read as written, at
# under half the cost (0.51 -> 0.22 us); any other spelling goes through Decimal as before.
_PLAIN_DECIMAL = re.compile(r"-?(?:[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.[0-9]{1,6})?)")
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?INF|NaN")
# Months, days and clock fields are range-checked by the patterns; only days 29-31 need a calendar.
_YMD = r"(-?\d{4,})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_HMS = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
_DATE = re.compile(_YMD + _TZ)
_DATETIME = re.compile(_YMD + "T" + _HMS + _TZ)
# Days 01-28 exist in every month: such dates need no calendar (the common, fast case).
_YMD_EARLY = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])"
_EARLY_DATE = re.compile(_YMD_EARLY + _TZ)
_EARLY_DATETIME = re.compile(_YMD_EARLY + "T" + _HMS + _TZ)
_TIME = re.compile(_HMS + _TZ)
_PATTERNS = {
    "gYear": re.compile(r"-?\d{4,}" + _TZ),
    "gYearMonth": re.compile(r"-?\d{4,}-(?:0[1-9]|1[0-2])" + _TZ),
    "gMonthDay": re.compile(r"--(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])" + _TZ),
    "gDay": re.compile(r"---(?:0[1-9]|[12]\d|3[01])" + _TZ),
    "gMonth": re.compile(r"--(?:0[1-9]|1[0-2])" + _TZ),
    "duration": re.compile(
        r"-?P(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?"
    ),
    "hexBinary": re.compile(r"(?:[0-9A-Fa-f]{2})*"),
}
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "nonNegativeInteger": (0, None),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
    "positiveInteger": (1, None),
}
INTEGER_TYPES = frozenset(_INT_RANGES)


def escape(text: str) -> str:
    """``text`` as XML character data; BadValue if it holds a character XML cannot carry."""
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise BadValue(
            said("contains U+%(code)s, which XML cannot carry", code=f"{ord(bad.group()):04X}")
        )
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = text.replace("\r", "&#13;")
    return text


def _kind(value: Any) -> Text | str:
    if isinstance(value, bool):
        return said("a boolean (%(value)s)", value=str(value).lower())
    if isinstance(value, dict):
        return said("a mapping")
    if isinstance(value, list | tuple):
        return said("a list")
    if isinstance(value, str):
        return f"{value[:40]!r}"
    return f"{type(value).__name__} {value!r}"[:60]


def _string_write(value: Any) -> str:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise BadValue(said("expected text, got %(kind)s", kind=_kind(value)))


def _string_read(text: str) -> str:
    return text


def _integer(name: str) -> SimpleType:
    low, high = _INT_RANGES[name]
    label = f"xs:{name}"

    def check(n: int, shown: Any) -> str:
        if (low is not None and n < low) or (high is not None and n > high):
            raise BadValue(said(_OUTSIDE, kind=_kind(shown), type=label))
        return str(n)

    def write(value: Any) -> str:
        if isinstance(value, bool):
            raise BadValue(said(_EXPECTED, type=label, kind=_kind(value)))
        if isinstance(value, int):
            return check(value, value)
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return check(int(value), value)
        if isinstance(value, Decimal | float) and math.isfinite(value) and value == int(value):
            return check(int(value), value)
        raise BadValue(said(_EXPECTED, type=label, kind=_kind(value)))

    def read(text: str) -> int:
        if not _INTEGER.fullmatch(text.strip()):
            raise BadValue(said(_NOT, kind=_kind(text), type=label))
        n = int(text)
        check(n, text)
        return n

    return SimpleType(label, write, read)


def _decimal_write(value: Any) -> str:
    if isinstance(value, bool):
        raise BadValue(said(_EXPECTED, type="xs:decimal", kind=_kind(value)))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return value.strip()
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    raise BadValue(said(_EXPECTED, type="xs:decimal", kind=_kind(value)))


def _decimal_read(text: str) -> str:
    if _PLAIN_DECIMAL.fullmatch(text) is not None:
        return text
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        raise BadValue(said(_NOT, kind=_kind(text), type="xs:decimal"))
    try:
        return str(Decimal(text))  # a string: JSON has no decimal, and float would round
    except InvalidOperation:
        raise BadValue(said(_NOT, kind=_kind(text), type="xs:decimal")) from None


def _float_write(value: Any) -> str:
    if isinstance(value, float):
        return (
            "NaN"
            if math.isnan(value)
            else ("INF" if value > 0 else "-INF")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return value.strip()
    raise BadValue(said(_EXPECTED, type="xs:double", kind=_kind(value)))


def _float_read(text: str) -> float | str:
    text = text.strip()
    if not _FLOAT.fullmatch(text):
        raise BadValue(said(_NOT, kind=_kind(text), type="xs:double"))
    number = float(text.replace("INF", "inf"))
    return number if math.isfinite(number) else text  # JSON cannot carry INF or NaN


def _boolean_write(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value in (0, 1):
        return "true" if value else "false"
    if isinstance(value, str) and value.strip() in ("true", "false", "1", "0"):
        return value.strip()
    raise BadValue(said("expected xs:boolean (true or false), got %(kind)s", kind=_kind(value)))


def _boolean_read(text: str) -> bool:
    text = text.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise BadValue(said(_NOT, kind=_kind(text), type="xs:boolean"))


def _calendar_ok(m: re.Match[str] | None) -> bool:
    if m is None:
        return False
    day = int(m.group(3))
    year = int(m.group(1))
    if day <= 28 or not 1 <= year <= 9999:  # outside Python's calendar: the pattern is all we have
        return True
    try:
        dt.date(year, int(m.group(2)), day)
    except ValueError:
        return False
    return True


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: pattern.fullmatch(text) is not None


def _date_ok(text: str) -> bool:
    return _EARLY_DATE.fullmatch(text) is not None or _calendar_ok(_DATE.fullmatch(text))


def _datetime_ok(text: str) -> bool:
    return _EARLY_DATETIME.fullmatch(text) is not None or _calendar_ok(_DATETIME.fullmatch(text))


_VALID: dict[str, Callable[[str], bool]] = {
    "date": _date_ok,
    "dateTime": _datetime_ok,
    "time": lambda text: _TIME.fullmatch(text) is not None,
    **{n: _matches(p) for n, p in _PATTERNS.items()},
}


def _temporal(name: str) -> SimpleType:
    label = f"xs:{name}"
    valid = _VALID[name]
    native: type[Any] | None = {"dateTime": dt.datetime, "date": dt.date, "time": dt.time}.get(name)

    def write(value: Any) -> str:
        if type(value) is str and valid(value):
            return value
        if native is not None and isinstance(value, native):
            if name == "date" and isinstance(value, dt.datetime):
                raise BadValue(said("expected %(type)s, got a date and time", type=label))
            return str(value.isoformat())
        if isinstance(value, str):
            if valid(value):
                return value
            if valid(value.strip()):
                return value.strip()
        raise BadValue(said(_EXPECTED, type=label, kind=_kind(value)))

    def read(text: str) -> str:
        if valid(text):
            return text
        text = text.strip()
        if not valid(text):
            raise BadValue(said(_NOT, kind=_kind(text), type=label))
        return text

    return SimpleType(label, write, read)


def _base64_write(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadValue(said(_NOT, kind=_kind(value), type="xs:base64Binary")) from None
        return value
    raise BadValue(said(_EXPECTED, type="xs:base64Binary", kind=_kind(value)))


def _hex_write(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex().upper()
    if isinstance(value, str) and _PATTERNS["hexBinary"].fullmatch(value):
        return value
    raise BadValue(said(_EXPECTED, type="xs:hexBinary", kind=_kind(value)))


STRING = SimpleType("xs:string", _string_write, _string_read)
_TYPES: dict[str, SimpleType] = {
    "string": STRING,
    "boolean": SimpleType("xs:boolean", _boolean_write, _boolean_read),
    "decimal": SimpleType("xs:decimal", _decimal_write, _decimal_read),
    "float": SimpleType("xs:float", _float_write, _float_read),
    "double": SimpleType("xs:double", _float_write, _float_read),
    "base64Binary": SimpleType("xs:base64Binary", _base64_write, _string_read),
    "hexBinary": SimpleType("xs:hexBinary", _hex_write, _string_read),
    **{n: _integer(n) for n in _INT_RANGES},
    **{
        n: _temporal(n)
        for n in ("date", "dateTime", "time", "gYear", "gYearMonth", "gMonthDay", "gDay", "gMonth")
    },
    "duration": _temporal("duration"),
}


def builtin(local_name: str) -> SimpleType | None:
    """The converter for the XML Schema built-in ``local_name`` (``"int"``), if it has its own.

    Built-ins derived from xs:string (token, anyURI, NCName…) return None: treat them as text.
    """
    return _TYPES.get(local_name)
