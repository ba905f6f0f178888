"""Transforms: the steps a value can pass through on its way to the target field.

Each step is written in a mapping as a name (``upper``) or a name with arguments
(``{date: {from: iso, to: DD/MM/YYYY}}``). At load time a factory checks the arguments (every mistake
becomes a Problem with file:line) and returns a plain function ``step(value, warnings) -> value``;
at mapping time a step raises :class:`TransformError` with a precise message, or appends to
``warnings`` for values that are odd but acceptable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.mapping import domain
from federation.mapping.tables import CodeTable

Step = Callable[[Any, list[str]], Any]


class TransformError(ValueError):
    """A value could not pass a step; the message says why (never the whole personal value)."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """What step factories may consult while a mapping loads."""

    reader: Reader
    tables: Mapping[str, CodeTable]
    allow: Mapping[str, frozenset[str]]
    is_name: bool  # the field carries a person's name: no script conversion
    unloaded: frozenset[str] = frozenset()  # declared tables whose file failed (already reported)


Factory = Callable[[Any, Context, PathKey], Step | None]
REGISTRY: dict[str, Factory] = {}


def step(name: str) -> Callable[[Factory], Factory]:
    def register(factory: Factory) -> Factory:
        REGISTRY[name] = factory
        return factory

    return register


def _args(
    ctx: Context,
    path: PathKey,
    raw: Any,
    *,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    if raw is None:
        raw = {}
    return ctx.reader.mapping(path, raw, required=required, optional=optional)


def _no_args(ctx: Context, path: PathKey, raw: Any, name: str) -> bool:
    if raw is not None:
        ctx.reader.error(path, f"{name!r} takes no arguments")
        return False
    return True


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TransformError(f"{what} needs text, got {_kind(value)}")
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    return type(value).__name__


# -- types ---------------------------------------------------------------------------------------


@step("string")
def _string(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not _no_args(ctx, path, raw, "string"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int, Decimal, float)):
            return str(v)
        if isinstance(v, date):
            return v.isoformat()
        raise TransformError(f"cannot turn {_kind(v)} into text")

    return run


@step("int")
def _int(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not _no_args(ctx, path, raw, "int"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            raise TransformError("a boolean is not a whole number")
        if isinstance(v, int):
            return v
        if isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v.strip()):
            try:
                return int(v)
            except ValueError:  # longer than sys.get_int_max_str_digits()
                raise TransformError("too many digits for a whole number") from None
        if isinstance(v, Decimal) and v == v.to_integral_value():
            return int(v)
        raise TransformError(
            f"{_kind(v) if not isinstance(v, str) else repr(v)} is not a whole number"
        )

    return run


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise TransformError("a boolean is not a number")
    if isinstance(v, Decimal):
        return v
    if isinstance(v, (int, str, float)):
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise TransformError(f"{v!r} is not a number") from None
        if not d.is_finite():
            raise TransformError(f"{v!r} is not a finite number")
        return d
    raise TransformError(f"{_kind(v)} is not a number")


@step("decimal")
def _decimal(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = _args(ctx, path, raw, optional=("places",))
    if args is None:
        return None
    places = (
        ctx.reader.integer((*path, "places"), args["places"], low=0, high=10)
        if "places" in args
        else None
    )
    quantum = Decimal(1).scaleb(-places) if places is not None else None

    def run(v: Any, w: list[str]) -> Any:
        d = _to_decimal(v)
        if quantum is not None:
            try:
                rounded = d.quantize(quantum, rounding=ROUND_HALF_UP)
            except InvalidOperation:  # more digits than the decimal context's precision
                raise TransformError(f"{d} has too many digits") from None
            if rounded != d:
                raise TransformError(f"{d} has more than {places} decimal places")
            return rounded
        return d

    return run


_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}


@step("bool")
def _bool(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not _no_args(ctx, path, raw, "bool"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            return v
        text = str(v).strip().lower() if isinstance(v, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise TransformError(f"{v!r} is not yes/no (true/false, 1/0, Y/N, 是/否)")

    return run


# -- dates and times -----------------------------------------------------------------------------

DATE_FORMATS: dict[str, str] = {
    "iso": "%Y-%m-%d",
    "YYYY-MM-DD": "%Y-%m-%d",
    "YYYYMMDD": "%Y%m%d",
    "DD/MM/YYYY": "%d/%m/%Y",
    "YYYY/MM/DD": "%Y/%m/%d",
    "YYYY年MM月DD日": "%Y年%m月%d日",
}
DATETIME_FORMATS: dict[str, str | None] = {
    "iso": None,  # ISO 8601 with offset
    "YYYY-MM-DD HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "YYYYMMDDHHmmss": "%Y%m%d%H%M%S",
    "DD/MM/YYYY HH:mm": "%d/%m/%Y %H:%M",
    "DD/MM/YYYY HH:mm:ss": "%d/%m/%Y %H:%M:%S",
}


# strptime takes 1-digit months and days, so "2024111" would parse (as 1 Nov): digit-only forms
# must have every digit.
_FIXED_WIDTH = {"YYYYMMDD": 8, "YYYYMMDDHHmmss": 14}


def _fixed_width_ok(src: str, text: str) -> bool:
    width = _FIXED_WIDTH.get(src)
    return width is None or (len(text) == width and text.isascii() and text.isdigit())


def _format_arg(ctx: Context, path: PathKey, value: Any, formats: Mapping[str, Any]) -> str | None:
    return ctx.reader.choice(path, value, formats)


@step("date")
def _date(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = _args(ctx, path, raw, required=("from", "to"))
    if args is None:
        return None
    src = _format_arg(ctx, (*path, "from"), args.get("from"), DATE_FORMATS)
    dst = _format_arg(ctx, (*path, "to"), args.get("to"), {**DATE_FORMATS, "date": None})
    if src is None or dst is None:
        return None
    parse_fmt, out_fmt = DATE_FORMATS[src], DATE_FORMATS.get(dst)

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            d = v
        else:
            text = _text(v, "a date").strip()
            try:
                if not _fixed_width_ok(src, text):
                    raise ValueError(text)
                d = datetime.strptime(text, parse_fmt).date()
            except ValueError:
                raise TransformError(f"{text!r} is not a date in the form {src}") from None
        return d if out_fmt is None else d.strftime(out_fmt)

    return run


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@step("datetime")
def _datetime(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = _args(ctx, path, raw, required=("from", "to"), optional=("zone", "to_zone"))
    if args is None:
        return None
    src = _format_arg(ctx, (*path, "from"), args.get("from"), DATETIME_FORMATS)
    dst = _format_arg(ctx, (*path, "to"), args.get("to"), DATETIME_FORMATS)
    zones: dict[str, ZoneInfo] = {}
    for key, default in (("zone", "Asia/Shanghai"), ("to_zone", None)):
        name = args.get(key, default)
        if name is None:
            continue
        try:
            zones[key] = _zone(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            ctx.reader.error(
                (*path, key), f"{name!r} is not a time zone name (e.g. Asia/Hong_Kong)"
            )
    if src is None or dst is None or "zone" not in zones:
        return None
    zone = zones["zone"]
    out_zone = zones.get("to_zone", zone)
    parse_fmt, out_fmt = DATETIME_FORMATS[src], DATETIME_FORMATS[dst]

    def run(v: Any, w: list[str]) -> Any:
        text = _text(v, "a date-time").strip()
        try:
            if not _fixed_width_ok(src, text):
                raise ValueError(text)
            dt = (
                datetime.fromisoformat(text)
                if parse_fmt is None
                else datetime.strptime(text, parse_fmt)
            )
        except ValueError:
            raise TransformError(f"{text!r} is not a date-time in the form {src}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)  # wall-clock time where the source system runs
        try:
            dt = dt.astimezone(out_zone)
        except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59-23:59 moved to +08:00
            raise TransformError(f"{text!r} is out of range") from None
        return dt.isoformat() if out_fmt is None else dt.strftime(out_fmt)

    return run


# -- text ----------------------------------------------------------------------------------------


def _simple(name: str, fn: Callable[[str], str]) -> None:
    def factory(raw: Any, ctx: Context, path: PathKey) -> Step | None:
        if not _no_args(ctx, path, raw, name):
            return None

        def run(v: Any, w: list[str]) -> Any:
            return fn(_text(v, name))

        return run

    REGISTRY[name] = factory


_simple("upper", str.upper)
_simple("lower", str.lower)
_simple("trim", str.strip)


@step("split")
def _split(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):
        raw = {"separator": raw}
    args = _args(ctx, path, raw, required=("separator",), optional=("index",))
    if args is None:
        return None
    given = args.get("separator")
    # Reader.text refuses blank text, but a single space is the commonest separator
    sep = (
        given if isinstance(given, str) and given else ctx.reader.text((*path, "separator"), given)
    )
    index = (
        ctx.reader.integer((*path, "index"), args["index"], low=-100, high=100)
        if "index" in args
        else None
    )
    if sep is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        parts = [p.strip() for p in _text(v, "split").split(sep)]
        if index is None:
            return parts
        try:
            return parts[index]
        except IndexError:
            raise TransformError(
                f"has {len(parts)} part(s) separated by {sep!r}, no part {index}"
            ) from None

    return run


@step("join")
def _join(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    # "" and " " are fine separators: Reader.text would refuse them as empty
    sep = "" if raw is None else raw if isinstance(raw, str) else ctx.reader.text(path, raw)
    if sep is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        if not isinstance(v, list):
            raise TransformError(f"join needs a list, got {_kind(v)}")
        return sep.join(_text(x, "join") for x in v if x is not None)

    return run


# -- code tables ---------------------------------------------------------------------------------

_NO_DEFAULT: Any = object()


@step("table")
def _table(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):
        raw = {"name": raw}
    args = _args(ctx, path, raw, required=("name",), optional=("default",))
    if args is None:
        return None
    name = args.get("name")
    table = ctx.tables.get(name) if isinstance(name, str) else None
    if table is None and name in ctx.unloaded:
        return None
    if table is None:
        known = ", ".join(sorted(ctx.tables)) or "none (declare them under 'tables:')"
        ctx.reader.error((*path, "name"), f"no code table {name!r}; this mapping declares: {known}")
        return None
    values = table.values
    default = args.get("default", table.default if table.has_default else _NO_DEFAULT)

    def run(v: Any, w: list[str]) -> Any:
        key = _text(v, f"table {table.name}") if not isinstance(v, str) else v
        found = values.get(key, _NO_DEFAULT)
        if found is _NO_DEFAULT:
            if default is _NO_DEFAULT:
                raise TransformError(f"{key!r} is not in code table {table.name} ({table.file})")
            return default
        return found

    return run


# -- identity numbers and codes ------------------------------------------------------------------


def _checker(
    name: str,
    check: Callable[..., domain.Checked],
    parts: tuple[str, ...],
    *,
    allow_key: str | None = None,
) -> None:
    def factory(raw: Any, ctx: Context, path: PathKey) -> Step | None:
        if isinstance(raw, str):
            raw = {"part": raw}
        args = _args(ctx, path, raw, optional=("part",))
        if args is None:
            return None
        part = args.get("part", "value")
        if part not in ("value", *parts):
            ctx.reader.error((*path, "part"), f"{part!r} is not one of: value, {', '.join(parts)}")
            return None
        extra: dict[str, Any] = {}
        if allow_key is not None:
            extra["allow"] = ctx.allow.get(allow_key, frozenset())

        def run(v: Any, w: list[str]) -> Any:
            try:
                checked = check(_text(v, name), **extra)
            except domain.DomainCheckError as exc:
                raise TransformError(f"not a valid {name.replace('_', ' ')}: {exc}") from None
            w.extend(checked.warnings)
            return checked.value if part == "value" else checked.parts[part]

        return run

    REGISTRY[name] = factory


_checker("mainland_id", domain.mainland_id, ("region", "birth_date", "sex"))
_checker("hkid", domain.hkid, ("number", "check"))
_checker("macau_bir", domain.macau_bir, ("number", "check"))
_checker("home_return_permit", domain.home_return_permit, ("holder_key", "renewal"))
_checker("uscc", domain.uscc, ("authority", "entity_type", "region", "org_code"), allow_key="uscc")
_checker("hk_brn", domain.hk_brn, ("kind", "number"))


_PHONE_FORMATS = {
    "e164": phonenumbers.PhoneNumberFormat.E164,
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
}


@step("phone")
def _phone(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = _args(ctx, path, raw, optional=("region", "format"))
    if args is None:
        return None
    region = ctx.reader.choice((*path, "region"), args.get("region", "CN"), ("CN", "HK", "MO"))
    fmt = ctx.reader.choice((*path, "format"), args.get("format", "e164"), _PHONE_FORMATS)
    if region is None or fmt is None:
        return None
    style = _PHONE_FORMATS[fmt]

    def run(v: Any, w: list[str]) -> Any:
        text = _text(v, "phone")
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise TransformError("not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise TransformError(f"not a valid phone number for +{number.country_code}")
        return phonenumbers.format_number(number, style)

    return run


_MINOR_UNITS = {"CNY": 2, "HKD": 2, "MOP": 2, "USD": 2, "EUR": 2, "TWD": 0}


@step("money")
def _money(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    """An amount (text or {amount, currency}) → Decimal with the currency's minor units."""
    args = _args(ctx, path, raw, optional=("currencies",))
    if args is None:
        return None
    allowed = args.get("currencies", sorted(_MINOR_UNITS))
    if not isinstance(allowed, list) or any(c not in _MINOR_UNITS for c in allowed):
        ctx.reader.error(
            (*path, "currencies"), f"expected a list of {', '.join(sorted(_MINOR_UNITS))}"
        )
        return None

    def run(v: Any, w: list[str]) -> Any:
        currency = None
        if isinstance(v, dict):
            currency = v.get("currency")
            if currency not in allowed:
                raise TransformError(f"currency {currency!r} is not one of {', '.join(allowed)}")
            v = v.get("amount")
        if isinstance(v, float):
            raise TransformError("money must not travel as a binary float; send it as text")
        amount = _to_decimal(v)
        places = _MINOR_UNITS.get(currency or "CNY", 2)
        try:
            rounded = amount.quantize(Decimal(1).scaleb(-places))
        except InvalidOperation:  # more digits than the decimal context's precision
            raise TransformError(f"{amount} has too many digits") from None
        if rounded != amount:
            raise TransformError(f"{amount} has more than {places} decimal places")
        return rounded

    return run


