"""Check and normalise identity numbers and codes that cross the borders of the federation.

Every check function takes the text as received and either raises :class:`DomainCheckError` or
returns a :class:`Checked` holding the normalised value, its useful parts and any warnings.
Warnings are returned rather than raised because they describe numbers that look odd but are real
(an HK residence permit of someone born in 1978; a pilot-era USCC with a wrong check character).

Error and warning messages name the failing position, field or character, never the whole number:
they end up in logs and problem reports, and an ID number is personal data. Each is made as a Text
(an English template and its values), so that the CLI and the console can say it in the reader's
language; it is built only where a check fails.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from federation.domain.texts import N_, Text, said


class DomainCheckError(ValueError):
    """A value is not a valid identity number or code; the message says what failed (``reason``:
    its template and values, to say it in the reader's language)."""

    def __init__(self, reason: Text) -> None:
        super().__init__(str(reason))
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Checked:
    """A value that passed its check: normalised form, split parts and non-fatal warnings."""

    value: str
    parts: dict[str, str] = field(default_factory=dict)
    warnings: tuple[Text, ...] = ()  # str(warning) is the English


# Forms typed with a Chinese input method often carry full-width digits, letters, brackets and the
# ideographic space; map them to ASCII so "Ａ１２３４５６（３）" is checked like "A123456(3)".
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def halfwidth(value: str) -> str:
    """``value`` with full-width forms and the ideographic space as their ASCII twins (ASCII text
    is returned as it is, without a copy)."""
    return value if value.isascii() else value.translate(_FULLWIDTH)


def clean(value: str) -> str:
    """An identity number or code as every check reads it: full-width forms as ASCII, trimmed,
    upper case. The transforms (``mainland_id`` …) and the ``checks:`` rules (``id_sex`` …) both
    read a number through this one function, so a rule never compares less than a transform sends.
    """
    return halfwidth(value).strip().upper()


@functools.cache
def _shape(allowed: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("".join(f"[{re.escape(chars)}]" for chars in allowed))


def _check_chars(value: str, allowed: list[str], what: str) -> None:
    """Raise naming the first position whose character is outside its allowed set (``what`` is
    one of the names marked for the catalogues below)."""
    if _shape(tuple(allowed)).fullmatch(value):
        return  # the common case, checked in one go; the loop below only explains a failure
    if len(value) != len(allowed):
        raise DomainCheckError(
            said(
                "%(what)s must have %(n)s characters, not %(given)s",
                what=Text(what),
                n=len(allowed),
                given=len(value),
            )
        )
    for pos, (char, ok) in enumerate(zip(value, allowed, strict=True), start=1):
        if char not in ok:
            raise DomainCheckError(
                said(
                    "character %(position)s of the %(what)s is %(char)r, not one of %(allowed)s",
                    position=pos,
                    what=Text(what),
                    char=char,
                    allowed=ok,
                )
            )


# What _check_chars names, as its callers write it
_ID_NUMBER, _ID_BODY = N_("ID number"), N_("ID number body")
_USCC, _USCC_BODY = N_("USCC"), N_("USCC body")
_MISMATCH = {
    "number": N_("check character is %(given)r but the number says %(expected)r"),
    "code": N_("check character is %(given)r but the code says %(expected)r"),
}


def _mismatch(given: str, expected: str, noun: str = "number") -> DomainCheckError:
    return DomainCheckError(Text(_MISMATCH[noun], (("given", given), ("expected", expected))))


# --- Mainland Resident Identity Card and HK/Macau/Taiwan residence permits (GB 11643) -----------

_DIGITS = "0123456789"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Province-level GB/T 2260 codes, plus 83 which exists only in Taiwan residence permits.
_PROVINCES = frozenset(
    str(n)
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    )
)
# Provinces whose code is younger than some holders: residence permits (since 2018-09-01) use
# 810000/820000 for everyone, so an older birth date is expected and only worth a warning.
# Taiwan's 830000 is absent on purpose: it never existed as a birth-era county code to compare with.
_REGION_SINCE = {"81": date(1997, 7, 1), "82": date(1999, 12, 20)}


def mainland_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of a mainland ID."""
    body = clean(first17)
    _check_chars(body, [_DIGITS] * 17, _ID_BODY)
    return _id_check(body)


# Each digit's ASCII code is its value + 48: the weighted sum of the codes, less 48 × the weights'
# sum, is the weighted sum of the digits, computed in C (map) rather than a generator.
_ID_OFFSET = 48 * sum(_ID_WEIGHTS)


def _id_check(body: str) -> str:
    """The check character of 17 ASCII digits (already checked)."""
    total = sum(map(operator.mul, body.encode("ascii"), _ID_WEIGHTS)) - _ID_OFFSET
    return _ID_CHECK[total % 11]


def mainland_id(value: str, *, today: date | None = None) -> Checked:
    """Check a mainland ID card or HK/Macau/Taiwan residence permit number (18 characters)."""
    v = clean(value)
    _check_chars(v, [_DIGITS] * 17 + [_DIGITS + "X"], _ID_NUMBER)
    region, birth, check = v[:6], v[6:14], v[17]
    if region[:2] not in _PROVINCES:
        raise DomainCheckError(
            said("province code %(code)s (characters 1-2) does not exist", code=region[:2])
        )
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise DomainCheckError(said("birth date %(date)s is not a date", date=birth)) from None
    if born.year < 1900:
        raise DomainCheckError(said("birth year %(year)s is before 1900", year=born.year))
    if born > (today or date.today()):
        raise DomainCheckError(said("birth date %(date)s is in the future", date=born.isoformat()))
    expected = _id_check(v[:17])  # v is cleaned and its first 17 characters are digits
    if check != expected:
        raise _mismatch(check, expected)
    warnings: list[Text] = []
    since = _REGION_SINCE.get(region[:2])
    if since is not None and born < since:
        warnings.append(
            said(
                "region %(region)s did not exist in %(year)s"
                " (residence permit issued from 2018-09-01: expected)",
                region=region,
                year=born.year,
            )
        )
    sex = "male" if int(v[16]) % 2 else "female"
    parts = {"region": region, "birth_date": born.isoformat(), "sex": sex}
    return Checked(value=v, parts=parts, warnings=tuple(warnings))


# --- Hong Kong Identity Card ---------------------------------------------------------------------

_HKID = re.compile(r"([A-Z]{1,2}[0-9]{6}) ?(?:\(([0-9A])\)|([0-9A]))", re.ASCII)
_HKID_PREFIX = re.compile(r"[A-Z]{1,2}[0-9]{6}", re.ASCII)
_HKID_FORMAT = N_("an HKID is 1-2 letters, 6 digits and a check character 0-9 or A, as A123456(3)")


def hkid_check_char(prefix: str) -> str:
    """The check character (0-9 or A) for an HKID's letters and six digits, e.g. ``A123456``."""
    p = clean(prefix)
    if not _HKID_PREFIX.fullmatch(p):
        raise DomainCheckError(said("an HKID prefix is 1-2 letters and 6 digits, as A123456"))
    # One-letter numbers are padded to eight positions with a space worth 36.
    values = [36 if c == " " else int(c, 36) for c in p.rjust(8)]
    r = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11
    return "0" if r == 0 else "A" if r == 1 else str(11 - r)


def hkid(value: str) -> Checked:
    """Check an HKID (``A123456(3)``, ``A1234563``, ``A123456 3``); normalise to ``A123456(3)``."""
    m = _HKID.fullmatch(clean(value))
    if m is None:
        raise DomainCheckError(Text(_HKID_FORMAT))
    number, check = m[1], m[2] or m[3]
    expected = hkid_check_char(number)
    if check != expected:
        raise _mismatch(check, expected)
    return Checked(value=f"{number}({check})", parts={"number": number, "check": check})


# --- Macau Resident Identity Card (BIR) ----------------------------------------------------------

# The BIR check-digit algorithm is not public, so these are format checks only. Brackets must pair:
# "1234567(8" is a typo we would rather surface than guess at.
_BIR = re.compile(r"([157][0-9]{6})(?:\(([0-9])\)|([0-9]))", re.ASCII)
_BIR_OLD = re.compile(r"([157])/([0-9]{6})/([0-9])", re.ASCII)


def macau_bir(value: str) -> Checked:
    """Check the format of a Macau BIR number (``1234567(8)`` or old ``1/234567/8``)."""
    v = clean(value)
    if m := _BIR.fullmatch(v):
        number, check = m[1], m[2] or m[3]
    elif m := _BIR_OLD.fullmatch(v):
        number, check = m[1] + m[2], m[3]
    else:
        raise DomainCheckError(
            said(
                "a Macau BIR is 1, 5 or 7, six digits and a check digit, as 1234567(8) or "
                "1/234567/8"
            )
        )
    return Checked(value=f"{number}({check})", parts={"number": number, "check": check})


# --- Mainland Travel Permit for HK/Macao residents (回鄉證) --------------------------------------

_HRP = re.compile(r"[HM](?:[0-9]{8}|[0-9]{10})", re.ASCII)


def home_return_permit(value: str) -> Checked:
    """Check the format of a 回鄉證 number: H or M, 8 digits, optionally a 2-digit renewal count."""
    v = clean(value)
    if not _HRP.fullmatch(v):
        raise DomainCheckError(
            said(
                "a 回鄉證 number is H or M and 8 digits, or 10 digits in the older form"
                " that ends in a renewal count"
            )
        )
    # The renewal count changes with every reissue; the first 9 characters identify the holder.
    parts = {"holder_key": v[:9]}
    if len(v) == 11:
        parts["renewal"] = v[9:]
    return Checked(value=v, parts=parts)


# --- Unified Social Credit Code (GB 32100-2015) --------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I O S V Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a USCC."""
    body = clean(first17)
    _check_chars(body, [_USCC_ALPHABET] * 17, _USCC_BODY)
    return _uscc_check(body)


def _uscc_check(body: str) -> str:
    """The check character of 17 characters of the USCC alphabet (already checked)."""
    total = sum(map(operator.mul, map(_USCC_VALUE.__getitem__, body), _USCC_WEIGHTS))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def uscc(value: str, allow: Collection[str] = ()) -> Checked:
    """Check a USCC; a code listed in ``allow`` passes a failed checksum with a warning."""
    v = clean(value)
    _check_chars(v, [_USCC_ALPHABET] * 18, _USCC)
    parts = {"authority": v[0], "entity_type": v[1], "region": v[2:8], "org_code": v[8:17]}
    expected = _uscc_check(v[:17])  # v is cleaned and every character is in the alphabet
    if v[17] == expected:
        return Checked(value=v, parts=parts)
    # Some early pilot codes were issued with a wrong check character and are still in use; the
    # mapping lists them explicitly so a typo elsewhere is still caught.
    if v in (_cleaned(allow) if isinstance(allow, frozenset) else {clean(a) for a in allow}):
        warning = said(
            "accepted by allow-list although its check character should be %(expected)r",
            expected=expected,
        )
        return Checked(value=v, parts=parts, warnings=(warning,))
    raise _mismatch(v[17], expected, "code")


@functools.cache
def _cleaned(allow: frozenset[str]) -> frozenset[str]:
    """A mapping's allow-list (a frozenset, the same one every call), cleaned once."""
    return frozenset(clean(a) for a in allow)


# --- Hong Kong Business Registration number ------------------------------------------------------

# No public check digit and no documented width for the C/F forms: format only, digits as given.
_BRN = re.compile(r"(?:([0-9]{8})|C([0-9]{1,10})|F([0-9]{1,10}))", re.ASCII)


def hk_brn(value: str) -> Checked:
    """Check the format of an HK BR number: 8 digits, or C/F and digits for unregistered firms."""
    v = clean(value)
    m = _BRN.fullmatch(v)
    if m is None:
        raise DomainCheckError(
            said("an HK BR number is 8 digits, or C or F followed by the company number")
        )
    if m[1]:
        parts = {"kind": "br", "number": m[1]}
    elif m[2]:
        parts = {"kind": "local_company", "number": m[2]}
    else:
        parts = {"kind": "non_hk_company", "number": m[3]}
    return Checked(value=v, parts=parts)
