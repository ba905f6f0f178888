"""Which filter values a journal can store and compare (see federation/domain/storable.py)."""

from __future__ import annotations

import pytest

from federation.api.support import BadQuery, query_from
from federation.api.trail import trail_query
from federation.domain.storable import unstorable


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "a\ud800b", "\udfff"])
def test_nul_and_lone_surrogates_are_named(value: str) -> None:
    assert unstorable({"partner": "hk", "error": value}) == "error"
    with pytest.raises(BadQuery, match=r"^error: holds a NUL character or a lone surrogate"):
        query_from({"error": value}, applicant_ref=lambda _: None)
    with pytest.raises(ValueError, match=r"^who: holds a NUL character"):
        trail_query({"who": value})


@pytest.mark.parametrize("value", ["陳大文", "A123456(3)", "\ufffd", "😀", "tab\there", ""])
def test_everything_else_is_storable(value: str) -> None:
    assert unstorable({"error": value, "none": None}) is None
    assert query_from({"error": value}, applicant_ref=lambda _: None).error == (value or None)
