"""A reply dense in escapes that ends in a ``\\`` (1 MB of backslashes, JSON of escaped Windows
paths cut off at a limit): its end is taken for a possible cut-off start, and the text before
that end (``text[:head]``) is read through its escapes once more. That reading is now taken
from the view of the whole text (:meth:`adapters.auth.written.View.upto`) instead of built
again: counted here in views built over the text, not timed (bench/secret_reads.py times it:
scrub_1m_backslashes_us, scrub_64k_json_paths_us).

The differential tests keep the former reading (a new view of ``text[:end]``; every family's
escapes sorted) and compare: a view taken from another reads as a new one at every end of
thousands of seeded texts, and the scrubber finds the same in thousands of texts mixing
escapes, backslash runs, secrets in every written form and cut-offs at the end."""

from __future__ import annotations

import json
import random
import re

import pytest

from adapters.auth import REDACTED, written
from adapters.auth.scrub import Scrubber

SECRETS = (
    "Gd-AppSecret-4b0e9f2a71d6",
    "p4ss\\word-one",
    "a%41b&c+d e;x",
    "中文secret99",
    'x"y/z\\n0\U0001f600q',
)
_MARKS = (("\\",), ("&",), ("%",), ("&", "\\", "%"), ("&", "\\", "%", "+"), ("%", "+"))


def _former_matches(text: str, marks: tuple[str, ...]) -> list[re.Match[str]]:
    """How the escapes were collected before: every family's, then all sorted."""
    found = [m for mark in marks if mark in text for m in written._FAMILIES[mark].finditer(text)]
    if len(found) > 1:
        found.sort(key=lambda m: m.start())
    return found


def _former_upto(view: written.View, end: int) -> written.View:
    """How ``text[:end]`` was read before: a new view of it."""
    return written.View(view.text[:end], view._marks)


def _forms(c: str, rng: random.Random) -> str:
    """``c`` written in one of the forms a partner's encoder writes (or twice over)."""
    code = ord(c)
    units = c.encode("utf-16-be", "surrogatepass")
    ways = [
        c,
        f"&#{code};",
        f"&#x{code:X};",
        f"&#{'0' * rng.randint(1, 12)}{code};",  # padded: no bound on an escape's width
        "".join(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2)),
        "".join(f"%{b:02X}" for b in c.encode()),
        "".join(f"%25{b:02X}" for b in c.encode()),  # percent-encoded twice
        f"&amp;#{code};",  # a reference whose & was escaped again
        json.dumps(c)[1:-1],
    ]
    return rng.choice(ways)


_NOISE = (
    "\\",
    "\\\\",
    "\\\\\\",
    "\\" * 17,
    "C:\\\\Users\\\\li\\\\",
    "\\u",
    "\\u00",
    "\\ud83d",
    "\\ud83d\\ude00",
    "\\n",
    '\\"',
    "&",
    "&#",
    "&#x4",
    "&amp;",
    "&lt;",
    "%",
    "%4",
    "%E4%B8%AD",
    "%E4%B8",
    "%C3",
    "+",
    " ",
    ";",
    "#",
    "u",
    "0",
    "41",
    "abc",
    "Gd-",
    "p4ss",
)


def _text(rng: random.Random) -> str:
    """A text of noise and secrets in every written form, cut off anywhere at its end."""
    parts = []
    for _ in range(rng.randint(1, 14)):
        if rng.random() < 0.3:
            secret = rng.choice(SECRETS)
            parts.append("".join(_forms(c, rng) for c in secret))
        else:
            parts.append(rng.choice(_NOISE) * rng.randint(1, 4))
    text = "".join(parts)
    if rng.random() < 0.6:
        text = text[: rng.randint(0, len(text))]
    if rng.random() < 0.1:
        text = text * rng.randint(10, 30)  # longer than the quick check's texts
    return text


def test_a_view_cut_reads_as_a_new_view_of_the_cut_text() -> None:
    """At every end of thousands of seeded texts, through every set of escapes, the view taken
    from the whole text's reads the same characters from the same places as a new one."""
    rng = random.Random(20261208)
    crossed = 0
    for _ in range(3000):
        text = _text(rng)
        marks = rng.choice(_MARKS)
        view = written.View(text, marks)
        for end in range(len(text) + 1) if len(text) < 200 else rng.sample(range(len(text)), 50):
            got, want = view.upto(end), written.View(text[:end], marks)
            assert (got.text, got.chars, got._at, got._from, got._to) == (
                want.text,
                want.chars,
                want._at,
                want._from,
                want._to,
            ), (text, marks, end)
            crossed += any(a < end < b for a, b in zip(view._from, view._to, strict=True))
    assert crossed > 1000  # ends inside an escape, read anew, were among them


def _scrubbed(texts: list[str], quick: bool) -> list[str]:
    out = []
    for text in texts:
        scrubber = Scrubber(SECRETS)
        scrubber.quick = quick
        out.append(scrubber.text(text))
    return out


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_the_scrubber_finds_what_it_found_before(
    monkeypatch: pytest.MonkeyPatch, quick: bool
) -> None:
    """Thousands of seeded texts: the scrubber's output is the former reading's, text by text;
    and some texts are redacted (the comparison is not of texts that hold nothing)."""
    rng = random.Random(quick)
    texts = [_text(rng) for _ in range(2000)]
    now = _scrubbed(texts, quick)
    with monkeypatch.context() as m:
        m.setattr(written.View, "upto", _former_upto)
        m.setattr(written, "_matches", _former_matches)
        before = _scrubbed(texts, quick)
    for text, a, b in zip(texts, now, before, strict=True):
        assert a == b, text
    assert sum(a != t for a, t in zip(now, texts, strict=True)) > 500


class _Views:
    """The lengths of the texts views were built over."""

    def __init__(self) -> None:
        self.sizes: list[int] = []


@pytest.fixture
def views(monkeypatch: pytest.MonkeyPatch) -> _Views:
    counted = _Views()
    build = written.View.__init__

    def init(self: written.View, text: str, marks: tuple[str, ...]) -> None:
        counted.sizes.append(len(text))
        build(self, text, marks)

    monkeypatch.setattr(written.View, "__init__", init)
    return counted


def _json_paths() -> str:
    """64 KiB of JSON of escaped Windows paths, cut off at a limit just after a ``\\``."""
    rows = [
        {"path": f"C:\\Users\\user{i}\\AppData\\Local\\Temp\\r_{i}.xlsx", "dir": f"D:\\q{i}\\"}
        for i in range(3000)
    ]
    body = json.dumps({"files": rows})
    return body[: body.rfind("\\", 0, 64 * 1024) + 1]


@pytest.mark.parametrize(
    "text", ["\\" * 200_000, "\\" * 200_001, _json_paths()], ids=["even", "odd", "json-paths"]
)
def test_a_text_ending_in_a_backslash_is_read_through_its_escapes_once(
    views: _Views, text: str
) -> None:
    """One view is built over the text (or all of it but its last characters), not a second
    for the text before its last ``\\``; views of what that view reads are not counted.
    Before: two."""
    Scrubber((SECRETS[0],)).text(text)
    assert sum(size > len(text) - 16 for size in views.sizes) == 1, views.sizes


def test_a_secret_cut_off_after_backslashes_is_still_found() -> None:
    """What the reading taken from the view finds: a secret's start at the end of a text of
    backslashes, written as JSON writes it, is redacted with the rest kept."""
    secret = SECRETS[1]
    text = "\\\\" * 50_000 + json.dumps(secret)[1:9]
    out = Scrubber((secret,)).text(text)
    assert out == "\\\\" * 50_000 + REDACTED
