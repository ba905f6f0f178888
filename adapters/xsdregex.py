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
  subtraction, a ``-`` anywhere but a range or either end of a class, ``{`` and ``}`` as
  characters, empty branches and groups, a quantifier on a quantifier, bounds out of order.
* Patterns Python would backtrack on badly are refused too: a group holding a ``*``, ``+`` or
  ``{n,}`` (or a ``|``) may take no quantifier but ``?``, and a pattern may hold two unbounded
  quantifiers at most (:mod:`adapters.facetcheck` tries none on values over 512 characters).
  A refusal costs only speed: libxml2 then decides, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MAX_PATTERN = 1000
_MAX_UNBOUNDED = 2
_SINGLE_ESCAPES = frozenset("nrt\\|.?*+(){}-[]^")
_ESCAPED = {"n": "\n", "r": "\r", "t": "\t"}
_SPACE = "\x20\t\n\r"
_QUANTITY = re.compile(r"\{([0-9]{1,6})(,([0-9]{0,6}))?\}")
_NOT_NORMAL = frozenset(".\\?*+{}()|[]")


class _Refused(Exception):
    """The pattern uses something this translator does not translate with certainty."""


def translate(pattern: str) -> str | None:
    """Python source matching (with ``re.fullmatch``) a subset of what libxml2's reading of the XSD
    ``pattern`` matches, exactly that set where no Unicode table is involved; None if refused."""
    if len(pattern) > _MAX_PATTERN:
        return None
    parser = _Parser(pattern)
    try:
        source, _ = parser.alternatives()
        if parser.pos != len(pattern) or parser.unbounded > _MAX_UNBOUNDED:
            return None
        re.compile(source)
    except (_Refused, re.error, OverflowError, RecursionError):
        return None
    return source


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
    source: str
    risky: bool  # holds an unbounded quantifier or an alternation: no repeating it


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.unbounded = 0
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def alternatives(self) -> tuple[str, bool]:
        branches = [self.branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.branch())
        if any(not b.source for b in branches):
            raise _Refused("an empty branch")
        risky = len(branches) > 1 or any(b.risky for b in branches)
        return "|".join(b.source for b in branches), risky

    def branch(self) -> _Piece:
        parts: list[str] = []
        risky = False
        while self.peek() not in ("", "|", ")"):
            piece = self.piece()
            parts.append(piece.source)
            risky = risky or piece.risky
        return _Piece("".join(parts), risky)

    def piece(self) -> _Piece:
        atom = self.atom()
        quantifier, unbounded, repeats = self.quantifier()
        if quantifier and self.peek() in ("?", "*", "+", "{"):
            raise _Refused("a quantifier on a quantifier")
        if repeats and atom.risky:
            raise _Refused("a repeated group that may backtrack")
        if unbounded:
            self.unbounded += 1
        return _Piece(atom.source + quantifier, atom.risky or unbounded)

    def quantifier(self) -> tuple[str, bool, bool]:
        """The quantifier's Python text, whether it is unbounded, whether it repeats (max > 1)."""
        ch = self.peek()
        if ch in ("?", "*", "+"):
            self.pos += 1
            return ch, ch != "?", ch != "?"
        if ch != "{":
            return "", False, False
        m = _QUANTITY.match(self.text, self.pos)
        if m is None:
            raise _Refused("{ that is not a quantity")
        self.pos = m.end()
        low = int(m.group(1))
        if m.group(2) is None:
            return f"{{{low}}}", False, low > 1
        if not m.group(3):
            return f"{{{low},}}", True, True
        high = int(m.group(3))
        if high < low:
            raise _Refused("bounds out of order")
        return f"{{{low},{high}}}", False, high > 1

    def atom(self) -> _Piece:
        ch = self.peek()
        if ch == "(":
            self.pos += 1
            self.depth += 1
            if self.depth > 20:
                raise _Refused("groups nested too deep")
            source, risky = self.alternatives()
            if self.peek() != ")" or not source:
                raise _Refused("an unclosed or empty group")
            self.pos += 1
            self.depth -= 1
            return _Piece(f"(?:{source})", risky)
        if ch == "[":
            return _Piece(self.char_class(), False)
        if ch == ".":
            self.pos += 1
            return _Piece("[^\\n\\r]", False)
        if ch == "\\":
            return _Piece(self.escape_outside(), False)
        if ch == "" or ch in _NOT_NORMAL:
            raise _Refused(f"{ch!r} where a character was expected")
        self.pos += 1
        return _Piece(_char(ch), False)

    def escape_outside(self) -> str:
        self.pos += 1
        ch = self.peek()
        self.pos += 1
        if ch in _SINGLE_ESCAPES:
            return _char(_ESCAPED.get(ch, ch))
        if ch == "d":
            return "[0-9]"
        if ch == "w":
            return "[0-9A-Za-z]"
        if ch == "s":
            return "[" + "".join(map(_char, _SPACE)) + "]"
        if ch == "S":
            return "[^" + "".join(map(_char, _SPACE)) + "]"
        raise _Refused(f"the escape \\{ch}")

    def char_class(self) -> str:
        self.pos += 1  # [
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        items: list[str] = []
        first = True
        while True:
            ch = self.peek()
            if ch == "]" and not first:
                self.pos += 1
                break
            if ch in ("", "[", "]"):
                raise _Refused("a class that is empty, nested, subtracted or unclosed")
            items.append(self.class_item(negated, first))
            first = False
        return ("[^" if negated else "[") + "".join(items) + "]"

    def class_item(self, negated: bool, first: bool) -> str:
        """One character, range or escape inside a class."""
        if self.peek() == "\\" and self.text[self.pos + 1 : self.pos + 2] not in _SINGLE_ESCAPES:
            return self.class_escape(negated)
        if self.peek() == "-":
            self.pos += 1
            if first or self.peek() == "]":
                return _char("-")
            raise _Refused("a - that is neither a range nor at an end of the class")
        low = self.class_char()
        if self.peek() != "-" or self.text[self.pos + 1 : self.pos + 2] == "]":
            return _char(low)
        self.pos += 1  # -
        if self.peek() in ("[", "]", "-", ""):
            raise _Refused("a range without its end, or a subtraction")
        high = self.class_char()
        if ord(high) < ord(low) or self.peek() == "-":
            raise _Refused("a range out of order, or followed by -")
        return f"{_char(low)}-{_char(high)}"

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

    def class_escape(self, negated: bool) -> str:
        esc = self.text[self.pos + 1 : self.pos + 2]
        self.pos += 2
        if self.peek() == "-":
            raise _Refused("a multi-character escape followed by -")
        if esc == "s":
            return "".join(map(_char, _SPACE))
        if esc == "d" and not negated:
            return "0-9"
        if esc == "w" and not negated:
            return "0-9A-Za-z"
        raise _Refused(f"the escape \\{esc} inside a class")
