"""The scrubber finds a secret however a partner's reply writes it: XML character references
(decimal, hexadecimal, any case, leading zeros), XML entities of ``& < > " '`` inside it, JSON
``\\uXXXX`` escapes (surrogate pairs too), percent-encoding, and any mix of them, one character at a
time; and a reply cut off inside such a form loses what it holds of the secret. Ordinary text,
escapes and all, is left as it was."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import pytest

from adapters.auth.scrub import Scrubber


def _utf16(s: str) -> list[int]:
    data = s.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


SECRET = "Pa5s&w<rd>\"誰'/ 😀x"

FORMS: dict[str, Callable[[str], str]] = {
    "decimal references": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "hexadecimal references": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "upper-case references, leading zeros": lambda s: "".join(f"&#X{ord(c):06X};" for c in s),
    "entities for some characters only": lambda s: s.replace("&", "&amp;").replace('"', "&quot;"),
    "apostrophe entity": lambda s: s.replace("&", "&amp;").replace("'", "&apos;"),
    "JSON, every character escaped": lambda s: "".join(f"\\u{u:04x}" for u in _utf16(s)),
    "percent-encoding": lambda s: urllib.parse.quote(s, safe=""),
    "form encoding": urllib.parse.quote_plus,
    "mixed, character by character": lambda s: "".join(
        (f"&#{ord(c)};", f"\\u{ord(c):04X}" if ord(c) < 0x10000 else c, urllib.parse.quote(c))[
            i % 3
        ]
        for i, c in enumerate(s)
    ),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_secret_written_in_an_encoded_form_is_redacted(form: str) -> None:
    """The encoded secret is replaced in a partner's words; the words around it are kept.
    Before, only the plain, XML-escaped and JSON-string forms were found."""
    written = FORMS[form](SECRET)
    assert written != SECRET
    said = f"AppSecret '{written}' 错误 &amp; 100% \\n"
    assert Scrubber([SECRET]).text(said) == "AppSecret '<redacted>' 错误 &amp; 100% \\n"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_reply_cut_inside_an_encoded_secret_loses_what_it_holds(form: str) -> None:
    """A text that ends part way through an encoded secret (four characters or more of it, even
    inside one character's escape) ends in <redacted>. Before, an encoded start was kept."""
    written = FORMS[form](SECRET)
    head = len(FORMS[form](SECRET[:4]))
    scrub = Scrubber([SECRET])
    for cut in range(head, len(written)):
        assert scrub.text("reply: " + written[:cut]) == "reply: <redacted>", written[:cut]


def test_text_with_escapes_but_no_secret_is_left_alone() -> None:
    """References, entities, JSON escapes and percent signs that are not the secret stay as they
    were, and a secret's first characters in the middle of a text are no secret; the secret
    itself, percent-encoded beside them, is found. Before, the encoded secret was kept."""
    secret = "tb-token-9c1e"
    text = "a &#65; b &amp; c \\u0041 d %41 e tb-t f &#x74;&#x62;- g "
    encoded = urllib.parse.quote(secret, safe="").replace("-", "%2D")
    assert Scrubber([secret]).text(text + encoded) == text + "<redacted>"
