"""Comparing a token a request sends with the one expected, in constant time, whatever it sends.

aiohttp reads a header's or a cookie's byte that is not UTF-8 as a lone surrogate, and a form's
field may hold any character: ``str.encode()`` raises on the first, ``hmac.compare_digest`` on
two ``str`` raises on the second (it takes ASCII only). Either would answer a 500 where a token
that does not match is refused. Here both sides are compared as bytes (UTF-8, a byte that was
not UTF-8 given back as itself), and a text that cannot be so encoded matches nothing.
"""

from __future__ import annotations

import hmac


def as_bytes(text: str) -> bytes | None:
    """``text`` as UTF-8 (a byte read as a lone surrogate given back as that byte), or None
    where it cannot be (another lone surrogate)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def same_token(sent: str, expected: str) -> bool:
    """Whether ``sent`` is ``expected``, compared in constant time as bytes; a side that cannot
    be encoded is a mismatch."""
    given, wanted = as_bytes(sent), as_bytes(expected)
    if given is None or wanted is None:
        return False
    return hmac.compare_digest(given, wanted)
