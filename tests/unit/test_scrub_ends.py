"""What the scrubber leaves of a secret at a text's edges: a cut-off start that a wrong match
at the end would have hidden, a plain match that begins or ends inside an escape, a reference
padded with zeros; what it keeps in memory and reads; and two seeded fuzzes of the written forms
(whole secrets, and every cut-off start of at least four characters)."""

from __future__ import annotations

import gc
import html
import json
import random
import tracemalloc
import urllib.parse

import pytest

from adapters.auth import REDACTED, written
from adapters.auth.scrub import Scrubber

OAUTH = "B7f3c9d2e1a0-client-secret"  # starts with a hex letter: can end an escape
PASSWORD = "hunter2+Zq9vLx"


def test_a_cut_off_secret_is_redacted_when_another_could_end_an_escape_at_the_end() -> None:
    """A password cut off after ``%2B`` loses all it holds though the other secret starts with B."""
    said = "password=" + urllib.parse.quote(PASSWORD, safe="")[:10]  # hunter2%2B
    assert Scrubber([OAUTH, PASSWORD]).text(said) == "password=" + REDACTED
    assert Scrubber(["Bq7 Kx9+Lm2Zw"]).text("token=Bq7+Kx9%2B") == "token=" + REDACTED


def test_the_earliest_cut_off_start_of_any_secret_is_cut() -> None:
    """A longer secret's cut-off start at the very end does not hide a shorter one's before it."""
    longer = "Zq9v" + "K" * 20
    said = "password=" + urllib.parse.quote(PASSWORD, safe="")[:14]  # hunter2%2BZq9v
    assert Scrubber([longer, PASSWORD]).text(said) == "password=" + REDACTED


def test_a_long_percent_encoded_reply_leaves_nothing_in_memory() -> None:
    """Scrubbing a 300 KB percent-encoded reply keeps no memory afterwards (6 MB kept before)."""
    rnd = random.Random(5)
    said = "q=" + "".join(f"%{rnd.randrange(0x20, 0x7F):02X}" for _ in range(100_000))
    scrubber = Scrubber(["s3cr3t-passw0rd"])
    tracemalloc.start()
    try:
        scrubber.text(said)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024


def read_through_escapes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts the scrubber reads through their escapes from now on (each as it reads it)."""
    views: list[str] = []
    real = written.View

    def counted(text: str, marks: tuple[str, ...]) -> written.View:
        views.append(text)
        return real(text, marks)

    monkeypatch.setattr(written, "View", counted)
    return views


def test_a_short_text_with_a_stray_ampersand_is_not_read_through_escapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text with ``&`` or ``\\`` near its end, but no escape begun there, is searched as
    it is when no secret is written with them (each such text was read through its escapes)."""
    views = read_through_escapes(monkeypatch)
    scrubber = Scrubber(["second-secret-2", "third-secret-3"])
    for said in ("R&D dept", "C:\\ drive", "Tom & Jerry", "a & b & c", "ab"):
        assert scrubber.text(said) == said
    assert views == []


@pytest.mark.parametrize(
    ("secret", "said", "scrubbed"),
    [
        ("393\n", "x %33%393\n y", f"x {REDACTED} y"),
        ("7/a6", "x \\u0037/a6 y", f"x {REDACTED} y"),
        ("pa6\n&", "<e>" + html.escape("pa6\n&") + "</e>", f"<e>{REDACTED}</e>"),
        ("pass\\", json.dumps({"a": "pass\\", "b": 1}), f'{{"a": "{REDACTED}", "b": 1}}'),
    ],
)
def test_a_secret_found_as_it_is_takes_the_escapes_it_touches(
    secret: str, said: str, scrubbed: str
) -> None:
    """A plain match that begins or ends inside an escape takes that escape: no character of it,
    nor a lone backslash that breaks the JSON, is left."""
    assert Scrubber([secret]).text(said) == scrubbed


