"""A text rewritten where the scrubber's search cannot read it as it is, with a map back.

HTML5 named character references (``&sol;``, ``&plus;``, ``&equals;``, ``&lowbar;``,
``&NewLine;``… every name of one character in :data:`html.entities.html5`, with its ``;``, as
PHP's ``htmlentities(ENT_HTML5)`` writes them) are rewritten as the numeric references of the
same characters (``&#47;``), which :mod:`adapters.auth.written` reads in any mix with its other
escapes, encoded twice and cut off; one whose ``&`` was escaped again (``&amp;sol;``) as
``&amp;#47;``, and one whose ``&`` is written as JSON, XML or a URL writes it (``\\u0026sol;``,
Go's encoding/json default; ``&#38;sol;``, ``&#x26;sol;``, ``%26sol;``) with its ``&`` so
written. XML's own five (``&amp;`` ``&lt;`` ``&gt;`` ``&quot;`` ``&apos;``) are read there
already and are left as they are. Names of two characters (``&NotEqualTilde;``), names without
their ``;`` and names the table lacks stay as they are: they read as no character of a secret.
Only the names of the secrets' characters are looked for, however many (an alternation the scan
tries in C: a page's ``&nbsp;`` never reaches Python), and references apart by a few characters
are one edit (:func:`_named`): a reply of them costs a step in Python a group of them.

Line breaks inside base64 (PEM's 64 characters a line, MIME's 76; a raw ``\\n`` or ``\\r\\n``, a
JSON string's ``\\n``, XML's ``&#10;`` (``&#010;``, ``&#x0A;``: zeros before too), a URL's
``%0A``, HTML5's ``&NewLine;``; the indentation after it) are removed, so base64 of a secret, or
of a text that holds it, is found wherever a line ends in it. A break is taken for one inside
base64 only where the line before it ends in :data:`_LINE` characters of base64 (``\\/`` for
``/`` too, as JSON may write it) and the next begins with one: a text of prose or pretty-printed
JSON seldom has such a line, and then costs nothing more. Only the secrets written in base64's
characters (:func:`wraps`: its shapes, and keys that look like them) are searched for in a text
whose breaks alone were removed: no other can be cut by one. Base64 whose ``+`` or ``/`` is
percent-encoded or written as a reference (``%2B``, ``&#43;``) is not joined across its lines.

The rewritten text is searched as well as the text as it came, not instead of it (a secret may
hold a line break itself: a PEM key).
"""

from __future__ import annotations

import bisect
import functools
import html.entities
import re
from typing import NamedTuple

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

# a reference's "&": as it is, escaped again (&amp;), or as JSON, XML or a URL writes it
_AMP = r"(&amp;|\\u0026|&#0*38;|&#[xX]0*26;|%26|&)"
_AMP_MARKS = ("&", "\\u0026", "%26")  # a text that holds none of them holds no "&" before a name

_LINE = 16  # characters of base64 a line ends in, at least, for its break to be removed
_B64 = r"(?:[A-Za-z0-9+/=_-]|\\(?=/))"  # one character of base64, or JSON's \ of \/
# a text without 16 of these in a row (base64's, and \ of JSON's \/) has no line to join
_RUN = re.compile(r"[A-Za-z0-9+/=_\\-]{16}")


def _after_line(first: str) -> str:
    """A break's first character (``first``, escaped), at the end of a line of base64."""
    return f"{first}(?<={_B64}{{{_LINE}}}{first})"


# a line break (with the indentation after it) after _LINE characters of base64 (JSON's \/ too)
# and before one: a break elsewhere (prose, pretty-printed JSON, a reply of line breaks) is not
# found, so costs no step in Python; the scan skips in C to each break's first character, where
# the line before it is looked at
_CR, _LF, _BACKSLASH = _after_line(r"\r"), _after_line(r"\n"), _after_line(r"\\")
_BREAK = re.compile(
    f"(?:{_CR}\\n?|{_LF}|{_BACKSLASH}(?:r\\\\n|[nr])"
    f"|{_after_line('&')}(?:#(?:0*13|[xX]0*[dD]);&#(?:0*10|[xX]0*[aA]);|#(?:0*1[03]|[xX]0*[aAdD]);"
    "|NewLine;)"
    f"|{_after_line('%')}(?:0[dD]%0[aA]|0[aAdD]))"
    r"[ \t]*(?=[A-Za-z0-9+/_\\-])"
)
_HINTS = ("\n", "\r", "\\n", "\\r", "&#1", "&#0", "&#x", "&#X", "%0", "&NewLine;")
_PERCENT_BREAK = re.compile("%0[aAdD]")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/=_-]|\\/)+")  # \/: JSON's slash


