"""The check characters computed in C (map over bytes and a value table) equal the standards'
weighted sums written out, and the allow-list of a mapping is matched after cleaning."""

from __future__ import annotations

import random

from federation.mapping import domain

_USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc_reference(body: str) -> str:
    total = sum(_USCC.index(c) * w for c, w in zip(body, domain._USCC_WEIGHTS, strict=True))
    return _USCC[(31 - total % 31) % 31]


def _id_reference(body: str) -> str:
    total = sum(int(c) * w for c, w in zip(body, domain._ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def test_uscc_check_char_matches_the_weighted_sum() -> None:
    """GB 32100's check character equals the weighted sum written out, for 5,000 random bodies."""
    rng = random.Random(19)
    for _ in range(5000):
        body = "".join(rng.choice(_USCC) for _ in range(17))
        assert domain.uscc_check_char(body) == _uscc_reference(body)


def test_mainland_id_check_char_matches_the_weighted_sum() -> None:
    """GB 11643's check character equals the weighted sum written out, for 5,000 random bodies."""
    rng = random.Random(11)
    for _ in range(5000):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        assert domain.mainland_id_check_char(body) == _id_reference(body)


def test_full_width_and_lower_case_codes_check_as_ascii() -> None:
    """A USCC typed in full-width lower case is cleaned before its check character is computed."""
    body = "91350211MA2YQJ4E3"
    code = body + _uscc_reference(body)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code.lower())
    assert domain.uscc(wide).value == code


def test_allow_list_as_frozenset_or_list_is_cleaned() -> None:
    """An allow-listed pilot code passes with a warning whether the list is a frozenset or a list,
    and written with a space and in lower case."""
    code = "91350211M0000XUF46"  # its check character should be R
    for allow in (frozenset({" 91350211m0000xuf46"}), [" 91350211m0000xuf46"]):
        checked = domain.uscc(code, allow=allow)
        assert checked.value == code and len(checked.warnings) == 1
    assert len(domain.uscc(code[:-1] + "R").warnings) == 0
