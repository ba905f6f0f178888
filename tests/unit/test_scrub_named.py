"""The scrubber finds a secret written with HTML5 named character references (``&sol;``,
``&plus;``, ``&equals;``… as PHP's ``htmlentities(ENT_HTML5)`` writes them, or any other name the
HTML5 table gives a character), mixed with numeric references, with their ``&`` escaped again, or
in a JSON string; a page cut inside them loses the secret's start. Named references of other text
are left as they were."""

from __future__ import annotations

import html.entities
import json
from collections.abc import Callable

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber

SECRET = 'Pa/ss+w=rd:v1._#!?@&<"x'
NAMES: dict[str, list[str]] = {}
for _name, _char in sorted(html.entities.html5.items()):
    if _name.endswith(";") and len(_char) == 1:
        NAMES.setdefault(_char, []).append(_name)
# what PHP's htmlentities($s, ENT_HTML5) writes for the ASCII characters it escapes
PHP = {
    "/": "sol;",
    "+": "plus;",
    "=": "equals;",
    ":": "colon;",
    ".": "period;",
    "_": "lowbar;",
    "#": "num;",
    "!": "excl;",
    "?": "quest;",
    "@": "commat;",
    "&": "amp;",
    "<": "lt;",
    '"': "quot;",
}


def _named(secret: str, pick: int = 0) -> str:
    """``secret`` with every character that has an HTML5 name written by it (PHP's, or the
    table's ``pick``-th name for that character)."""
    out = []
    for c in secret:
        names = NAMES.get(c)
        if not names:
            out.append(c)
            continue
        name = PHP.get(c, names[0]) if pick == 0 else names[pick % len(names)]
        out.append("&" + name)
    return "".join(out)


NAMED: dict[str, Callable[[str], str]] = {
    "htmlentities(ENT_HTML5)": _named,
    "the table's other names (&AMP;, &UnderBar;, &lbrack;…)": lambda s: _named(s, 1),
    "mixed with numeric references, character by character": lambda s: "".join(
        (f"&#{ord(c)};", _named(c), c)[i % 3] for i, c in enumerate(s)
    ),
    "escaped again (&amp;sol;)": lambda s: _named(s).replace("&", "&amp;"),
    "in a JSON string": lambda s: json.dumps(_named(s))[1:-1],
}


@pytest.mark.parametrize("form", sorted(NAMED))
def test_a_secret_written_with_html5_named_references_is_redacted(form: str) -> None:
    """A partner's HTML page that quotes the secret with named references has it replaced, the
    words around kept. Before, ``&sol;``, ``&plus;``, ``&equals;``… hid it from the scrubber."""
    written = NAMED[form](SECRET)
    assert "equals;" in written or "colon;" in written, written  # a name XML does not know
    said = f"<p>AppSecret &lsquo;{written}&rsquo; &eacute;chec &amp; 100%</p>"
    assert Scrubber([SECRET]).text(said) == (
        f"<p>AppSecret &lsquo;{REDACTED}&rsquo; &eacute;chec &amp; 100%</p>"
    )


@pytest.mark.parametrize("form", sorted(NAMED))
def test_a_reply_cut_inside_named_references_loses_the_secret_start(form: str) -> None:
    """A page cut part way through the secret so written (four characters of it or more, even
    inside a reference: ``&so``) ends in <redacted>. Before, the start was kept."""
    written = NAMED[form](SECRET)
    head = len(NAMED[form](SECRET[:4]))
    scrub = Scrubber([SECRET])
    for cut in range(head, len(written)):
        assert scrub.text("reply: " + written[:cut]) == f"reply: {REDACTED}", written[:cut]


def test_named_references_that_are_not_the_secret_are_kept() -> None:
    """Named references of other text, of a secret with one character changed, unknown names,
    and ``&hyphen;`` (U+2010 in the HTML5 table, not the secret's ``-``) stay as they were."""
    secret = "tb-key/9c1e+Q=="
    scrub = Scrubber([secret])
    kept = [
        "tb&hyphen;key&sol;9c1e&plus;Q&equals;&equals;",  # ‐ is not -
        "tb-key&sol;9c1f&plus;Q&equals;&equals;",  # one character changed
        "tb-key&solx;9c1e&plus;Q&equals;",  # no such name
        "&lsquo;caf&eacute;&rsquo; &amp;&nbsp;&NotEqualTilde; &copy 2026",
    ]
    assert scrub.value(kept) == kept
    assert scrub.text("k=tb-key&sol;9c1e&plus;Q&equals;&equals;.") == f"k={REDACTED}."


@pytest.mark.parametrize(
    "amp",
    ["\\u0026", "&#38;", "&#038;", "&#x26;", "&#X26;", "%26"],
    ids=["json-u0026", "dec", "dec-zeros", "hex", "hex-upper", "percent"],
)
@pytest.mark.parametrize("size", ["short", "long"])
def test_named_references_whose_ampersand_is_escaped_are_redacted(amp: str, size: str) -> None:
    """A named reference whose ``&`` is written ``\\u0026`` (Go's encoding/json), ``&#38;``,
    ``&#x26;`` or ``%26`` (``ab\\u0026sol;cd\\u0026plus;…``) reads as the secret too: redacted,
    in a short text and in a long one. Before, kept (the numeric ``\\u0026#47;`` was found)."""
    secret = "ab/cd+ef=gh:ij"
    written = "".join(f"{amp}{PHP[c]}" if c in PHP else c for c in secret)
    pad = "x" * (0 if size == "short" else 600)
    scrub = Scrubber([secret])
    assert scrub.text(f"{pad}bad {written} y") == f"{pad}bad {REDACTED} y"
    mixed = f"ab{amp}sol;cd+ef=gh:ij"  # one name, the rest as it is
    assert scrub.text(f"{pad}key {mixed}.") == f"{pad}key {REDACTED}."