class Rewritten:
    """``text`` rewritten by edits (where each began and ended in the text as it came, and what
    took its place): :attr:`text`, and where a place in it stands in the text as it came."""

    __slots__ = (
        "_came",
        "_ends",
        "_inner",
        "_names",
        "_new",
        "_new_ends",
        "_starts",
        "named",
        "text",
    )

    def __init__(
        self, text: str, edits: list[tuple[int, int, str]], names: tuple[str, ...] = ()
    ) -> None:
        pieces: list[str] = []
        self._starts: list[int] = []  # where each edit began in the text as it came
        self._ends: list[int] = []  # and ended
        self._new: list[int] = []  # where its replacement begins in the rewritten text
        self._new_ends: list[int] = []  # and ends
        last = n = 0
        for begin, end, put in edits:
            if begin < last:
                continue  # inside the one before (a &NewLine; removed as a break): that one
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
        self.named = any(put for _, _, put in edits)
        """Whether a named reference was rewritten (else only line breaks were removed: only
        a secret written in base64's characters can have been cut by one, see :func:`wraps`)."""
        self._came, self._names = text, names
        self._inner: dict[int, Rewritten | None] = {}

    def begin(self, i: int) -> int:
        """Where a place that begins at ``i`` of the rewritten text begins in the text as it
        came (a place begun inside a replacement begins where its reference did)."""
        k = bisect.bisect_right(self._new, i) - 1
        if k < 0:
            return i
        if i < self._new_ends[k]:
            inner = self._within(k)
            return self._starts[k] + (0 if inner is None else inner.begin(i - self._new[k]))
        return self._ends[k] + i - self._new_ends[k]

    def end(self, i: int) -> int:
        """Where a place that ends at ``i`` of the rewritten text ends in the text as it came (a
        place ended inside a replacement ends where its reference did)."""
        k = bisect.bisect_left(self._new, i) - 1
        if k < 0:
            return i
        if i < self._new_ends[k]:
            inner = self._within(k)
            if inner is not None:
                return self._starts[k] + inner.end(i - self._new[k])
        return self._ends[k] + max(0, i - self._new_ends[k])

    def _within(self, k: int) -> Rewritten | None:
        """Edit ``k`` (a group of references) read again reference by reference, an edit each
        (None if it is not one: a whole edit is where a place inside it stands)."""
        if k not in self._inner:
            came = self._came[self._starts[k] : self._ends[k]]
            inner = Rewritten(came, one_by_one(came, self._names)) if self._names else None
            put = self.text[self._new[k] : self._new_ends[k]]
            self._inner[k] = inner if inner is not None and inner.text == put else None
        return self._inner[k]


