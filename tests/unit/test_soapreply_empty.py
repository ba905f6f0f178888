"""soapreply.read_envelope: a body of nothing or white space only is no envelope (read without
copying the body), anything else is parsed."""

from __future__ import annotations

import pytest

from adapters.soapreply import Reading, read_envelope


@pytest.mark.parametrize("raw", [b"", b" ", b"\r\n", b" \t\n\r\x0b\x0c "])
def test_nothing_or_white_space_is_no_envelope(raw: bytes) -> None:
    assert not raw.strip()  # the test it stands for
    assert read_envelope(raw) == Reading()


@pytest.mark.parametrize("raw", [b"\x00", b"\xa0", b" x ", b"\x85"])
def test_anything_else_is_parsed(raw: bytes) -> None:
    reading = read_envelope(raw)
    assert reading.refused is not None and reading.opened is None
