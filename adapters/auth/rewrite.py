"""A text rewritten where the scrubber's search cannot read it as it is, with a map back.

HTML5 named character references (``&sol;``, ``&plus;``, ``&equals;``, ``&lowbar;``,
``&NewLine;``… every name of one character in :data:`html.entities.html5`, with its ``;``, as
PHP's ``htmlentities(ENT_HTML5)`` writes them) are rewritten as the numeric references of the
same characters (``&#47;``), which :mod:`adapters.auth.written` reads in any mix with its other
escapes, encoded twice and cut off; one whose ``&`` was escaped again (``&amp;sol;``) as
``&amp;#47;``. XML's own five (``&amp;`` ``&lt;`` ``&gt;`` ``&quot;`` ``&apos;``) are read there
already and are left as they are. Names of two characters (``&NotEqualTilde;``), names without
their ``;`` and names the table lacks stay as they are: they read as no character of a secret.

Every secret is searched in the text as it came as well.
"""

from __future__ import annotations

import bisect
import functools
import html.entities
import re

_XML = frozenset({"amp", "lt", "gt", "quot", "apos"})  # read by adapters.auth.written already
NAMED: dict[str, str] = {
    name[:-1]: char
    for name, char in html.entities.html5.items()
    if name.endswith(";") and len(char) == 1 and name[:-1] not in _XML
}
"""Each HTML5 name (without its ``;``) of one character, but XML's five."""
NAMED_CHARS = frozenset(NAMED.values())
"""The characters a named reference that :mod:`adapters.auth.written` does not read may write."""
_BY_CHAR: dict[str, list[str]] = {}
for _name, _char in NAMED.items():
    _BY_CHAR.setdefault(_char, []).append(_name + ";")

_FEW = 12  # names looked for one by one; more, and a text with a "&" is read for any name
_NAME = re.compile(r"&(amp;)?(?!(?:amp|lt|gt|quot|apos);)([A-Za-z][A-Za-z0-9]{1,31});")


class Rewritten:
    """``text`` rewritten by edits (where each began and ended in the text as it came, and what
    took its place): :attr:`text`, and where a place in it stands in the text as it came."""

    __slots__ = ("_ends", "_new", "_new_ends", "_starts", "text")

    def __init__(self, text: str, edits: list[tuple[int, int, str]]) -> None:
        pieces: list[str] = []
        self._starts: list[int] = []  # where each edit began in the text as it came
        self._ends: list[int] = []  # and ended
        self._new: list[int] = []  # where its replacement begins in the rewritten text
        self._new_ends: list[int] = []  # and ends
        last = n = 0
        for begin, end, put in edits:
            pieces += [text[last:begin], put]
            n += begin - last
            self._starts.append(begin)
            self._ends.append(end)
            self._new.append(n)
            n += len(put)
            self._new_ends.append(n)
            last = end
        pieces.append(text[last:])
        self.text = "".join(pieces)

    def begin(self, i: int) -> int:
        """Where a place that begins at ``i`` of the rewritten text begins in the text as it
        came (a place begun inside a replacement begins where its edit did)."""
        k = bisect.bisect_right(self._new, i) - 1
        if k < 0:
            return i
        if i < self._new_ends[k]:
            return self._starts[k]
        return self._ends[k] + i - self._new_ends[k]

    def end(self, i: int) -> int:
        """Where a place that ends at ``i`` of the rewritten text ends in the text as it came (a
        place ended inside a replacement ends where its edit did)."""
        k = bisect.bisect_left(self._new, i) - 1
        if k < 0:
            return i
        return self._ends[k] + max(0, i - self._new_ends[k])


@functools.lru_cache(maxsize=64)  # as the scrubber's other caches of secrets
def names(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """The HTML5 names (with their ``;``) of the characters of ``secrets`` that
    :mod:`adapters.auth.written` does not read: a text that holds none of them holds no secret
    written with them."""
    chars = set().union(*secrets) & NAMED_CHARS
    return tuple(sorted(name for c in chars for name in _BY_CHAR[c]))


def may_need(read: frozenset[str], named: tuple[str, ...]) -> bool:
    """Whether a short text whose first reading reads as ``read`` (see
    :func:`adapters.auth.reach.first`) may be rewritten: it has the characters of one of the
    ``named`` (:func:`names`)."""
    return "&" in read and ";" in read and any(read.issuperset(name) for name in named)


def hinted(text: str, named: tuple[str, ...]) -> bool:
    """Whether ``text`` may be rewritten: it holds one of the ``named`` (a ``&``, if there are
    more than :data:`_FEW`)."""
    if not named or "&" not in text:
        return False
    return len(named) > _FEW or any(name in text for name in named)


def rewrite(text: str, named: tuple[str, ...]) -> Rewritten | None:
    """``text`` with its named references (if it may hold one of the ``named``) rewritten as
    numeric ones; None if it holds none."""
    edits: list[tuple[int, int, str]] = []
    if named and "&" in text:
        edits += _named(text)
    if not edits:
        return None
    return Rewritten(text, edits)


def _named(text: str) -> list[tuple[int, int, str]]:
    """Each named reference of ``text`` to rewrite as a numeric one (its ``&`` escaped as it
    was: ``&amp;sol;`` as ``&amp;#47;``)."""
    found = []
    for m in _NAME.finditer(text):
        char = NAMED.get(m.group(2))
        if char is not None:
            amp = "&amp;" if m.group(1) else "&"
            found.append((m.start(), m.end(), f"{amp}#{ord(char)};"))
    return found