@functools.lru_cache(maxsize=64)  # as the scrubber's other caches of secrets
def names(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """The HTML5 names (with their ``;``) of the characters of ``secrets`` that
    :mod:`adapters.auth.written` does not read: a text that holds none of them holds no secret
    written with them."""
    chars = set().union(*secrets) & NAMED_CHARS
    return tuple(sorted(name for c in chars for name in _BY_CHAR[c]))


def may_need(read: frozenset[str], named: tuple[str, ...]) -> bool:
    """Whether a short text whose first reading reads as ``read`` (see
    :func:`adapters.auth.reach.first`) may be rewritten: it reads as a line break, or has the
    characters of ``&NewLine;`` or of one of the ``named`` (:func:`names`)."""
    if "\n" in read or "\r" in read:
        return True
    names = (*named, "NewLine;")
    return "&" in read and ";" in read and any(read.issuperset(name) for name in names)


class Hint(NamedTuple):
    """What :func:`hinted` looks for after each way of writing a ``&`` (:func:`hint`): one
    pattern a first character, so that each begins with a literal, which Python's ``re`` skips
    to in C (a pattern of several first characters is tried at every character of a text)."""

    amp: re.Pattern[str]  # after "&": a reference to a break, or a name ("&", "&amp;", "&#38;")
    json: re.Pattern[str] | None  # "\\u0026" and a name (None: no name sought)
    url: re.Pattern[str] | None  # "%26" and a name


def hinted(text: str, hint: Hint) -> bool:
    """Whether ``text`` may be rewritten: it holds a line break in any form, or what ``hint``
    (:func:`hint`) finds after a ``&``: a reference to a line break, or one of the names of
    the secrets' characters."""
    if "\n" in text or "\r" in text:
        return True
    if "\\" in text and ("\\n" in text or "\\r" in text):
        return True
    if "%" in text and _PERCENT_BREAK.search(text):
        return True
    return (
        ("&" in text and hint.amp.search(text) is not None)
        or (hint.json is not None and "\\" in text and hint.json.search(text) is not None)
        or (hint.url is not None and "%" in text and hint.url.search(text) is not None)
    )


@functools.lru_cache(maxsize=64)
def hint(named: tuple[str, ...]) -> Hint:
    """What a text that may be rewritten holds after a ``&`` (one pass over the text for each
    way of writing it that the text may hold): a reference to a line break, or one of the
    ``named`` (:func:`names`: those names only, however many), its ``&`` written
    in any way :func:`rewrite` reads (:data:`_AMP`, taken apart by its first character)."""
    name = "|".join(named)
    named_ref = f"|(?:amp;|#0*38;|#[xX]0*26;)?(?:{name})" if named else ""
    amp = re.compile(f"&(?:#(?:0*1[03]|[xX]0*[aAdD]);|NewLine;{named_ref})")
    if not named:
        return Hint(amp=amp, json=None, url=None)
    return Hint(amp=amp, json=re.compile(f"\\\\u0026(?:{name})"), url=re.compile(f"%26(?:{name})"))


def rewrite(text: str, named: tuple[str, ...]) -> Rewritten | None:
    """``text`` with its line breaks inside base64 removed and its references by the ``named``
    (:func:`names`: of the secrets' characters) rewritten as numeric ones; None if it has
    neither."""
    edits: list[tuple[int, int, str]] = []
    if any(hint in text for hint in _HINTS) and _RUN.search(text) is not None:
        edits += _breaks(text)
    if named and any(mark in text for mark in _AMP_MARKS):
        edits += _named(text, named)
    if not edits:
        return None
    edits.sort(key=lambda edit: (edit[0], -edit[1]))  # of two at one place, the longer
    return Rewritten(text, edits, named)


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")


@functools.lru_cache(maxsize=64)  # as the scrubber's other caches of secrets
def wraps(secret: str) -> bool:
    """Whether ``secret`` may be written across a line break of base64: it is written in
    base64's characters (a shape of :mod:`adapters.auth.forms`, or a key that looks like one)."""
    return _ALPHABET.issuperset(secret)


def _breaks(text: str) -> list[tuple[int, int, str]]:
    """Each line break of ``text`` between two lines of base64, to remove."""
    return [(m.start(), m.end(), "") for m in _BREAK.finditer(text)]


# as most write "&"; "&" last: "&AMP;" is rewritten "&#38;", which with a name after it would
# be a reference again ("&AMP;sol;"), so nothing is rewritten after it
_PLAIN_AMPS = ("&amp;", "\\u0026", "%26", "&#38;", "&#x26;", "&#X26;", "&")
_GAP = 64  # characters between two references of one edit, at most
_PADDED = ("&#0", "&#x0", "&#X0")  # a "&" written with leading zeros: "&#038;", "&#x026;"


class _Refs(NamedTuple):
    """How the references by some names are found and rewritten."""

    # references, each apart from the next by at most _GAP characters (no "&", "\\", "%" nor
    # line break): one edit; and &NewLine; in a row (a line break: see _named)
    groups: tuple[re.Pattern[str], ...]
    one: re.Pattern[str]  # one such reference: its "&" (group 1), its name (group 2)
    names: re.Pattern[str]  # one such reference: its name (the only group)
    wanted: frozenset[str]  # the names to rewrite (without ";")
    plain: dict[str, tuple[tuple[str, str, str], ...]]  # by name: each "&", what str.replace
    # rewrites, as what


@functools.lru_cache(maxsize=64)
def _references(named: tuple[str, ...]) -> _Refs:
    """What finds references by the ``named`` (those names only: an alternation of them, which
    the scan tries in C at each ``&``, ``\\`` and ``%``; a name no secret's character has never
    reaches Python), and how a group of them is rewritten."""
    wanted = frozenset(name[:-1] for name in named)
    alt = "|".join(sorted(wanted))
    amp = _AMP.replace("(", "(?:", 1)
    apart = "|".join(sorted(wanted - {"NewLine"}))
    ref = f"{amp}(?:{apart});"
    # not (?:…)+, and a group first: the scan skips in C to a "&", "\\" or "%" only so
    groups = [re.compile(rf"{ref}(?:[^&\\%\r\n]{{0,{_GAP}}}+{ref})*")] if apart else []
    if "NewLine" in wanted:
        groups.append(re.compile(f"{amp}NewLine;(?:{amp}NewLine;)*"))
    plain = {
        name: tuple((a, f"{a}{name};", f"{a}#{ord(NAMED[name])};") for a in _PLAIN_AMPS)
        for name in wanted
    }
    return _Refs(
        groups=tuple(groups),
        one=re.compile(f"{_AMP}({alt});"),
        names=re.compile(f"{amp}({alt});"),
        wanted=wanted,
        plain=plain,
    )


def _named(text: str, named: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Each group of references of ``text`` by the ``named`` (in a row, or apart by at most
    :data:`_GAP` characters of no other escape nor line break), with each reference of the
    group rewritten as a numeric one (its ``&`` written as it was: ``&amp;sol;`` as
    ``&amp;#47;``, ``\\u0026sol;`` as ``\\u0026#47;``, ``%26sol;`` as ``%26#47;``); other names
    (``&nbsp;``, ``&eacute;`` of a page) write no character of a secret, are not found, and are
    left as they are. A group is one edit, rewritten by ``str.replace`` of the names it holds:
    a reply of references costs a step in Python a group, not a reference (where a place
    found inside a group stands is read again, reference by reference, only then:
    :meth:`Rewritten.begin`). ``&NewLine;`` (a secret's line break) groups only with itself in
    a row: one between two lines of base64 is a break to remove (:func:`_breaks`), an edit of
    its own."""
    refs = _references(named)
    found = [
        (m.start(), m.end(), _rewritten(refs, m.group()))
        for pattern in refs.groups
        for m in pattern.finditer(text)
    ]
    if len(refs.groups) > 1:
        found.sort()
    return found


def _rewritten(refs: _Refs, group: str) -> str:
    """A group of references (:func:`_named`) rewritten as numeric ones."""
    if any(padded in group for padded in _PADDED):  # not in the pairs: one by one
        return refs.one.sub(functools.partial(_numeric, refs.wanted), group)
    found = set(refs.names.findall(group))
    pairs = [pair for name in found for pair in refs.plain[name]]
    pairs.sort(key=_last_amp)  # "&" last ("&AMP;" last of all: see _PLAIN_AMPS)
    for _, old, new in pairs:
        if old in group:
            group = group.replace(old, new)
    return group


def _last_amp(pair: tuple[str, str, str]) -> tuple[bool, bool]:
    return pair[0] == "&", pair[1] == "&AMP;"


def one_by_one(text: str, named: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Each reference of ``text`` by the ``named``, an edit each (how :func:`_named` rewrote a
    group, read reference by reference)."""
    refs = _references(named)
    partial = functools.partial(_numeric, refs.wanted)
    return [(m.start(), m.end(), partial(m)) for m in refs.one.finditer(text)]


def _numeric(wanted: frozenset[str], m: re.Match[str]) -> str:
    """The reference ``m`` (its ``&``, its name) as a numeric one, if its name is ``wanted``."""
    name = m.group(2)
    return f"{m.group(1)}#{ord(NAMED[name])};" if name in wanted else m.group()
