"""A quick E.164 for the phone numbers applications usually carry, with ``phonenumbers``' own rules.

The ``phone`` step parses, validates and formats every number with ``phonenumbers``: 13-16 µs of
the 45 µs a Fujian application's whole mapping takes (issue #19). Nearly every number an
application carries is already plain: a mainland, Hong Kong or Macau mobile number written as
``+8613812345678`` or ``13812345678``. For that shape alone, :func:`quick_e164` says "surely valid,
and this is its E.164" from the same metadata ``phonenumbers`` validates with: the region's
general pattern and its mobile pattern, each with its possible lengths, compiled once here from
``PhoneMetadata``. A number either of them does not match, or any other shape (separators, an
extension, a national or international prefix, another country's code, a leading zero, digits
that begin with the region's own country code), gets ``None``, and the step asks ``phonenumbers``
as before, so every refusal and every other number is still its verdict. This is hand-written
because the measurement justifies it (bench/phone.py); the rules are not: they are read
from the library, and a test compares the quick answer with the library's on every prefix.

The shortcut never says yes where ``phonenumbers`` would say no or write something else:
``is_valid_number`` is "matches the general description, then one of the types", mobile is one of
the types, and a plain ASCII run of digits with no prefix to strip parses to itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phonenumbers import PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc

__all__ = ["quick_e164"]


@dataclass(frozen=True, slots=True)
class _Region:
    code: str  # the country calling code, as digits
    general: re.Pattern[str]
    general_lengths: frozenset[int]
    mobile: re.Pattern[str]
    mobile_lengths: frozenset[int]
    national_prefix: re.Pattern[str] | None  # what parsing would strip as a national prefix


def _pattern(desc: PhoneNumberDesc | None) -> tuple[re.Pattern[str], frozenset[int]]:
    if desc is None or desc.national_number_pattern is None:
        return re.compile(r"(?!)"), frozenset()  # a description it lacks matches nothing
    return re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ())


def _region(name: str) -> _Region:
    meta = PhoneMetadata.metadata_for_region(name)
    if meta is None:
        raise LookupError(f"phonenumbers has no metadata for {name}")
    general, general_lengths = _pattern(meta.general_desc)
    mobile, mobile_lengths = _pattern(meta.mobile)
    prefix = meta.national_prefix_for_parsing
    return _Region(
        code=str(meta.country_code),
        general=general,
        general_lengths=general_lengths,
        mobile=mobile,
        mobile_lengths=mobile_lengths,
        national_prefix=re.compile(prefix) if prefix else None,
    )


_REGIONS = {name: _region(name) for name in ("CN", "HK", "MO")}
_BY_CODE = {r.code: r for r in _REGIONS.values()}
_PLAIN = re.compile(r"\+?[1-9][0-9]{4,16}", re.ASCII)


def quick_e164(text: str, region: str) -> str | None:
    """``text``'s E.164 form when it is surely a valid mobile number of CN, HK or MO written plain
    (``region`` is the one a number without ``+`` belongs to); ``None``: ask ``phonenumbers``."""
    if _PLAIN.fullmatch(text) is None:
        return None
    if text[0] == "+":
        nsn, where = _national(text[1:])
        if where is None:
            return None
    else:
        where = _REGIONS.get(region)
        if where is None or text.startswith(where.code):
            return None  # parsing might read the digits as a country code without its "+"
        nsn = text
    n = len(nsn)
    if n not in where.mobile_lengths or n not in where.general_lengths:
        return None
    if where.national_prefix is not None and where.national_prefix.match(nsn):
        return None
    if where.mobile.fullmatch(nsn) is None or where.general.fullmatch(nsn) is None:
        return None
    return f"+{where.code}{nsn}"


def _national(digits: str) -> tuple[str, _Region | None]:
    for size in (2, 3):  # 86; 852 and 853: no code of these is a prefix of another
        where = _BY_CODE.get(digits[:size])
        if where is not None:
            return digits[size:], where
    return "", None
