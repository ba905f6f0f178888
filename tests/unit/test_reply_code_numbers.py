"""A business code a reply gives as a JSON number is read as its value, as docs/delivery.md says:
``0.0``, ``-0`` and ``0e5`` are ``0``; a code given as a string is compared as written."""

from __future__ import annotations

import pytest

from federation.config.replies import code_text
from federation.domain.strictjson import loads


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"0", "0"),
        (b"0.0", "0"),
        (b"-0", "0"),
        (b"0e5", "0"),
        (b"1100.0", "1100"),
        (b"1.5", "1.5"),
        (b'"0.0"', "0.0"),
        (b'"00"', "00"),
        (b"true", None),
        (b"null", None),
    ],
)
def test_a_code_is_read_as_the_docs_say(raw: bytes, code: str | None) -> None:
    assert code_text(loads(raw)) == code
