"""Whether a long text may be rewritten (:func:`adapters.auth.rewrite.hinted`) is looked for with
patterns that each begin with a literal character, which Python's ``re`` skips to in C: one
pattern of several first characters was tried at every character of a text (0.7 ms of a 64 KiB
reply's 0.9 ms). What is found does not change: a seeded differential test compares the scrubber
with the one pattern it had before, kept here as the reference, on texts that quote a secret in
each form a partner may quote it back in, embedded in noise, and on noise alone."""

from __future__ import annotations

import base64
import functools
import json
import random
import re
import re._parser as sre_parse  # type: ignore[import-not-found,unused-ignore]
from collections.abc import Callable

import pytest

from adapters.auth import rewrite
from adapters.auth.scrub import Scrubber
from tests.unit.test_scrub_double import ENCODERS
from tests.unit.test_scrub_ends import _forms

# the reference: rewrite.hint and rewrite.hinted as they were, one pattern of every "&"
_OLD_AMP = r"(&amp;|\\u0026|&#0*38;|&#[xX]0*26;|%26|&)"


@functools.lru_cache(maxsize=64)
def _old_hint(named: tuple[str, ...]) -> re.Pattern[str]:
    name = "|".join(named)  # those names only, however many (any name, once past a dozen)
    named_ref = f"|{_OLD_AMP}(?:{name})" if named else ""
    return re.compile(f"&(?:#(?:0*1[03]|[xX]0*[aAdD]);|NewLine;){named_ref}")


def _old_hinted(text: str, hint: re.Pattern[str]) -> bool:
    if "\n" in text or "\r" in text:
        return True
    if "\\" in text and ("\\n" in text or "\\r" in text):
        return True
    if "%" in text and rewrite._PERCENT_BREAK.search(text):
        return True
    return any(mark in text for mark in ("&", "\\u0026", "%26")) and hint.search(text) is not None


_AMPS = ("&", "&amp;", "\\u0026", "&#38;", "&#x26;", "&#X26;", "%26")
_NAMED_CHARS = "/+=:._#!?@-"  # characters with HTML5 names (- has none of its own)


def _named(secret: str, rnd: random.Random) -> str:
    """``secret`` with its characters that have HTML5 names written so, each ``&`` written in
    one of the ways a reply may write it."""
    amp = rnd.choice(_AMPS)
    return "".join(
        amp + rnd.choice(rewrite._BY_CHAR[c]) if c in rewrite._BY_CHAR else c for c in secret
    )


def _wrapped(secret: str, rnd: random.Random) -> str:
    """Base64 of a JSON body that holds ``secret``, broken into lines (PEM's 64, MIME's 76)."""
    body = json.dumps({"items": ["x" * rnd.randint(0, 40)], "token": secret})
    text = base64.b64encode(body.encode()).decode()
    width = rnd.choice((64, 76))
    brk = rnd.choice(("\n", "\r\n", "\\n", "&#10;", "&#x0A;", "&NewLine;", "%0A", "\n  "))
    return brk.join(text[i : i + width] for i in range(0, len(text), width))


def _b64(secret: str, rnd: random.Random) -> str:
    data = secret.encode()
    if rnd.random() < 0.5:  # inside a longer text: a core at one of three offsets
        data = ("k" * rnd.randint(0, 5) + json.dumps({"s": secret})).encode()
    text = base64.b64encode(data).decode()
    if rnd.random() < 0.5:
        text = text.replace("+", "-").replace("/", "_")
    return text.rstrip("=") if rnd.random() < 0.5 else text


FORMS: dict[str, Callable[[str, random.Random], str]] = {
    "as it is": lambda s, rnd: s,
    "encoded": lambda s, rnd: ENCODERS[rnd.choice(sorted(ENCODERS))](s),
    "mixed": lambda s, rnd: "".join(rnd.choice(_forms(c)) for c in s),
    "twice": lambda s, rnd: ENCODERS[rnd.choice(sorted(ENCODERS))](
        ENCODERS[rnd.choice(sorted(ENCODERS))](s)
    ),
    "html5 names": _named,
    "html5 names escaped": lambda s, rnd: ENCODERS["xml text"](_named(s, rnd)),
    "hex": lambda s, rnd: rnd.choice((s.encode().hex(), s.encode().hex().upper())),
    "base64": _b64,
    "base64 wrapped": _wrapped,
}
NOISE = (
    *("&amp;", "&lt;b&gt;", "&#13;", "&#x0a;", "&#X0D;", "&NewLine;", "&nbsp;", "&eacute;"),
    *("&sol;", "&plus;", "&equals;", "&amp;sol;", "\\u0026plus;", "%26equals;", "&#38;colon;"),
    *("&#x26;period;", "&lowbar", "&sol", "\n", "\r\n", "\\n", "\\r", "%0A", "%0d", "%20", "+"),
    *("\\u00e9", "%E4%B8%AD", "\\\\", "\\/", "; ", "#", "&", "%", "\\", " ", "x" * 200),
    *("<soap:Fault><faultstring>AppSecret 错误</faultstring></soap:Fault>", "a%20b&amp;"),
)


