"""Every place a text holds a secret, overlapping places included.

``str.find`` stepped past each match, ``str.replace`` and ``str.count`` see only the leftmost
places that do not overlap: in ``aaaaaaa`` they see ``aaaa`` once, and three of its characters,
part of the match at index 3, were kept. A secret that overlaps itself (``abab``, ``aaaa``,
``abcab``) is found here at each place: a run of places one period apart (the least ``p`` with
``secret[p:] == secret[:-p]``) is read in one pass, each further place costing ``p`` characters
compared, so a text full of such a secret is read in time linear in its length.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=64)
def period(secret: str) -> int:
    """The least ``p`` with ``secret[p:] == secret[:-p]`` (its length if no such ``p``)."""
    border = [0] * len(secret)  # the longest proper prefix that is also a suffix, per prefix
    k = 0
    for i in range(1, len(secret)):
        while k and secret[i] != secret[k]:
            k = border[k - 1]
        if secret[i] == secret[k]:
            k += 1
        border[i] = k
    return len(secret) - (border[-1] if secret else 0)


def runs(text: str, secret: str) -> list[tuple[int, int]]:
    """Where ``text`` holds ``secret``: each run of places one period apart (adjacent copies
    included) as (where the first starts, where the last ends), in order; two runs may
    overlap (``aabaa`` at 0 and 4 of ``aabaaabaa``)."""
    size = len(secret)
    p = period(secret)
    tail = secret[size - p :]
    found = []
    at = text.find(secret)
    while at != -1:
        end = at + size
        while text.startswith(tail, end):  # the place one period on holds it too
            end += p
        found.append((at, end))
        # none starts less than a period after the last place; the one a period after is not
        at = text.find(secret, end - size + p + 1)
    return found


def count(text: str, secret: str) -> int:
    """How many places of ``text`` hold ``secret``, overlapping places each counted."""
    size, p = len(secret), period(secret)
    return sum((end - at - size) // p + 1 for at, end in runs(text, secret))
