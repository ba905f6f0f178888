"""A text read through one level of the escapes a reply may write a character in, and where each
character it reads came from: what lets :mod:`adapters.auth.scrub` find a secret in any written
form with plain string search, in time linear in the text whatever the secret.

The escapes: XML character references (decimal or hexadecimal, any case, leading zeros), XML's
named entities of ``& < > " '``, JSON's escapes (``\\uXXXX``, a surrogate pair, ``\\"``, ``\\/``,
``\\n``…), percent-encoded UTF-8 bytes and, read as a space, ``+``. Each is decoded where it stands
(:class:`View`), left to right, once: ``&amp;#65;`` reads ``&#65;``, as its writer meant. A
secret written by one encoder, or character by character in any mix of these forms, reads as
itself. A stray ``&``, ``%`` or ``\\`` just before a secret that begins with what completes an
escape (``%`` and ``41…``) makes one escape of both: :meth:`View.opened` finds the secret's start
there. What no encoder writes is not looked for: a secret's own ``\\``, ``%41`` or ``&#65;``
written as it is beside characters of it written encoded (written as it is throughout, the
scrubber's plain search finds it; written by one encoder, it reads as itself), or one quote
writing a secret's spaces as ``+`` and its ``+`` as it is.
"""

from __future__ import annotations

import bisect
import functools
import re

NOCHAR = "\udfff"
"""What an escape of no character reads as (a stray UTF-8 byte, a reference past U+10FFFF): a lone
surrogate, which no secret holds (secrets are decoded from UTF-8)."""
_XML = r"&#[0-9]+;|&#[xX][0-9A-Fa-f]+;|&(?:amp|lt|gt|quot|apos);"
_JSON = (
    r"\\u[dD][89abAB][0-9A-Fa-f]{2}\\u[dD][c-fC-F][0-9A-Fa-f]{2}"  # a surrogate pair
    r"|\\u[0-9A-Fa-f]{4}|\\[\"\\/bfnrt]"
)
_URL = r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"  # a run of bytes: a character may take several
ESCAPES = re.compile(f"{_XML}|{_JSON}|{_URL}")
# Each family apart: a pattern that starts with one literal character is searched for much faster,
# and no escape of one family holds the first character of another's, so none overlap.
_FAMILIES = {
    "&": re.compile(_XML),
    "\\": re.compile(_JSON),
    "%": re.compile(_URL),
    "+": re.compile(r"\+"),
}
KINDS = {
    "all": ("&", "\\", "%"),
    "all+": ("&", "\\", "%", "+"),  # ``+`` read as a space
    "xml": ("&",),
    "json": ("\\",),
    "url": ("%", "+"),
}
"""The escapes a view reads, by their first character: all of them, or one encoder's."""
_NAMED = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'"}
_SHORT = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode(escape: str) -> tuple[tuple[str, int], ...]:
    """The characters ``escape`` stands for, each with how many of its characters it takes. An
    escape of one character is kept in a cache; a longer one (a run of percent-encoded bytes, a
    megabyte of them in one reply; a reference padded with zeros) is read anew each time, so the
    cache holds only short keys and small values."""
    if len(escape) > _LONGEST:
        return _decode.__wrapped__(escape)
    return _decode(escape)


_LONGEST = 12  # characters of the longest escape of one character unpadded (a surrogate pair)


@functools.lru_cache(maxsize=4096)
def _decode(escape: str) -> tuple[tuple[str, int], ...]:
    if escape == "+":
        return ((" ", 1),)
    if escape[0] == "%":
        return _percent(escape)
    if escape[0] == "&":
        if escape[1] != "#":
            return ((_NAMED[escape], len(escape)),)
        hexa = escape[2] in "xX"
        digits = escape[3 if hexa else 2 : -1].lstrip("0") or "0"
        code = int(digits, 16 if hexa else 10) if len(digits) <= 8 else -1
        return ((_char(code), len(escape)),)
    if escape[1] != "u":
        return ((_SHORT[escape[1]], 2),)
    code = int(escape[2:6], 16)
    if len(escape) == 12:  # a surrogate pair
        code = 0x10000 + ((code - 0xD800) << 10) + (int(escape[8:12], 16) - 0xDC00)
    return ((_char(code), len(escape)),)


