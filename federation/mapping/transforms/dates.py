"""Date and date-time steps: between the written forms partners use, and across time zones.

Each step is compiled, once, into a reader (the value as written → a ``date`` or an aware
``datetime``) and a writer (→ the target form), so mapping a value is two plain calls. The epoch forms
``epoch_s`` and ``epoch_ms`` read whole numbers (or their digits as text) and write integers; a time
written without an offset is wall-clock time in the step's ``zone`` (Asia/Shanghai unless the step
says otherwise), and a date-time is written in ``to_zone`` (else ``zone``).

Error messages describe the value's shape (``text shaped 99/99/9999``), never the value itself: a date
field is often a date of birth, which is personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from federation.config.yamlsrc import PathKey
from federation.domain.texts import N_, Text, said
from federation.mapping.domain import halfwidth
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    a_kind,
    arguments,
    as_text,
    step,
)

# Neither a mapping nor a partner declares a zone: a time without an offset is Beijing time unless
# the step names its own `zone` (Asia/Hong_Kong, Asia/Macau: UTC+8 today, not in every past year).
DEFAULT_ZONE = "Asia/Shanghai"
EPOCH_UNITS: dict[str, timedelta] = {
    "epoch_s": timedelta(seconds=1),
    "epoch_ms": timedelta(milliseconds=1),
}
# name → strptime/strftime pattern; None: read and written by code (ISO 8601, epoch numbers)
DATE_FORMATS: dict[str, str | None] = {
    "iso": "%Y-%m-%d",
    "YYYY-MM-DD": "%Y-%m-%d",
    "YYYYMMDD": "%Y%m%d",
    "DD/MM/YYYY": "%d/%m/%Y",
    "YYYY/MM/DD": "%Y/%m/%d",
    "YYYY年MM月DD日": "%Y年%m月%d日",
    "epoch_s": None,
    "epoch_ms": None,
}
DATETIME_FORMATS: dict[str, str | None] = {
    "iso": None,  # ISO 8601, with an offset or Z (without one: read in `zone`)
    "YYYY-MM-DD HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "YYYY-MM-DD HH:mm": "%Y-%m-%d %H:%M",
    "YYYY/MM/DD HH:mm:ss": "%Y/%m/%d %H:%M:%S",
    "YYYYMMDDHHmmss": "%Y%m%d%H%M%S",
    "DD/MM/YYYY HH:mm": "%d/%m/%Y %H:%M",
    "DD/MM/YYYY HH:mm:ss": "%d/%m/%Y %H:%M:%S",
    "YYYY-MM-DD": "%Y-%m-%d",  # date-only forms: midnight when read, the day in the zone when written
    "YYYYMMDD": "%Y%m%d",
    "DD/MM/YYYY": "%d/%m/%Y",
    "epoch_s": None,
    "epoch_ms": None,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_WHOLE = {
    "epoch_s": N_("%(value)s is not a whole number of seconds (form %(form)s)"),
    "epoch_ms": N_("%(value)s is not a whole number of milliseconds (form %(form)s)"),
}
# (a date or a date-time, whether its shape is the form's) → what is said of a value not in the form
_NOT_IN_FORM = {
    ("a date", False): N_("%(value)s is not a date in the form %(form)s"),
    ("a date", True): N_("%(value)s is not a date in the form %(form)s (no such day)"),
    ("a date-time", False): N_("%(value)s is not a date-time in the form %(form)s"),
    ("a date-time", True): N_(
        "%(value)s is not a date-time in the form %(form)s (no such day or time)"
    ),
}
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}")
# strptime takes 1-digit months and days, so "2024111" would parse (as 1 Nov): digit-only forms
# must have every digit.
_FIXED_WIDTH = {"YYYYMMDD": 8, "YYYYMMDDHHmmss": 14}
# Written out by str.format rather than strftime, which leaves years before 1000 unpadded on Linux.
_FIELDS = {
    "%Y": "{0.year:04d}",
    "%m": "{0.month:02d}",
    "%d": "{0.day:02d}",
    "%H": "{0.hour:02d}",
    "%M": "{0.minute:02d}",
    "%S": "{0.second:02d}",
}
_KEPT = frozenset("TZ年月日")  # letters that belong to date forms, not to whoever is named


def shape(value: Any) -> str:
    """What a value looks like, for an error message: digits as 9, letters as A, never the value."""
    return str(shaped(value))


def shaped(value: Any) -> Text:
    """:func:`shape` as a Text, said in the reader's language (the drawing itself kept)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return a_kind(value)
    text = str(value).strip()
    if not text:
        return said("empty text")
    drawn = "".join(
        "9" if c.isdigit() else "A" if c.isalpha() and c not in _KEPT else c for c in text[:40]
    ) + ("…" if len(text) > 40 else "")
    if isinstance(value, str):
        return said("text shaped %(drawn)s", drawn=drawn)
    return said("a number shaped %(drawn)s", drawn=drawn)


