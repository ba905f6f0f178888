"""The scrubber finds base64 that holds a secret (its own, or that of a JSON body or of Basic
credentials holding it, at any of the three alignments) however the base64 is broken into lines:
PEM's 64 and MIME's 76 characters a line, ``\\n`` or ``\\r\\n``, a JSON string's ``\\n``,
indented XML, HTML5's ``&NewLine;``. Wrapped base64 that holds no secret, and ordinary lines,
are left as they were."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.auth import REDACTED
from adapters.auth.forms import Basic
from adapters.auth.scrub import Scrubber
from tests.unit.test_scrub_hex_base64 import _core


def _wrapped(data: bytes, width: int, newline: str) -> str:
    encoded = base64.b64encode(data).decode()
    return newline.join(encoded[i : i + width] for i in range(0, len(encoded), width))


WRAPS = {
    "PEM, 64 a line": (64, "\n"),
    "MIME, 76 a line, CRLF": (76, "\r\n"),
    "in a JSON string": (64, "\\n"),
    "XML, indented": (76, "\n      "),
    "HTML5 &NewLine;": (64, "&NewLine;"),
    "XML reference &#10;": (76, "&#10;"),
}


@pytest.mark.parametrize("wrap", sorted(WRAPS))
@pytest.mark.parametrize("shift", [0, 1, 2])
def test_wrapped_base64_holding_the_secret_is_redacted(wrap: str, shift: int) -> None:
    """A JSON body holding the secret, and Basic credentials, in base64 wrapped every 64 or 76
    characters: wherever a line break falls in the secret's base64, none of it is kept (the
    secret at each of the three alignments). Before, a break inside it hid it."""
    width, newline = WRAPS[wrap]
    secret = "tb>?~Key-9c1e??~q+/long-enough-to-span-a-line-break-ZZ" * 2
    body = json.dumps({"pad": "x" * (50 + shift), "password": secret, "n": 1}).encode()
    scrub = Scrubber([secret, Basic(user="gd-portal", password="p4ss-Word_1")])
    for raw in (body, b"gd-portal:p4ss-Word_1"):
        said = _wrapped(raw, width, newline)
        out = scrub.text(f"-----BEGIN-----{newline}{said}{newline}-----END-----")
        assert REDACTED in out, out
        assert out.startswith("-----BEGIN-----") and out.endswith("-----END-----"), out
        joined = out.replace(newline, "")
        hidden = secret.encode() if raw is body else b"p4ss-Word_1"
        core = _core(hidden, raw)
        for i in range(0, len(core) - 8):
            assert core[i : i + 8] not in joined, (i, out)


def test_base64_and_line_breaks_that_hold_no_secret_are_kept() -> None:
    """Wrapped base64 of a document, base64 of the secret with one character changed, and
    lines of code broken by newlines stay as they were."""
    secret = "tb>?~Key-9c1e??~q"
    scrub = Scrubber([secret])
    kept = [
        _wrapped(b"a partner's PDF, not a secret " * 20, 64, "\n"),
        _wrapped(b"token: tb>?~Key-9c1e??~r and more", 76, "\r\n"),
        "function_name_that_is_long\nanother_line_of_code_here\\n",
    ]
    assert scrub.value(kept) == kept