def _secret(rnd: random.Random) -> str:
    pool = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789" + _NAMED_CHARS
    return "".join(rnd.choice(pool) for _ in range(rnd.randint(8, 24)))


def _noise(rnd: random.Random, size: int) -> str:
    pieces: list[str] = []
    while sum(len(piece) for piece in pieces) < size:
        if rnd.random() < 0.2:  # a run of base64 (a line of it, before a break)
            pieces.append(base64.b64encode(rnd.randbytes(rnd.randint(12, 60))).decode())
        else:
            pieces.append(rnd.choice(NOISE))
    return "".join(pieces)


def _scrubbed(secrets: list[str], text: str, quick: bool) -> str:
    scrubber = Scrubber(secrets)
    scrubber.quick = quick
    return scrubber.text(text)


def test_long_texts_are_scrubbed_as_with_the_one_pattern_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """3,000 seeded texts, short and long (to 4 KiB), each the secret in one of the forms a
    partner quotes it back in (as it is, encoded once, in mixed escapes or twice, with HTML5
    names and their ``&`` written seven ways, hex, base64 alone or of a longer text, base64
    wrapped with each kind of break), cut off or not, between noise of references, breaks and
    base64, and a quarter noise alone: each comes out of the scrubber, with the quick check and
    without, as it did with the one pattern before. Texts of each kind are in the sample:
    changed, and rewritten or not."""
    rnd = random.Random(20261208)
    hinted = changed = 0
    kinds = sorted(FORMS)
    for i in range(3000):
        secrets = [_secret(rnd) for _ in range(rnd.randint(1, 2))]
        text = _noise(rnd, rnd.choice((0, 40, 300, 800, 3000)))
        if i % 4:
            quoted = FORMS[kinds[i % len(kinds)]](rnd.choice(secrets), rnd)
            if rnd.random() < 0.15:  # cut off inside it
                text += quoted[: rnd.randint(4, len(quoted))]
            else:
                text += quoted + _noise(rnd, rnd.choice((0, 10, 200, 1000)))
        for quick in (True, False):
            with monkeypatch.context() as old:
                old.setattr(rewrite, "hint", _old_hint)
                old.setattr(rewrite, "hinted", _old_hinted)
                expected = _scrubbed(secrets, text, quick)
            assert _scrubbed(secrets, text, quick) == expected, (secrets, text, quick)
        changed += expected != text
        hinted += _old_hinted(text, _old_hint(rewrite.names(tuple(secrets))))
    assert 1500 < changed < 2800, changed
    assert 500 < hinted < 2800, hinted


def test_what_may_be_rewritten_is_what_the_one_pattern_found() -> None:
    """60,000 seeded short texts of the pieces a reference to a break or a name is made of, for
    no name, one, three and more than a dozen sought: ``hinted`` answers as before."""
    rnd = random.Random(8)
    pieces = [
        *("&", "#", "1", "0", "3", "x", "X", "a", "A", "d", "D", ";", "amp;", "38;", "26;"),
        *("\\", "u0026", "%", "26", "%26", "NewLine;", "sol;", "plus;", "equals;", "lowbar;"),
        *("q", " ", "nbsp;", "&#x26;", "&#038;", "\\u0026", "\n", "%0a", "\\n"),
    ]
    many = rewrite.names(("/+=:._#!?@$%*()[]{}",))
    assert len(many) > 12
    yes = 0
    for named in ((), ("equals;",), ("plus;", "slash;", "sol;"), many):
        new = rewrite.hint(named)
        for _ in range(15_000):
            text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
            found = _old_hinted(text, _old_hint(named))
            assert rewrite.hinted(text, new) is found, (named, text)
            yes += found
    assert 10_000 < yes < 50_000, yes


@pytest.mark.parametrize("named", [(), ("equals;",), ("plus;", "sol;")])
def test_each_hint_pattern_begins_with_a_literal(named: tuple[str, ...]) -> None:
    """Each pattern ``hinted`` searches a text with begins with one literal character, so the
    search skips in C to where it may match (before: one pattern for every way of writing a
    ``&``, which began with a group of alternatives, as soon as a name was sought)."""
    hint = rewrite.hint(named)
    patterns = [hint] if isinstance(hint, re.Pattern) else [p for p in hint if p is not None]
    for pattern in patterns:
        first = sre_parse.parse(pattern.pattern)[0][0]
        assert first == sre_parse.LITERAL, pattern.pattern
