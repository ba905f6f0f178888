"""The scrubber passes over a short text that cannot read as four characters in a row of any
secret, however its escapes are read, without reading it through them; and that quick check
never changes what is scrubbed: a seeded fuzz compares it with the full search of every text."""

from __future__ import annotations

import random

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber
from tests.unit.test_scrub_double import ENCODERS
from tests.unit.test_scrub_ends import ALPHABET, AROUND, _forms, read_through_escapes

SECRETS = ("p4ss\\word-one", "second secret+x", "third-secret-3")


def test_short_texts_with_escapes_but_no_secret_are_not_read_through_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Short strings with escapes (a JSON body's values) that cannot hold any of three secrets
    come out as they were and no text is read through its escapes (each was, twice over)."""
    views = read_through_escapes(monkeypatch)
    scrubber = Scrubber(SECRETS)
    said = ["a%20b&amp;", "x\\u0041", "caf%C3%A9 &lt;b&gt;", "100%25 &amp; \\n", "tab\\t&quot;"]
    assert scrubber.value(said) == said
    assert views == []
    assert scrubber.text("k=third-secret-3%20") == f"k={REDACTED}%20"  # one that holds one


def test_a_short_text_that_may_hold_a_secret_is_still_searched() -> None:
    """Texts whose characters could read as a secret only through two rounds of escapes, or as
    a cut-off start, are searched and scrubbed."""
    scrubber = Scrubber(["Zq9v-Lx"])
    assert scrubber.text("q=%255Aq9v-Lx;") == f"q={REDACTED};"
    assert scrubber.text("q=&amp;#90;q9v") == f"q={REDACTED}"
    assert scrubber.text("q=%26%23x5A%3Bq9v") == f"q={REDACTED}"


def _secret(rnd: random.Random) -> str:
    """A secret of random characters, some of them those escapes are written in."""
    pool = rnd.choice([ALPHABET, list("0123456789abcdefABCDEF%&#;xu\\+ "), list("aaab1")])
    return "".join(rnd.choice(pool) for _ in range(rnd.randint(4, 14)))


def _piece(rnd: random.Random, secrets: list[str]) -> str:
    """A piece of a text: a secret or a part of it, written as it is or encoded once or twice
    (whole or character by character), or an escape, or characters escapes are written in."""
    roll = rnd.random()
    if roll < 0.45:
        secret = rnd.choice(secrets)
        part = secret
        if rnd.random() < 0.5:
            part = secret[rnd.randrange(len(secret)) :][: rnd.randint(1, len(secret))]
        for _ in range(rnd.choice([0, 1, 1, 2, 2])):
            if rnd.random() < 0.5:
                part = ENCODERS[rnd.choice(sorted(ENCODERS))](part)
            else:
                part = "".join(rnd.choice(_forms(c)) for c in part)
        return part if rnd.random() < 0.8 else part[: rnd.randint(0, len(part))]
    if roll < 0.75:
        return rnd.choice(AROUND)
    return "".join(
        rnd.choice("%&#;\\ux0123456789abcdefABCDEF+ -Zq") for _ in range(rnd.randint(1, 5))
    )


def test_the_quick_check_never_changes_what_is_scrubbed() -> None:
    """3,000 seeded short texts (pieces of one to three secrets, whole, cut or in parts, written
    as they are or encoded once or twice, between escapes and escape characters): each comes
    out of the scrubber the same with the quick check as with every secret searched in full.
    Both kinds of text are in the sample: ones the full search changes, ones it passes over."""
    rnd = random.Random(20261209)
    changed = passed = 0
    for _ in range(3000):
        secrets = [_secret(rnd) for _ in range(rnd.randint(1, 3))]
        text = "".join(_piece(rnd, secrets) for _ in range(rnd.randint(1, 5)))[:500]
        quick, full = Scrubber(secrets), Scrubber(secrets)
        full.quick = False
        expected = full.text(text)
        assert quick.text(text) == expected, (secrets, text)
        changed += expected != text
        passed += not quick._may_hold(text)[0]
    assert changed > 500 and passed > 300, (changed, passed)