def test_a_cut_off_secret_in_references_padded_with_zeros_is_redacted() -> None:
    """A cut-off start written as references padded with 40 zeros is redacted whole."""
    secret = "abcdefgh"
    said = "k=" + "".join(f"&#{'0' * 40}{ord(c)};" for c in secret[:5])
    assert Scrubber([secret]).text(said) == "k=" + REDACTED


def _forms(c: str) -> list[str]:
    """Ways an encoder may write ``c``."""
    o = ord(c)
    found = [f"&#{o};", f"&#x{o:x};", f"&#X{o:X};", f"&#00{o};"]
    found.append({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}.get(c, f"&#{o};"))
    if o < 0x10000:
        found += [f"\\u{o:04x}", f"\\u{o:04X}"]
    else:
        v = o - 0x10000
        found.append(f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04x}")
    short = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\n": "\\n", "\t": "\\t"}
    if c in short:
        found.append(short[c])
    found += ["".join(f"%{b:02X}" for b in c.encode()), "".join(f"%{b:02x}" for b in c.encode())]
    if c == " ":
        found.append("+")
    if c not in "\\%&+":
        found += [c] * 3
    return found


ALPHABET = [*"abcdefXYZ0123456789ghjkmnpqrstuvwxyz", *"&%\\+ \"/<>'\n#;", "é", "中", "😀", "\t"]
AROUND = ["&amp;", "%20", "\\n", "&#65;", "+", "x", " ", "\\u00e9", "%E4%B8%AD", "&lt;", "\\\\"]


def test_a_secret_written_character_by_character_in_mixed_forms_is_redacted() -> None:
    """300 seeded cases: a secret written in a random form a character, quoted one to three
    times between random escapes, comes out redacted each time and nothing else changed."""
    rnd = random.Random(20261207)
    for _ in range(300):
        secret = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(4, 40)))
        body = "".join(rnd.choice(_forms(c)) for c in secret)
        before = "".join(rnd.choice(AROUND) for _ in range(rnd.randint(0, 4))) + "|"
        after = "|" + "".join(rnd.choice(AROUND) for _ in range(rnd.randint(0, 4)))
        times = rnd.randint(1, 3)
        said = before + " mid ".join([body] * times) + after
        expected = before + " mid ".join([REDACTED] * times) + after
        assert Scrubber([secret]).text(said) == expected, (secret, said)


def test_every_cut_off_start_of_a_secret_in_mixed_forms_is_redacted() -> None:
    """60 seeded secrets written in mixed forms, cut after every character written: each end
    that holds four or more of the secret's characters (not all) is redacted from its start."""
    rnd = random.Random(7)
    for _ in range(60):
        secret = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(5, 30)))
        parts = [rnd.choice(_forms(c)) for c in secret]
        scrubber, written_so_far = Scrubber([secret]), ""
        for k, part in enumerate(parts):
            for j in range(1, len(part) + 1):
                read = k + (j == len(part))
                if 4 <= read < len(secret):
                    said = "PRE[" + written_so_far + part[:j]
                    assert scrubber.text(said).startswith("PRE[" + REDACTED), (secret, said)
            written_so_far += part


def test_every_cut_off_start_is_redacted_beside_a_second_secret() -> None:
    """150 seeded pairs of secrets: every cut-off start of the first (four characters or more),
    in mixed forms, is redacted from its start whatever the second begins with."""
    rnd = random.Random(1)
    for _ in range(150):
        first = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(5, 20)))
        second = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(4, 20)))
        parts = [rnd.choice(_forms(c)) for c in first]
        scrubber, written_so_far = Scrubber([first, second]), ""
        for k, part in enumerate(parts):
            for j in range(1, len(part) + 1):
                if 4 <= k + (j == len(part)) < len(first):
                    said = "PRE[" + written_so_far + part[:j]
                    assert scrubber.text(said).startswith("PRE[" + REDACTED), (first, second, said)
            written_so_far += part
