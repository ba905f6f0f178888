"""Code steps: code tables, identity numbers (ID cards, HKID, USCC, …) and phone numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import phonenumbers

from federation.config.yamlsrc import PathKey
from federation.domain.texts import N_, Text, said
from federation.mapping import domain, phones
from federation.mapping.transforms.base import (
    REGISTRY,
    Context,
    Step,
    TransformError,
    arguments,
    as_text,
    step,
)

_NO_DEFAULT: Any = object()


@step("table")
def _table(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):
        raw = {"name": raw}
    args = arguments(ctx, path, raw, required=("name",), optional=("default",))
    if args is None:
        return None
    name = args.get("name")
    table = ctx.tables.get(name) if isinstance(name, str) else None
    if table is None and name in ctx.unloaded:
        return None
    if table is None:
        known = ", ".join(sorted(ctx.tables)) or "none (declare them under 'tables:')"
        ctx.reader.error(
            (*path, "name"),
            said(
                "no code table %(name)r; this mapping declares: %(known)s", name=name, known=known
            ),
        )
        return None
    values = table.values
    default = args.get("default", table.default if table.has_default else _NO_DEFAULT)

    def run(v: Any, w: list[str]) -> Any:
        key = as_text(v, f"table {table.name}") if not isinstance(v, str) else v
        found = values.get(key, _NO_DEFAULT)
        if found is _NO_DEFAULT:
            if default is _NO_DEFAULT:
                raise TransformError(
                    said(
                        "%(key)r is not in code table %(table)s (%(file)s)",
                        key=key,
                        table=table.name,
                        file=table.file,
                    )
                )
            return default
        return found

    return run


# -- identity numbers and codes ------------------------------------------------------------------

# How "not a valid …" names each check: the step's name in words, said in the reader's language.
_WHAT = {
    "mainland_id": N_("mainland id"),
    "hkid": N_("hkid"),
    "macau_bir": N_("macau bir"),
    "home_return_permit": N_("home return permit"),
    "uscc": N_("uscc"),
    "hk_brn": N_("hk brn"),
}


def _checker(
    name: str,
    check: Callable[..., domain.Checked],
    parts: tuple[str, ...],
    *,
    allow_key: str | None = None,
) -> None:
    what = _WHAT[name]

    def factory(raw: Any, ctx: Context, path: PathKey) -> Step | None:
        if isinstance(raw, str):
            raw = {"part": raw}
        args = arguments(ctx, path, raw, optional=("part",))
        if args is None:
            return None
        part = args.get("part", "value")
        if part not in ("value", *parts):
            ctx.reader.error(
                (*path, "part"),
                said(
                    "%(value)r is not one of: %(allowed)s",
                    value=part,
                    allowed=", ".join(("value", *parts)),
                ),
            )
            return None
        extra: dict[str, Any] = {}
        if allow_key is not None:
            extra["allow"] = ctx.allow.get(allow_key, frozenset())

        def run(v: Any, w: list[Any]) -> Any:
            try:
                checked = check(as_text(v, name), **extra)
            except domain.DomainCheckError as exc:
                raise TransformError(
                    said("not a valid %(what)s: %(error)s", what=Text(what), error=exc.reason)
                ) from None
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
    args = arguments(ctx, path, raw, optional=("region", "format"))
    if args is None:
        return None
    region = ctx.reader.choice((*path, "region"), args.get("region", "CN"), ("CN", "HK", "MO"))
    fmt = ctx.reader.choice((*path, "format"), args.get("format", "e164"), _PHONE_FORMATS)
    if region is None or fmt is None:
        return None
    style = _PHONE_FORMATS[fmt]
    carries_extension = fmt != "e164"  # international and national write it as "ext. 321"

    def run(v: Any, w: list[str]) -> Any:
        text = as_text(v, "phone")
        if not carries_extension:  # a plain mobile number, by the library's own rules
            quick = phones.quick_e164(text, region)
            if quick is not None:
                return quick
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise TransformError(said("not a phone number")) from None
        if not phonenumbers.is_valid_number(number):
            raise TransformError(
                said("not a valid phone number for +%(code)s", code=number.country_code)
            )
        if number.extension and not carries_extension:
            # E.164 has no room for one: formatting would drop it and call a switchboard instead
            raise TransformError(
                said(
                    "the phone number has an extension, which E.164 cannot carry"
                    " (send it without, or map it with format: international or national)"
                )
            )
        return phonenumbers.format_number(number, style)

    return run
