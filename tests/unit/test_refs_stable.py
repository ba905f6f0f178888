"""Applicant references keep their value: journals written before still find their applicants."""

from __future__ import annotations

import hashlib
import hmac

from replay.refs import RefExtractor, reference

KEY = bytes(range(32))


def test_reference_is_hmac_sha256_of_the_normalised_value() -> None:
    """The same bytes as HMAC-SHA256 over the normalised text, whatever the spelling typed."""
    expected = hmac.new(KEY, b"A1234563", hashlib.sha256).digest()
    for typed in ("A123456(3)", "a123456 (3)", "Ａ１２３４５６（３）"):
        assert reference(KEY, typed) == expected
    # a fixed point, made by the first implementation: no change of library may move it
    assert expected.hex() == "065540c750eb645de3325f57deae25010ec20e0cdfff0a13b27aa5c2eea59379"


def test_extractor_gives_each_reference_once() -> None:
    """Two fields holding the same number, written two ways: one reference."""
    refs = RefExtractor(KEY, ["a.id", "b.id"])({"a": {"id": "A123456(3)"}, "b": {"id": "a1234563"}})
    assert refs == (hmac.new(KEY, b"A1234563", hashlib.sha256).digest(),)
