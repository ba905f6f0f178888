"""A secret written twice over (percent-encoding of a percent-encoded value, ``%2525``-style;
XML-escaped JSON; a JSON string of a URL...) is found as surely as one written once: the
scrubber reads a text through its escapes again, round after round, until a round reads
nothing new or the second round is done."""

from __future__ import annotations

import html
import json
import random
import re
import urllib.parse
from collections.abc import Callable
from urllib.parse import quote

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber
from tests.unit.test_scrub_ends import ALPHABET, AROUND, _forms


def _utf16(s: str) -> list[int]:
    data = s.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


ENCODERS: dict[str, Callable[[str], str]] = {
    "xml": lambda s: html.escape(s, quote=True),
    "xml text": lambda s: html.escape(s, quote=False),
    "decimal references": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "hexadecimal references": lambda s: "".join(f"&#x{ord(c):X};" for c in s),
    "json": lambda s: json.dumps(s)[1:-1],
    "json unicode": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json php": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json every character": lambda s: "".join(f"\\u{u:04x}" for u in _utf16(s)),
    "percent": lambda s: urllib.parse.quote(s, safe=""),
    "percent path": urllib.parse.quote,
    "percent lower": lambda s: re.sub("%..", lambda m: m.group().lower(), quote(s, safe="")),
    "form": lambda s: urllib.parse.quote_plus(s),
}


def _mixed(rnd: random.Random) -> Callable[[str], str]:
    return lambda s: "".join(rnd.choice(_forms(c)) for c in s)


R = REDACTED
ESCAPED_JSON = (
    "<e>{&quot;k&quot;: &quot;k\\&quot;ey&lt;1&gt;z&quot;}</e>"  # html.escape(json.dumps)
)
TWICE_REFERENCES = "".join(f"&amp;#{ord(c)};" for c in "s3cr3t-!")


@pytest.mark.parametrize(
    ("secret", "said", "scrubbed"),
    [
        ("tb-token-9c1e&x", "t=tb-token-9c1e%2526x&y=1", f"t={R}&y=1"),  # %2526: %26, &
        ("pa ss/wörd", "u=" + quote(quote("pa ss/wörd", safe="")) + "&v", f"u={R}&v"),
        ('k"ey<1>z', ESCAPED_JSON, f"<e>{{&quot;k&quot;: &quot;{R}&quot;}}</e>"),
        ("Zq9v%41Lx", "q=Zq9v%252541Lx;", f"q={R};"),  # a secret holding %41, encoded twice
        ("s3cr3t-!", f"<a>{TWICE_REFERENCES}</a>", f"<a>{R}</a>"),
    ],
)
def test_a_secret_encoded_twice_is_redacted(secret: str, said: str, scrubbed: str) -> None:
    """Each text holds the secret encoded twice and comes out redacted (kept whole before)."""
    assert Scrubber([secret]).text(said) == scrubbed


def test_a_secret_encoded_twice_by_any_two_encoders_is_redacted() -> None:
    """600 seeded cases: a random secret written by one encoder the scrubber reads (XML, JSON,
    percent-encoding, each in several styles, or character by character in mixed forms), that
    written by another, quoted between random escapes, comes out redacted and nothing else
    changed (a second encoding kept it whole before)."""
    rnd = random.Random(20261208)
    names = sorted(ENCODERS)
    for _ in range(600):
        secret = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(4, 24)))
        first, second = (
            ENCODERS[rnd.choice(names)] if rnd.random() < 0.8 else _mixed(rnd) for _ in "12"
        )
        twice = second(first(secret))
        before = "".join(rnd.choice(AROUND) for _ in range(rnd.randint(0, 3))) + "|"
        after = "|" + "".join(rnd.choice(AROUND) for _ in range(rnd.randint(0, 3)))
        said = before + twice + after
        assert Scrubber([secret]).text(said) == before + REDACTED + after, (secret, said)


@pytest.mark.parametrize(
    "twice",
    [
        lambda s: quote(quote(s, safe=""), safe=""),
        lambda s: html.escape("".join(f"&#{ord(c)};" for c in s)),
        lambda s: quote(json.dumps(s)[1:-1], safe=""),
    ],
    ids=["percent twice", "references as XML text", "JSON in a URL"],
)
def test_a_reply_cut_inside_a_secret_encoded_twice_loses_what_it_holds(
    twice: Callable[[str], str],
) -> None:
    """A text that ends part way through a secret encoded twice (four characters of it or more,
    even inside an escape) ends in <redacted> (its start was kept before)."""
    secret = 'tb-"tok"/én-9c1e&x'
    written = twice(secret)
    scrub = Scrubber([secret])
    for cut in range(len(twice(secret[:4])), len(written)):
        assert scrub.text("reply: " + written[:cut]) == "reply: " + REDACTED, written[:cut]


def test_every_cut_off_start_of_a_secret_encoded_twice_is_redacted() -> None:
    """300 seeded secrets written by two encoders, cut after every character from the fourth
    of the secret on: each such end is redacted from its start."""
    rnd = random.Random(6)
    names = sorted(ENCODERS)
    for _ in range(300):
        secret = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(5, 16)))
        first, second = (ENCODERS[rnd.choice(names)] for _ in "12")
        written = second(first(secret))
        scrub = Scrubber([secret])
        for cut in range(len(second(first(secret[:4]))), len(written)):
            said = "PRE[" + written[:cut]
            assert scrub.text(said) == "PRE[" + REDACTED, (secret, said)
