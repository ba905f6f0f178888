"""Base64 broken into lines by a reference to a line break padded with zeros (``&#010;``,
``&#013;&#010;``, ``&#x00A;``), as XML allows and some writers pad: the break is removed as
``&#10;`` is, in a short text (decided on what it reads as) and a long one (looked for after
each ``&``); before, a decimal one with a leading zero was not, and the secret was kept."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.auth import REDACTED, rewrite
from adapters.auth.scrub import Scrubber

SECRET = "Gd-AppSecret-4b0e9f2a71d6"
BREAKS = (
    "&#10;",
    "&#010;",
    "&#0010;",
    "&#013;&#010;",
    "&#13;&#0000010;",
    "&#x00A;",
    "&#X0d;&#x0a;",
)


def wrapped(brk: str, pad: int) -> str:
    doc = json.dumps({"pad": "x" * pad, "token": SECRET}).encode()
    b = base64.b64encode(doc).decode()
    return "<data>" + brk.join(b[k : k + 64] for k in range(0, len(b), 64)) + "</data>"


@pytest.mark.parametrize("pad", [5, 900], ids=["short", "long"])
@pytest.mark.parametrize("brk", BREAKS)
def test_base64_broken_by_a_padded_break_is_joined(brk: str, pad: int) -> None:
    """At 16 alignments of the secret against the lines (most put a break inside it)."""
    for more in range(16):
        assert REDACTED in Scrubber([SECRET]).text(wrapped(brk, pad + more)), more


def test_a_padded_break_is_hinted_and_only_a_break() -> None:
    """``&#010;`` makes a long text one that may be rewritten; ``&#0100;`` (``d``) and
    ``&#0110;`` (``n``) do not: they are no line break."""
    hint = rewrite.hint(())
    assert rewrite.hinted("x" * 600 + "&#010;", hint)
    assert rewrite.hinted("x" * 600 + "&#x00d;", hint)
    for other in ("&#0100;", "&#0110;", "&#0;", "&#01;"):
        assert not rewrite.hinted("x" * 600 + other, hint), other
        line = "QUJD" * 8
        assert rewrite.rewrite(line + other + line, ()) is None, other
