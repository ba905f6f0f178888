"""The quick E.164 of plain mobile numbers says nothing ``phonenumbers`` would not say."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from federation.mapping.phones import quick_e164

REGIONS = {"CN": "86", "HK": "852", "MO": "853"}


def library(text: str, region: str) -> str | None:
    """What the phone step wrote before the shortcut: E.164 of a valid number, else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or number.extension:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def candidates(rng: random.Random) -> list[str]:
    """National numbers: every three-digit start at every length from 5 to 13, random tails."""
    out = []
    for start in range(100, 1000):
        for length in range(5, 14):
            tail = "".join(rng.choice("0123456789") for _ in range(length - 3))
            out.append(f"{start}{tail}"[:length])
    return out


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_quick_answer_is_the_librarys_on_every_prefix(region: str) -> None:
    """Wherever the shortcut answers, plain or with +code, it writes what phonenumbers writes."""
    rng = random.Random(f"phones-{region}")
    taken = 0
    for national in candidates(rng):
        for text in (national, f"+{REGIONS[region]}{national}", f"+86{national}"):
            quick = quick_e164(text, region)
            if quick is not None:
                taken += 1
                assert quick == library(text, region), (text, region)
    assert taken > 100  # the shortcut is really used, for every region


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+8613812345678", "CN", "+8613812345678"),
        ("13812345678", "CN", "+8613812345678"),
        ("+85251234567", "CN", "+85251234567"),
        ("51234567", "HK", "+85251234567"),
        ("+85366123456", "HK", "+85366123456"),
        ("66123456", "MO", "+85366123456"),
    ],
)
def test_plain_mobile_numbers_take_the_shortcut(text: str, region: str, expected: str) -> None:
    """The numbers applications carry (domain cases) are answered without parsing."""
    assert quick_e164(text, region) == expected == library(text, region)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+86 138 1234 5678", "CN"),  # separators
        ("013812345678", "CN"),  # a leading zero: a national prefix
        ("8613812345678", "CN"),  # its own country code without "+"
        ("0085251234567", "HK"),  # an international prefix
        ("+4930123456", "CN"),  # another country
        ("+86１３８１２３４５６７８", "CN"),  # full-width digits
        ("21234567", "HK"),  # valid, but a fixed line: the library judges it
        ("+8613812345678;ext=1", "CN"),
        ("13812345678", "US"),  # no region of ours
    ],
)
def test_other_shapes_go_to_the_library(text: str, region: str) -> None:
    """Anything but a plain mobile number of CN, HK or MO is left to phonenumbers."""
    assert quick_e164(text, region) is None
