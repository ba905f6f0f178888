"""A secret that overlaps itself (``aaaa``, ``abab``, ``abcab``), or two secrets that overlap each
other, is redacted at every place the text holds it: no character of a place that held a secret
is kept, as it is or written in an encoded form."""

from __future__ import annotations

import random

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber

R = REDACTED


@pytest.mark.parametrize(
    ("secrets", "said", "scrubbed"),
    [
        (["aaaa"], "x aaaaaaa y", f"x {R} y"),  # three a's were kept: the match at 3
        (["aaaa"], "x aaaaa y", f"x {R} y"),
        (["abab"], "x abababab y", f"x {R} y"),
        (["abab"], "x ababa y", f"x {R}a y"),  # one place: its last a is no part of it
        (["abcab"], "x abcabcab y", f"x {R} y"),
        (["ab12ab"], "ab12ab12ab|", f"{R}|"),
        (["aaaa"], "a&#97;aaaaa|", f"{R}|"),  # an encoded place beside plain ones
        (["aaaa"], "%61aaaaaa|", f"{R}|"),
        (["abcd", "cdef"], "x abcdef y", f"x {R} y"),  # two secrets overlapping each other
        (["abcd", "cdef"], "x ab%63def y", f"x {R} y"),
    ],
)
def test_every_place_of_a_secret_is_redacted(secrets: list[str], said: str, scrubbed: str) -> None:
    """Each place that holds a secret is redacted whole, overlapping places too (before: the
    places a left-to-right search stepping past each match skipped were kept)."""
    assert Scrubber(secrets).text(said) == scrubbed


def _forms(c: str) -> list[str]:
    o = ord(c)
    return [c, c, c, f"&#{o};", f"&#x{o:x};", f"\\u{o:04x}", f"%{o:02X}"]


def test_a_self_overlapping_secret_in_mixed_forms_leaves_nothing() -> None:
    """400 seeded cases: a text of overlapping copies of a periodic secret (its characters each
    written as they are or encoded), between characters no secret holds, comes out with every
    character that was part of a place holding the secret redacted, and nothing else."""
    rnd = random.Random(20261207)
    for _ in range(400):
        unit = "".join(rnd.choice("ab1") for _ in range(rnd.randint(1, 3)))
        secret = (unit * 8)[: rnd.randint(max(4, len(unit) + 1), 9)]
        stream, pieces = "", []
        for _ in range(rnd.randint(1, 6)):
            if rnd.random() < 0.3:
                chunk = rnd.choice(["|", "x", "yz", "&amp;", "\\n", "%20"])
            else:
                chunk = (unit * 12)[: rnd.randint(1, 12)]
            for c in chunk if chunk[0] in "ab1" else [chunk]:
                stream += c if len(c) == 1 else "|"  # an escape reads as no character of it
                pieces.append(rnd.choice(_forms(c)) if c in "ab1" else c)
        pieces.append("|end")
        stream += "|"
        covered = {
            i + k
            for i in range(len(stream))
            if stream.startswith(secret, i)
            for k in range(len(secret))
        }
        expected, last = "", False
        for i, piece in enumerate(pieces):
            if i in covered:
                expected += "" if last else R
            else:
                expected += piece
            last = i in covered
        said = "".join(pieces)
        assert Scrubber([secret]).text(said) == expected, (secret, said)
