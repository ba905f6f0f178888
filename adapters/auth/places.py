"""Where a text holds a secret as it is, and the text with such places replaced.

A secret a text holds as it is may still begin or end inside an escape of the text around it
(``%33%393\\n`` holds ``393\\n``, its first ``3`` the end of ``%33``): what is left of that escape
would tell a character, so the place is widened over it (:func:`plain`). When a text holds one
secret as it is and nothing else, ``str.replace`` does it all (:func:`alone`, the common case
:mod:`adapters.auth.scrub` takes first).
"""

from __future__ import annotations

import functools

from adapters.auth import REDACTED, occurs, written

_STARTS = ("&", "\\", "%")  # every escape starts with one of them
_ESCAPE = 16  # characters: the longest escape of one character (or a surrogate pair) is 12

# what may follow an escape's first character: a secret starting with none of them, and holding
# no & \ or %, cannot begin or end inside an escape where the text holds it as it is
_BODY = frozenset('#;xX0123456789abcdefABCDEFmplgtquosu"\\/bfnrt')


@functools.lru_cache(maxsize=64)
def straddles(secret: str) -> bool:
    """Whether ``secret``, where a text holds it as it is, may begin or end inside an escape."""
    return secret[0] in _BODY or any(mark in secret for mark in _STARTS)


def alone(plain: list[str], marked: bool) -> bool:
    """Whether ``str.replace`` redacts every place of the ``plain`` secrets (those a text holds
    as it is): at most one, overlapping itself nowhere, none that may begin or end inside an
    escape of a ``marked`` text."""
    if not plain:
        return True
    secret = plain[0]
    return (
        len(plain) == 1
        and occurs.period(secret) == len(secret)
        and not (marked and straddles(secret))
    )


def plain(text: str, secret: str) -> list[tuple[int, int]]:
    """Where ``text`` holds ``secret`` as it is (overlapping places joined), each place widened
    over an escape it begins or ends inside (``%33%393\\n`` for ``393\\n``): what is left of one
    would tell a character."""
    spans, crossing = [], straddles(secret)
    for begin, end in occurs.runs(text, secret):
        window = text[max(0, begin - _ESCAPE) : end + _ESCAPE] if crossing else ""
        if any(mark in window for mark in _STARTS):
            begin, end = widened(text, begin, end)
        spans.append((begin, end))
    return spans


def widened(text: str, begin: int, end: int) -> tuple[int, int]:
    """``begin`` and ``end`` moved out of any escape they fall inside (a percent-encoded byte
    of a run, not the whole run)."""
    origin = max(0, begin - _ESCAPE)
    for m in written.ESCAPES.finditer(text, origin, end + _ESCAPE):
        a, b = m.span()
        if a >= end:
            break
        step = 3 if text[a] == "%" else b - a  # a run of bytes: each byte its own escape
        if a < begin < b:
            begin = a + (begin - a) // step * step
        if a < end < b:
            end = a + -(-(end - a) // step) * step
    return begin, end


def redact(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced; overlapping or adjacent spans are replaced as one."""
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:  # adjacent too: one place
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    out, last = [], 0
    for begin, end in merged:
        out += [text[last:begin], REDACTED]
        last = end
    return "".join([*out, text[last:]])