def _not_in_form(value: Any, src: str, pattern: str | None, what: str) -> TransformError:
    """The value is not in the form ``src``; if it has the form's shape, the date itself is wrong."""
    drawn = shaped(value)
    if isinstance(value, str) and _other_digits(value):
        return TransformError(
            said(
                "%(value)s is not in the form %(form)s: its digits are not 0-9",
                value=drawn,
                form=src,
            )
        )
    wrong = bool(pattern) and str(drawn).endswith(" " + re.sub("%[YmdHMS]", _nines, pattern or ""))
    return TransformError(Text(_NOT_IN_FORM[what, wrong], (("value", drawn), ("form", src))))


def _other_digits(text: str) -> bool:
    """Whether ``text`` has digits of another script than ASCII once full-width ones are read."""
    return any(c.isdigit() and not c.isascii() for c in halfwidth(text))


def _nines(match: re.Match[str]) -> str:
    return "9999" if match.group() == "%Y" else "99"


def _out_of_range(value: Any, src: str) -> TransformError:
    if src == "epoch_s" and len(str(value).strip().lstrip("+-")) >= 12:
        return TransformError(
            said("%(value)s is out of range (milliseconds given as epoch_s?)", value=shaped(value))
        )
    return TransformError(said("%(value)s is out of range", value=shaped(value)))


@cache
def _template(pattern: str) -> Callable[[date], str]:
    source = re.sub("%[YmdHMS]", lambda m: _FIELDS[m.group()], pattern)
    return source.format


def _fixed_width_ok(src: str, text: str) -> bool:
    width = _FIXED_WIDTH.get(src)
    return width is None or (len(text) == width and text.isascii() and text.isdigit())


