"""Which characters a text can read as, however its escapes are read: what lets the scrubber pass
over a short text that cannot hold any of a secret, without reading it through its escapes.

Whatever the scrubber finds of a secret (the secret, written in any form, or a cut-off start)
holds :data:`~federation.config.secrets.MIN_SECRET` or more of its characters in a row, each
read from the text: as it is, or from an escape of it, whose own characters were read the same
way a round before (``%2541``: ``%`` ``4`` ``1`` read from ``%25`` and as they are, then ``A``). So
a character can be read within ``rounds`` readings only if it is in the text or one of its
escapes is written in characters that could be read a round before. The first round is read
as it is (:func:`first`: the text's characters and those of each escape in it, whichever
escapes a reading reads, for the escapes of one family are the same whatever others are read
with them); the rounds after are checked on sets of characters, not on a text: which characters
an escape needs (:func:`_needs`, any one way of writing it), and which escape characters
(:data:`_SYNTAX`) can be read, round after round, from those read before (:func:`_syntax`).
That says more can be read than can (the characters need not stand in the order an escape
wants, hexadecimal letters count in either case), never less: a secret it says cannot be found,
the full search would not find either (tests/unit/test_scrub_quick.py compares the two).
"""

from __future__ import annotations

import functools

from adapters.auth import written
from federation.config.secrets import MIN_SECRET

# every character an escape is written with (a character reference, an entity, a JSON escape,
# percent-encoded bytes, + for a space)
_SYNTAX = frozenset('&#;xX0123456789abcdefABCDEFmplgtquos\\"/bnr%+')
_FOLD = str.maketrans("ABCDEFX", "abcdefx")  # hexadecimal letters and the x of &#x: any case
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_SHORT = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


_BIT = {c: 1 << ord(c.translate(_FOLD)) - 32 for c in _SYNTAX}  # a character and its fold: one bit


def _mask(chars: str) -> int:
    """The escape characters of ``chars``, folded, as bits of :data:`_BIT`."""
    mask = 0
    for c in chars:
        mask |= _BIT.get(c, 0)
    return mask


@functools.lru_cache(maxsize=4096)
def _needs(c: str) -> tuple[int, ...]:
    """The characters each way of writing ``c`` as one escape needs (folded, as bits)."""
    code = ord(c)
    data = c.encode("utf-8", "surrogatepass")
    units = c.encode("utf-16-be", "surrogatepass")
    ways = ["&#;" + str(code), "&#;x" + f"{code:x}", "\\u" + units.hex(), "%" + data.hex()]
    if c in _NAMED:
        ways.append(_NAMED[c])
    if c in _SHORT:
        ways.append("\\" + _SHORT[c])
    if c == " ":
        ways.append("+")
    return tuple(_mask(way) for way in ways)


def _written(c: str, syntax: int) -> bool:
    """Whether some escape of ``c`` is written in characters of ``syntax`` (bits)."""
    return any(not need & ~syntax for need in _needs(c))


@functools.lru_cache(maxsize=1024)
def _syntax(held: int, rounds: int) -> int:
    """The escape characters (bits) a reading holding the escape characters ``held`` can read
    within ``rounds - 1`` more: what escapes read in the round after can be written in."""
    syntax = held
    for _ in range(rounds - 1):
        more = syntax | _mask("".join(c for c in _SYNTAX if _written(c, syntax)))
        if more == syntax:
            break  # a fixed point: no round reads more
        syntax = more
    return syntax


def first(text: str) -> frozenset[str]:
    """The characters ``text`` reads as, however its first reading reads it: its own, and each
    escape's in it (the escapes of one family are the same whichever others are read with
    them), ``+`` read as a space."""
    chars = set(text)
    if "&" in text or "\\" in text or "%" in text:
        for m in written.ESCAPES.finditer(text):
            chars.update(c for c, _ in written.decode(m.group()))
    if "+" in chars:
        chars.add(" ")
    return frozenset(chars)


def syntax(read: frozenset[str], rounds: int) -> int:
    """The escape characters (bits) in which the escapes that the last of ``rounds`` readings
    reads can be written, for a text whose first reading reads as ``read``; -1 if one round."""
    return _syntax(_mask("".join(read)), rounds - 1) if rounds > 1 else -1


def may_hold(read: frozenset[str], syntax: int, secret: str) -> bool:
    """Whether a text whose first reading reads as the characters ``read`` (:func:`first`),
    and whose last reads escapes written in ``syntax`` (:func:`syntax`), can read as
    :data:`MIN_SECRET` characters in a row of ``secret``: each window of that many is looked
    at from its end, and one with a character it cannot read is passed over up to it."""
    if written.NOCHAR in secret:
        return True  # what a stray byte reads as: any escape of one
    known: dict[str, bool] = {}
    i = 0
    while i + MIN_SECRET <= len(secret):
        j = i + MIN_SECRET - 1
        while j >= i:
            c = secret[j]
            ok = known.get(c)
            if ok is None:
                ok = known[c] = c in read or (syntax != -1 and _written(c, syntax))
            if not ok:
                break
            j -= 1
        if j < i:
            return True
        i = j + 1
    return False
