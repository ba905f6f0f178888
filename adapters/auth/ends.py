"""Where a text ends in the start of an escape, or in the start of a secret: what a reply cut off
part way through a secret (a body or summary cut at a limit, even inside an escape) loses, so
that what is left of it cannot tell its first characters (:mod:`adapters.auth.scrub`).
"""

from __future__ import annotations

import re

from adapters.auth import written
from federation.config.secrets import MIN_SECRET

_ESCAPE = 16  # characters: the longest escape of one character (or a surrogate pair) is 12
# the end of a text cut inside an escape: "&#6", "&#x", "&am", "\\u00", "\\ud83d\\u", "%E8%A"
_CUT = re.compile(
    r"(?:&#?[0-9A-Za-z]*"  # a reference or an entity
    r"|\\(?:u[0-9A-Fa-f]{0,4}(?:\\u?[0-9A-Fa-f]{0,3})?)?"  # a JSON escape, a surrogate pair
    r"|(?:%[0-9A-Fa-f]{0,2})+)\Z"  # percent-encoded bytes
)


_UNIT = re.compile(r"\\u[0-9A-Fa-f]{4}")


def complete(text: str, escape: int) -> int:
    """Where what ``text`` holds of its last character begins, the escape at its end (from
    ``escape``) cut inside it; ``len(text)`` if that escape reads whole characters only."""
    tail = text[escape:]
    if not tail:
        return escape
    if tail[0] == "\\":  # whole if one escape of a character that is no high surrogate
        whole = _UNIT.fullmatch(tail) and not 0xD800 <= int(tail[2:], 16) <= 0xDBFF
        return len(text) if whole else escape
    if tail[0] != "%":
        return escape  # a reference or entity: whole only with its ";", never at the end
    at, begun, need = escape, len(text), 0
    for group in tail[1:].split("%"):
        if len(group) < 2:
            return min(at, begun)  # "%" or "%4": no byte yet
        byte = int(group, 16)
        if 0x80 <= byte < 0xC0 and need:
            need -= 1  # a continuation byte of the character begun
        else:
            need = 1 if 0xC0 <= byte < 0xE0 else 2 if 0xE0 <= byte < 0xF0 else 3 * (byte >= 0xF0)
            begun = at
        begun = len(text) if not need else begun
        at += 1 + len(group)
    return begun


def escaped(text: str) -> bool:
    """Whether ``text`` holds an escape, or ends in the start of one."""
    return written.holds(text) or escape_at_end(text) < len(text)


def escape_at_end(text: str) -> int:
    """Where the (start of an) escape that ends ``text`` begins, or its length if none does
    (or the text is too short to end in a secret's start)."""
    tail = text[-_ESCAPE:]
    if len(text) < MIN_SECRET or not ("&" in tail or "\\" in tail or "%" in tail):
        return len(text)
    found = _CUT.search(text, max(0, len(text) - _ESCAPE))
    return len(text) if found is None else found.start()


def cut(text: str, secret: str, least: int = MIN_SECRET) -> int:
    """Where ``text`` begins to end in the first ``least`` or more characters of ``secret``
    (the earliest such start), or ``len(text)``."""
    head = secret[:least]
    at = text.find(head, max(0, len(text) - len(secret) + 1))
    while at != -1:
        if secret.startswith(text[at:]):
            return at
        at = text.find(head, at + 1)
    return len(text)
