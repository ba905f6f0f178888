"""The compiled writer's test for text that needs escaping: exactly & < > and carriage return, and
every character XML 1.0 cannot carry, over every code point."""

from __future__ import annotations

from adapters.body import NEEDS_ESCAPING


def needs_escaping(code: int) -> bool:
    if chr(code) in "&<>\r":
        return True
    allowed = code in (0x9, 0xA) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
    return not (allowed or 0x10000 <= code <= 0x10FFFF)


def test_every_code_point() -> None:
    wrong = [
        code
        for code in range(0x110000)
        if (NEEDS_ESCAPING.search(chr(code)) is not None) != needs_escaping(code)
    ]
    assert wrong == []


def test_in_text() -> None:
    assert NEEDS_ESCAPING.search("李永燊 LEE, Wing Sun +85261937204") is None
    assert NEEDS_ESCAPING.search("a & b") is not None
    assert NEEDS_ESCAPING.search("中國\x00") is not None