# -- scripts -------------------------------------------------------------------------------------

OPENCC_CONFIGS = ("s2hk", "s2t", "t2s", "hk2s")


@cache
def _opencc(config: str) -> Any:
    import opencc  # imported late: loading the dictionaries costs time only if a mapping needs it

    return opencc.OpenCC(config)


@step("opencc")
def _script(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    config = ctx.reader.choice(path, raw, OPENCC_CONFIGS)
    if config is None:
        return None
    if ctx.is_name:
        ctx.reader.error(
            path,
            "a person's name is never script-converted (OpenCC turns 余丽萍 into 餘麗萍): "
            "carry it exactly as on the document",
        )
        return None
    converter = _opencc(config)

    def run(v: Any, w: list[str]) -> Any:
        return converter.convert(_text(v, "opencc"))

    return run


def build_steps(raw: Any, ctx: Context, path: PathKey) -> list[tuple[str, Step]] | None:
    """Parse a ``transform:`` value (one step or a list) into named step functions."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, Step]] = []
    ok = True
    for i, item in enumerate(items):
        spath = (*path, i) if isinstance(raw, list) else path
        if isinstance(item, str):
            name, args = item, None
        elif isinstance(item, dict) and len(item) == 1:
            name, args = next(iter(item.items()))
        else:
            ctx.reader.error(
                spath, "a step is a name (upper) or one name with its arguments ({table: gender})"
            )
            ok = False
            continue
        factory = REGISTRY.get(name)
        if factory is None:
            import difflib

            hint = difflib.get_close_matches(name, REGISTRY, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            ctx.reader.error(
                spath, f"unknown transform {name!r}{more}; known: {', '.join(sorted(REGISTRY))}"
            )
            ok = False
            continue
        fn = factory(args, ctx, (*spath, name) if isinstance(item, dict) else spath)
        if fn is None:
            ok = False
            continue
        out.append((name, fn))
    return out if ok else None
