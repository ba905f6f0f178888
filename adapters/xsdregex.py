"""XML Schema regular expressions (the ``pattern`` facet) translated to Python's ``re``, or refused.

:mod:`adapters.facetcheck` may call a value valid without asking libxml2 only if libxml2 would call
it valid too, so a translation must match no string that libxml2's reading of the pattern rejects.
The two dialects differ in ways that are easy to miss: an XSD pattern is anchored at both ends
(``re.fullmatch``); ``^`` and ``$`` are ordinary characters; ``.`` excludes only newline and
carriage return; ``\\s`` is exactly space, tab, newline and carriage return; ``\\d`` and ``\\w`` are
Unicode categories from libxml2's own (older) tables, which Python's do not equal. So:

* ``\\d`` and ``\\w`` become ASCII digits (and letters): fewer strings match, never more. That only
  holds where the class is not complemented, so they are refused in ``\\D``, ``\\W`` and ``[^…]``.
* What cannot be translated with certainty is refused (None): ``\\i``, ``\\c``, ``\\p{…}``, class
  subtraction, a ``-`` anywhere but a range or either end of a class, a range with an escaped end
  (libxml2 reads ``[\\t-\\r]`` as three characters), ``{`` and ``}`` as characters, empty branches
  and groups, a quantifier on a quantifier, bounds out of order, a count of zero.

libxml2 matches with an automaton that goes wrong where the pattern lets a character be read by
two different steps: it may decide, comparing a complemented class or a category such as ``\\w``
with another class, that the two share no character, then follow one step only and reject a string
that matches (``\\w+\\d`` rejects ``a0``, ``(\\wa|\\db)`` rejects ``0b``); and its counters go wrong
on an alternative or a repeated group that may match nothing (``(a{2}|a?)`` rejects ``aa``,
``(a?){2}`` rejects the empty string). No such quirk is emulated here; a pattern is translated only
where it leaves libxml2 no choice to get wrong:

* deterministic: wherever the pattern may go on with more than one step (the first steps; after a
  step, its repetition and the steps that may follow), those steps' characters are disjoint. The
  characters are libxml2's, taken wide (``\\d`` and ``\\w`` hold every non-ASCII character, ``\\w``
  the ASCII symbols too), so a step reading ``\\w`` is followed by nothing that might be a letter;
* a group takes no quantifier but ``?``, and only if it cannot match nothing;
* an alternation's branches hold no quantifier (so none may match nothing).

A refusal costs only speed: libxml2 then decides, as before. A pattern may also hold two unbounded
quantifiers at most (:mod:`adapters.facetcheck` tries none on values over 512 characters).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_MAX_PATTERN = 1000
_MAX_UNBOUNDED = 2
_SINGLE_ESCAPES = frozenset("nrt\\|.?*+(){}-[]^")
_ESCAPED = {"n": "\n", "r": "\r", "t": "\t"}
_SPACE = "\x20\t\n\r"
_QUANTITY = re.compile(r"\{([0-9]{1,6})(,([0-9]{0,6}))?\}")
_NOT_NORMAL = frozenset(".\\?*+{}()|[]")
_TOP = 0x10FFFF

# A set of characters: sorted, disjoint, non-adjacent inclusive ranges of code points.
Chars = tuple[tuple[int, int], ...]


def _chars(ranges: list[tuple[int, int]]) -> Chars:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def _complement(chars: Chars) -> Chars:
    out: list[tuple[int, int]] = []
    start = 0
    for low, high in chars:
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= _TOP:
        out.append((start, _TOP))
    return tuple(out)


def _disjoint(sets: list[Chars]) -> bool:
    """Whether no two of the sets share a character (each set's own ranges never overlap)."""
    end = -1
    for low, high in sorted(r for chars in sets for r in chars):
        if low <= end:
            return False
        end = high
    return True


def _ascii_and_beyond(test: str) -> Chars:
    """The ASCII characters of a category test, and every character beyond ASCII (taken wide)."""
    codes = [c for c in range(0x80) if unicodedata.category(chr(c))[0] in test]
    return _chars([(c, c) for c in codes] + [(0x80, _TOP)])


_SPACE_CHARS = _chars([(ord(c), ord(c)) for c in _SPACE])
_DIGIT_WIDE = _chars([(0x30, 0x39), (0x80, _TOP)])  # \d: Nd in libxml2's tables
_WORD_WIDE = _ascii_and_beyond("LMNS")  # \w: all but punctuation, separators and others
_DOT = _complement(_chars([(0x0A, 0x0A), (0x0D, 0x0D)]))


class _Refused(Exception):
    """The pattern uses something this translator does not translate with certainty."""


def translate(pattern: str) -> str | None:
    """Python source matching (with ``re.fullmatch``) a subset of what libxml2's reading of the XSD
    ``pattern`` matches, exactly that set where no Unicode table is involved; None if refused."""
    if len(pattern) > _MAX_PATTERN:
        return None
    parser = _Parser(pattern)
    try:
        whole = parser.alternatives()
        if parser.pos != len(pattern) or parser.unbounded > _MAX_UNBOUNDED:
            return None
        parser.deterministic(whole.first)
        for follow in parser.follow:
            parser.deterministic(follow)
        re.compile(whole.source)
    except (_Refused, re.error, OverflowError, RecursionError):
        return None
    return whole.source


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """:func:`translate`, compiled."""
    source = translate(pattern)
    return None if source is None else re.compile(source)


def _char(ch: str) -> str:
    """One character as a Python pattern that means only that character, in or out of a class."""
    if ch.isascii() and ch.isalnum():
        return ch
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


@dataclass
class _Piece:
    """A translated part of the pattern, with what the determinism check needs: the steps (atoms,
    numbered) it may begin and end with, and whether it may match nothing."""

    source: str
    nullable: bool
    first: frozenset[int] = field(default_factory=frozenset)
    last: frozenset[int] = field(default_factory=frozenset)
    quantified: bool = False  # holds a quantifier


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.unbounded = 0
        self.depth = 0
        self.steps: list[Chars] = []  # each atom's characters, as libxml2 reads them (or more)
        self.follow: list[set[int]] = []  # the steps that may come after each step

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def deterministic(self, steps: set[int] | frozenset[int]) -> None:
        """Refuse if two of the steps the pattern may go on with share a character."""
        if not _disjoint([self.steps[s] for s in steps]):
            raise _Refused("a character two steps may read")

    def step(self, source: str, chars: Chars) -> _Piece:
        self.steps.append(chars)
        self.follow.append(set())
        only = frozenset({len(self.steps) - 1})
        return _Piece(source, False, only, only)

    def alternatives(self) -> _Piece:
        branches = [self.branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.branch())
        if any(not b.source for b in branches):
            raise _Refused("an empty branch")
        if len(branches) > 1 and any(b.quantified for b in branches):
            raise _Refused("an alternation with a quantifier")
        return _Piece(
            "|".join(b.source for b in branches),
            any(b.nullable for b in branches),
            frozenset().union(*(b.first for b in branches)),
            frozenset().union(*(b.last for b in branches)),
            any(b.quantified for b in branches),
        )

    def branch(self) -> _Piece:
        parts: list[str] = []
        quantified = False
        nullable = True
        first: frozenset[int] = frozenset()
        last: frozenset[int] = frozenset()
        while self.peek() not in ("", "|", ")"):
            piece = self.piece()
            parts.append(piece.source)
            quantified = quantified or piece.quantified
            for end in last:
                self.follow[end] |= piece.first
            if nullable:
                first |= piece.first
            last = last | piece.last if piece.nullable else piece.last
            nullable = nullable and piece.nullable
        return _Piece("".join(parts), nullable, first, last, quantified)

    def piece(self) -> _Piece:
        grouped = self.peek() == "("
        atom = self.atom()
        quantifier, unbounded, low, high = self.quantifier()
        if not quantifier:
            return atom
        if self.peek() in ("?", "*", "+", "{"):
            raise _Refused("a quantifier on a quantifier")
        if high == 0:
            raise _Refused("a count of zero")
        if grouped and (quantifier != "?" or atom.nullable):
            raise _Refused("a group repeated, or optional although it may match nothing")
        if unbounded:
            self.unbounded += 1
        if not grouped and (unbounded or high > low):  # the step may repeat itself
            for end in atom.last:
                self.follow[end] |= atom.first
        return _Piece(
            atom.source + quantifier,
            atom.nullable or low == 0,
            atom.first,
            atom.last,
            True,
        )

    def quantifier(self) -> tuple[str, bool, int, int]:
        """The quantifier's Python text, whether it is unbounded, its bounds (-1: none)."""
        ch = self.peek()
        if ch in ("?", "*", "+"):
            self.pos += 1
            return ch, ch != "?", 0 if ch != "+" else 1, 1 if ch == "?" else -1
        if ch != "{":
            return "", False, 1, 1
        m = _QUANTITY.match(self.text, self.pos)
        if m is None:
            raise _Refused("{ that is not a quantity")
        self.pos = m.end()
        low = int(m.group(1))
        if m.group(2) is None:
            return f"{{{low}}}", False, low, low
        if not m.group(3):
            return f"{{{low},}}", True, low, -1
        high = int(m.group(3))
        if high < low:
            raise _Refused("bounds out of order")
        return f"{{{low},{high}}}", False, low, high

    def atom(self) -> _Piece:
        ch = self.peek()
        if ch == "(":
            self.pos += 1
            self.depth += 1
            if self.depth > 20:
                raise _Refused("groups nested too deep")
            inner = self.alternatives()
            if self.peek() != ")" or not inner.source:
                raise _Refused("an unclosed or empty group")
            self.pos += 1
            self.depth -= 1
            inner.source = f"(?:{inner.source})"
            return inner
        if ch == "[":
            return self.step(*self.char_class())
        if ch == ".":
            self.pos += 1
            return self.step("[^\\n\\r]", _DOT)
        if ch == "\\":
            return self.step(*self.escape_outside())
        if ch == "" or ch in _NOT_NORMAL:
            raise _Refused(f"{ch!r} where a character was expected")
        self.pos += 1
        return self.step(_char(ch), ((ord(ch), ord(ch)),))

    def escape_outside(self) -> tuple[str, Chars]:
        self.pos += 1
        ch = self.peek()
        self.pos += 1
        if ch in _SINGLE_ESCAPES:
            single = _ESCAPED.get(ch, ch)
            return _char(single), ((ord(single), ord(single)),)
        if ch == "d":
            return "[0-9]", _DIGIT_WIDE
        if ch == "w":
            return "[0-9A-Za-z]", _WORD_WIDE
        if ch == "s":
            return "[" + "".join(map(_char, _SPACE)) + "]", _SPACE_CHARS
        if ch == "S":
            return "[^" + "".join(map(_char, _SPACE)) + "]", _complement(_SPACE_CHARS)
        raise _Refused(f"the escape \\{ch}")

    def char_class(self) -> tuple[str, Chars]:
        self.pos += 1  # [
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        items: list[str] = []
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            ch = self.peek()
            if ch == "]" and not first:
                self.pos += 1
                break
            if ch in ("", "[", "]"):
                raise _Refused("a class that is empty, nested, subtracted or unclosed")
            source, chars = self.class_item(negated, first)
            items.append(source)
            ranges.extend(chars)
            first = False
        # In a complemented class every item is exact, so the complement is too.
        chars = _complement(_chars(ranges)) if negated else _chars(ranges)
        return ("[^" if negated else "[") + "".join(items) + "]", chars

    def class_item(self, negated: bool, first: bool) -> tuple[str, Chars]:
        """One character, range or escape inside a class."""
        if self.peek() == "\\" and self.text[self.pos + 1 : self.pos + 2] not in _SINGLE_ESCAPES:
            return self.class_escape(negated)
        if self.peek() == "-":
            self.pos += 1
            if first or self.peek() == "]":
                return _char("-"), ((0x2D, 0x2D),)
            raise _Refused("a - that is neither a range nor at an end of the class")
        escaped = self.peek() == "\\"
        low = self.class_char()
        if self.peek() != "-" or self.text[self.pos + 1 : self.pos + 2] == "]":
            return _char(low), ((ord(low), ord(low)),)
        self.pos += 1  # -
        if self.peek() in ("[", "]", "-", "\\", "") or escaped:
            raise _Refused("a range with an escaped or missing end, or a subtraction")
        high = self.class_char()
        if ord(high) < ord(low) or self.peek() == "-":
            raise _Refused("a range out of order, or followed by -")
        return f"{_char(low)}-{_char(high)}", ((ord(low), ord(high)),)

    def class_char(self) -> str:
        ch = self.peek()
        if ch == "\\":
            esc = self.text[self.pos + 1 : self.pos + 2]
            if esc not in _SINGLE_ESCAPES:
                raise _Refused("a multi-character escape as a range's end")
            self.pos += 2
            return _ESCAPED.get(esc, esc)
        if ch in ("[", "]", ""):
            raise _Refused("a bracket inside a class")
        self.pos += 1
        return ch

    def class_escape(self, negated: bool) -> tuple[str, Chars]:
        esc = self.text[self.pos + 1 : self.pos + 2]
        self.pos += 2
        if self.peek() == "-":
            raise _Refused("a multi-character escape followed by -")
        if esc == "s":
            return "".join(map(_char, _SPACE)), _SPACE_CHARS
        if esc == "d" and not negated:
            return "0-9", _DIGIT_WIDE
        if esc == "w" and not negated:
            return "0-9A-Za-z", _WORD_WIDE
        raise _Refused(f"the escape \\{esc} inside a class")
