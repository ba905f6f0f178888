"""Date and date-time steps: between the written forms partners use, and across time zones."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from federation.config.yamlsrc import PathKey
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    arguments,
    as_text,
    step,
)

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
    args = arguments(ctx, path, raw, required=("from", "to"))
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
            text = as_text(v, "a date").strip()
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
    args = arguments(ctx, path, raw, required=("from", "to"), optional=("zone", "to_zone"))
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
        text = as_text(v, "a date-time").strip()
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
