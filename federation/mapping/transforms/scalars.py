"""Scalar steps: text, whole numbers, decimals, yes/no and money amounts."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from federation.config.yamlsrc import PathKey
from federation.domain.texts import Text, said
from federation.mapping.domain import halfwidth
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    a_kind,
    arguments,
    no_arguments,
    step,
)


@step("string")
def _string(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not no_arguments(ctx, path, raw, "string"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int, Decimal, float)):
            return str(v)
        if isinstance(v, date):
            return v.isoformat()
        raise TransformError(said("cannot turn %(kind)s into text", kind=a_kind(v)))

    return run


@step("int")
def _int(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not no_arguments(ctx, path, raw, "int"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            raise TransformError(said("a boolean is not a whole number"))
        if isinstance(v, int):
            return v
        if isinstance(v, str) and _WHOLE.fullmatch(text := _plain_text(v)):
            try:
                return int(text)
            except ValueError:  # longer than sys.get_int_max_str_digits()
                raise TransformError(said("too many digits for a whole number")) from None
        if isinstance(v, Decimal) and v == v.to_integral_value():
            return int(v)
        if isinstance(v, str):
            raise TransformError(said("%(value)r is not a whole number", value=v))
        raise TransformError(said("%(kind)s is not a whole number", kind=a_kind(v)))

    return run


# Numbers written as text are read in plain decimal notation only: a sign, ASCII digits, one point
# with digits on both sides. Python's Decimal also takes 4_8236.52, 4.823652E+4 and ٤٨٢٣٦.٥٢ (any
# script's digits): an amount is money, and a spelling we would have to guess at is refused.
_PLAIN = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_WHOLE = re.compile(r"[+-]?[0-9]+")


def _plain_text(v: str) -> str:
    """Text trimmed, with full-width digits, sign and point (as an input method types them) read as
    ASCII, as dates and identity numbers are; anything else is left for the caller to refuse."""
    text = v.strip()
    return text if text.isascii() else halfwidth(text).strip()


def to_decimal(v: Any) -> Decimal:
    """A finite Decimal from a number or text in plain decimal notation, else the step fails."""
    if isinstance(v, bool):
        raise TransformError(said("a boolean is not a number"))
    if isinstance(v, Decimal):
        return v
    if isinstance(v, str):
        text = v.strip()
        if not text.isascii():  # full-width digits, as _plain_text reads them (inlined: hot path)
            text = halfwidth(text).strip()
        if _PLAIN.fullmatch(text):
            return Decimal(text)
        raise _not_plain(v, text)
    if isinstance(v, (int, float)):
        d = Decimal(str(v))  # str of a float is its shortest form: 0.1 stays 0.1
        if not d.is_finite():
            raise TransformError(said("%(value)r is not a finite number", value=v))
        return d
    raise TransformError(said("%(kind)s is not a number", kind=a_kind(v)))


def _not_plain(v: str, text: str) -> TransformError:
    """Why text outside plain decimal notation is refused (built only when it is)."""
    try:
        d: Decimal | None = Decimal(text)
    except InvalidOperation:
        d = None
    if d is not None and not d.is_finite():
        return TransformError(said("%(value)r is not a finite number", value=v))
    if d is None and not any(c.isdigit() for c in text):
        return TransformError(said("%(value)r is not a number", value=v))
    return TransformError(
        said(
            "%(value)r is not a number in plain decimal notation: digits 0-9, an optional sign"
            " and one decimal point, without separators or an exponent",
            value=v,
        )
    )


def _too_many_digits(d: Decimal) -> Text:
    return said("%(number)s has too many digits", number=d)


def _too_many_places(d: Decimal, places: int | None) -> Text:
    return said("%(number)s has more than %(places)s decimal places", number=d, places=places)


@step("decimal")
def _decimal(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = arguments(ctx, path, raw, optional=("places",))
    if args is None:
        return None
    places = (
        ctx.reader.integer((*path, "places"), args["places"], low=0, high=10)
        if "places" in args
        else None
    )
    quantum = Decimal(1).scaleb(-places) if places is not None else None

    def run(v: Any, w: list[str]) -> Any:
        d = to_decimal(v)
        if quantum is not None:
            try:
                rounded = d.quantize(quantum, rounding=ROUND_HALF_UP)
            except InvalidOperation:  # more digits than the decimal context's precision
                raise TransformError(_too_many_digits(d)) from None
            if rounded != d:
                raise TransformError(_too_many_places(d, places))
            return rounded
        return d

    return run


_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}


@step("bool")
def _bool(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not no_arguments(ctx, path, raw, "bool"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if isinstance(v, bool):
            return v
        text = str(v).strip().lower() if isinstance(v, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise TransformError(said("%(value)r is not yes/no (true/false, 1/0, Y/N, 是/否)", value=v))

    return run


_MINOR_UNITS = {"CNY": 2, "HKD": 2, "MOP": 2, "USD": 2, "EUR": 2, "TWD": 0}


@step("money")
def _money(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    """An amount (text or {amount, currency}) → Decimal with the currency's minor units."""
    args = arguments(ctx, path, raw, optional=("currencies",))
    if args is None:
        return None
    allowed = args.get("currencies", sorted(_MINOR_UNITS))
    if not isinstance(allowed, list) or any(c not in _MINOR_UNITS for c in allowed):
        ctx.reader.error(
            (*path, "currencies"),
            said("expected a list of %(allowed)s", allowed=", ".join(sorted(_MINOR_UNITS))),
        )
        return None

    def run(v: Any, w: list[str]) -> Any:
        currency = None
        if isinstance(v, dict):
            currency = v.get("currency")
            if currency not in allowed:
                raise TransformError(
                    said(
                        "currency %(currency)r is not one of %(allowed)s",
                        currency=currency,
                        allowed=", ".join(allowed),
                    )
                )
            v = v.get("amount")
        if isinstance(v, float):
            raise TransformError(said("money must not travel as a binary float; send it as text"))
        amount = to_decimal(v)
        places = _MINOR_UNITS.get(currency or "CNY", 2)
        try:
            rounded = amount.quantize(Decimal(1).scaleb(-places))
        except InvalidOperation:  # more digits than the decimal context's precision
            raise TransformError(_too_many_digits(amount)) from None
        if rounded != amount:
            raise TransformError(_too_many_places(amount, places))
        return rounded

    return run