def _whole_number(value: Any, src: str) -> int:
    """An epoch count from an integer, integral decimal or float, or digits as text."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE.fullmatch(text):
            return int(text)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value.adjusted() <= 20:
            return int(value)
        raise _out_of_range(value, src)
    elif type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    raise TransformError(Text(_NOT_WHOLE[src], (("value", shaped(value)), ("form", src))))


def _epoch_reader(src: str) -> Callable[[Any], datetime]:
    unit = EPOCH_UNITS[src]

    def read(value: Any) -> datetime:
        count = _whole_number(value, src)
        try:
            return _EPOCH + count * unit
        except OverflowError:
            raise _out_of_range(value, src) from None

    return read


def _epoch_writer(dst: str) -> Callable[[datetime], int]:
    unit = EPOCH_UNITS[dst]

    def write(moment: datetime) -> int:
        return (moment - _EPOCH) // unit  # whole units, rounded down (as Unix time is)

    return write


def _instant_reader(src: str, zone: ZoneInfo) -> Callable[[Any], datetime]:
    """Value → aware datetime; a time written without an offset is wall-clock time in ``zone``."""
    if src in EPOCH_UNITS:
        return _epoch_reader(src)
    pattern = DATETIME_FORMATS[src]

    def read(value: Any) -> datetime:
        text = as_text(value, "a date-time").strip()
        if not text.isascii():  # full-width digits, as an input method types them: read as IDs are
            text = halfwidth(text).strip()
        try:
            if not _fixed_width_ok(src, text):
                raise ValueError(src)
            dt = (
                datetime.fromisoformat(text)
                if pattern is None
                else datetime.strptime(text, pattern)
            )
        except ValueError:
            raise _not_in_form(value, src, pattern or "%Y-%m-%d", "a date-time") from None
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=zone)

    return read


def _iso_instant(moment: datetime) -> str:
    micro = moment.microsecond
    spec = "seconds" if not micro else "milliseconds" if not micro % 1000 else "microseconds"
    return moment.isoformat(timespec=spec)


def _instant_writer(dst: str) -> Callable[[datetime], Any]:
    if dst in EPOCH_UNITS:
        return _epoch_writer(dst)
    pattern = DATETIME_FORMATS[dst]
    return _iso_instant if pattern is None else _template(pattern)


def _date_reader(src: str, zone: ZoneInfo) -> Callable[[Any], date]:
    """Value → date; an epoch count is the day it falls on in ``zone``."""
    if src in EPOCH_UNITS:
        instant = _epoch_reader(src)

        def from_epoch(value: Any) -> date:
            try:
                return instant(value).astimezone(zone).date()
            except OverflowError:
                raise _out_of_range(value, src) from None

        return from_epoch
    pattern = DATE_FORMATS[src]
    assert pattern is not None
    padded = _padded(pattern)

    def read(value: Any) -> date:
        text = as_text(value, "a date").strip()
        if not text.isascii():  # full-width digits, as an input method types them: read as IDs are
            text = halfwidth(text).strip()
        try:
            if not _fixed_width_ok(src, text):
                raise ValueError(src)
            match = padded.fullmatch(text) if padded is not None else None
            if match is not None:  # the usual spelling, without strptime (a third of its cost)
                return date(int(match["Y"]), int(match["m"]), int(match["d"]))
            return datetime.strptime(text, pattern).date()
        except ValueError:
            raise _not_in_form(value, src, pattern, "a date") from None

    return read


_PADDED = {"%Y": "(?P<Y>[0-9]{4})", "%m": "(?P<m>[0-9]{2})", "%d": "(?P<d>[0-9]{2})"}


@cache
def _padded(pattern: str) -> re.Pattern[str] | None:
    """A date pattern's zero-padded ASCII spelling as a regex, compiled once: what it matches,
    strptime reads alike; strptime still reads the rest. None if the pattern has other fields."""
    if re.search("%[^Ymd]", pattern):
        return None
    parts = re.split("(%[Ymd])", pattern)
    return re.compile("".join(_PADDED.get(part, re.escape(part)) for part in parts))


def date_reader(src: str, zone: str = DEFAULT_ZONE) -> Callable[[Any], date]:
    """Value in the form ``src`` → date (TransformError describing its shape when it is not)."""
    return _date_reader(src, _zone(zone))


def _date_writer(dst: str, zone: ZoneInfo) -> Callable[[date], Any]:
    """Date → target form; to an epoch form, the moment the day starts in ``zone``."""
    if dst == "date":
        return _same
    if dst in EPOCH_UNITS:
        to_epoch = _epoch_writer(dst)
        return lambda d: to_epoch(datetime.combine(d, time(), zone))
    pattern = DATE_FORMATS[dst]
    assert pattern is not None
    return _template(pattern)


def _same(d: date) -> date:
    return d


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _zone_arg(ctx: Context, path: PathKey, name: Any) -> ZoneInfo | None:
    try:
        return _zone(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        ctx.reader.error(
            path, said("%(name)r is not a time zone name (e.g. Asia/Hong_Kong)", name=name)
        )
        return None


def _names_epoch(raw: Any) -> bool:
    given = raw if isinstance(raw, dict) else {}
    return any(isinstance(given.get(k), str) and given[k] in EPOCH_UNITS for k in ("from", "to"))


def _forms(
    ctx: Context, path: PathKey, raw: Any, optional: tuple[str, ...], formats: Mapping[str, Any]
) -> tuple[dict[str, Any], str, str] | None:
    """The step's arguments with its ``from`` and ``to`` forms, or None (problems recorded).

    Both forms are required, except that beside an epoch form the other may be left out and means
    ``iso``.
    """
    epoch = _names_epoch(raw)
    required = () if epoch else ("from", "to")
    extra = ("from", "to") if epoch else ()
    args = arguments(ctx, path, raw, required=required, optional=(*extra, *optional))
    if args is None:
        return None
    targets = {**formats, "date": None} if formats is DATE_FORMATS else formats
    src = ctx.reader.choice((*path, "from"), args.get("from", "iso"), formats)
    dst = ctx.reader.choice((*path, "to"), args.get("to", "iso"), targets)
    if src is None or dst is None:
        return None
    return args, src, dst


@step("date")
def _date(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):  # {date: YYYYMMDD}, as in a placeholder {born|date:YYYYMMDD}
        raw = {"from": "iso", "to": raw}
    # zone only means something beside an epoch form: elsewhere it is an unknown key
    zone_key = ("zone",) if _names_epoch(raw) else ()
    parsed = _forms(ctx, path, raw, zone_key, DATE_FORMATS)
    if parsed is None:
        return None
    args, src, dst = parsed
    zone = _zone_arg(ctx, (*path, "zone"), args.get("zone", DEFAULT_ZONE))
    if zone is None:
        return None
    read, write = _date_reader(src, zone), _date_writer(dst, zone)

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return write(v)
        return write(read(v))

    return run


@step("datetime")
def _datetime(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):
        raw = {"from": "iso", "to": raw}
    parsed = _forms(ctx, path, raw, ("zone", "to_zone"), DATETIME_FORMATS)
    if parsed is None:
        return None
    args, src, dst = parsed
    zone = _zone_arg(ctx, (*path, "zone"), args.get("zone", DEFAULT_ZONE))
    out_zone = _zone_arg(ctx, (*path, "to_zone"), args["to_zone"]) if "to_zone" in args else zone
    if zone is None or out_zone is None:
        return None
    read, write = _instant_reader(src, zone), _instant_writer(dst)

    def run(v: Any, w: list[str]) -> Any:
        moment = read(v)
        try:
            moment = moment.astimezone(out_zone)
        except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59-23:59 moved to +08:00
            raise _out_of_range(v, src) from None
        return write(moment)

    return run