_OPENINGS = (
    *("&", "&#", "&#x", "&#0", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"),
    *("&q", "&qu", "&quo", "&quot", "&ap", "&apo", "&apos"),
    *("%", "%0", "\\", "\\u", "\\u0", "\\u00", "\\u000"),
)


@functools.lru_cache(maxsize=64)
def openers(secret: str) -> tuple[int, ...]:
    """Each count of ``secret``'s first characters that, written as they are, could end an
    escape begun just before them (``41`` after a stray ``%``)."""
    most = min(len(secret) - 1, 12)
    return tuple(
        a
        for a in range(1, most + 1)
        if any(ESCAPES.fullmatch(opening + secret[:a]) for opening in _OPENINGS)
    )


def _char(code: int) -> str:
    return chr(code) if 0 <= code <= 0x10FFFF else NOCHAR


def _percent(run: str) -> tuple[tuple[str, int], ...]:
    """A run of percent-encoded bytes, read as UTF-8; a byte that starts no character reads as
    :data:`NOCHAR` (so a run cut inside a character still reads the characters before)."""
    data = bytes.fromhex(run.replace("%", ""))
    if data.isascii():
        return tuple((chr(b), 3) for b in data)
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(data):
        b = data[i]
        n = 1 if b < 0x80 else 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4
        try:
            out.append((data[i : i + n].decode("utf-8"), 3 * n))
            i += n
        except UnicodeDecodeError:
            out.append((NOCHAR, 3))
            i += 1
    return tuple(out)


def _matches(text: str, marks: tuple[str, ...]) -> list[re.Match[str]]:
    """The escapes of the families ``marks`` in ``text``, in order."""
    held = [mark for mark in marks if mark in text]
    found = [m for mark in held for m in _FAMILIES[mark].finditer(text)]
    if len(held) > 1:  # one family's escapes come in order already
        found.sort(key=lambda m: m.start())
    return found


def holds(text: str) -> bool:
    """Whether ``text`` holds an escape (other than ``+``)."""
    return any(mark in text and _FAMILIES[mark].search(text) for mark in _STARTS)


_STARTS = ("&", "\\", "%")


def families(text: str, kind: str) -> tuple[str, ...]:
    """The families of escapes of ``kind`` whose first character ``text`` holds: two kinds with
    the same families read ``text`` the same, and none reads it as it is."""
    return tuple(mark for mark in KINDS[kind] if mark in text)


@functools.lru_cache(maxsize=64)
def kinds(secret: str) -> tuple[str, ...]:
    """The views in which ``secret`` is looked for: all escapes at once (``+`` read as a space
    if it has a space, and also not if it has a ``+`` too), and, if it holds what reads as an
    escape or its start (``%41``, ``\\n``, a ``&`` or ``%`` at its end), each encoder's alone,
    in which a secret that encoder wrote reads as itself."""
    found: tuple[str, ...] = ("all", "all+") if "+" in secret else ("all+",)
    found = found if " " in secret else ("all",)
    if "\\" in secret or ESCAPES.search(secret) or secret[-1] in "&%":
        found += ("xml", "json", "url")
    return found


class View:
    """``text`` read through its escapes of the families ``marks`` (see :func:`families`):
    :attr:`chars`, and where in ``text`` each came from."""

    __slots__ = ("_at", "_from", "_marks", "_to", "chars", "text")

    def __init__(self, text: str, marks: tuple[str, ...]) -> None:
        self.text, self._marks = text, marks
        pieces: list[str] = []
        self._at: list[int] = []  # the index in chars of each character read from an escape
        self._from: list[int] = []  # where its escape starts in text
        self._to: list[int] = []  # and ends
        last = n = 0
        for m in _matches(text, marks):
            at = m.start()
            if at > last:
                pieces.append(text[last:at])
                n += at - last
            escape = m.group()  # decode() inlined: a call less for each escape
            read = _decode(escape) if len(escape) <= _LONGEST else _decode.__wrapped__(escape)
            for c, width in read:
                pieces.append(c)
                self._at.append(n)
                self._from.append(at)
                self._to.append(at + width)
                n += 1
                at += width
            last = m.end()
        pieces.append(text[last:])
        self.chars = "".join(pieces)

    def upto(self, end: int) -> View:
        """The view of ``text[:end]`` read through the same escapes, as ``View(text[:end],
        marks)`` reads it, built from this one: the escapes wholly before ``end`` read the
        same (no pattern looks past its match, none holds another family's first character),
        and what is left of one ``end`` cuts (a character of it from where it starts) is read
        anew, alone; a text of a million escapes cut at its end costs copies, not a reading."""
        m = bisect.bisect_left(self._from, end)  # the characters read from escapes before end
        origin = end
        if m and self._to[m - 1] > end:  # end falls inside the escape of character m - 1
            m -= 1
            origin = self._from[m]
        n = self._at[m - 1] + 1 + (origin - self._to[m - 1]) if m else origin  # chars before
        rest = View(self.text[origin:end], self._marks)
        view = View.__new__(View)
        view.text, view._marks = self.text[:end], self._marks
        view.chars = self.chars[:n] + rest.chars
        view._at = self._at[:m] + [n + i for i in rest._at]
        view._from = self._from[:m] + [origin + i for i in rest._from]
        view._to = self._to[:m] + [origin + i for i in rest._to]
        return view

    @property
    def read(self) -> bool:
        """Whether any escape was read (else :attr:`chars` is the text)."""
        return bool(self._at)

    def start(self, i: int) -> int:
        """Where in the text character ``i`` starts (the text's end for ``len(chars)``)."""
        k = bisect.bisect_right(self._at, i) - 1
        if k < 0:
            return i
        if self._at[k] == i:
            return self._from[k]
        return self._to[k] + (i - self._at[k] - 1)

    def index(self, pos: int) -> int:
        """The character whose text holds position ``pos`` (or starts there)."""
        k = bisect.bisect_right(self._from, pos) - 1
        if k < 0:
            return pos
        if pos < self._to[k]:
            return self._at[k]
        return self._at[k] + 1 + (pos - self._to[k])

    def opened(
        self, secret: str, counts: tuple[int, ...], since: int = 0
    ) -> list[tuple[int, int, int]]:
        """Where an escape ends in the first ``a`` characters of ``secret`` written as they are
        (``a`` of ``counts``, see :func:`openers`): each as (the index in :attr:`chars` after
        that escape, where the secret starts in the text, ``a``); only escapes read at index
        ``since`` of :attr:`chars` or after."""
        found = []
        first = bisect.bisect_left(self._at, since)
        for k in range(first, len(self._to)):
            end = self._to[k]
            for a in counts:
                if end - a > self._from[k] and self.text.startswith(secret[:a], end - a):
                    found.append((self._at[k] + 1, end - a, a))
        return found
