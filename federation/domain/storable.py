"""Text a journal can store and compare: PostgreSQL's ``text`` cannot hold NUL, and no UTF-8
encoder takes a lone surrogate (which a percent-decoded query can carry), so a search filter
holding either would fail inside the database, where it reads as the journal failing."""

from __future__ import annotations

import re
from collections.abc import Mapping

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(values: Mapping[str, str | None]) -> str | None:
    """The name of the first value holding NUL or a lone surrogate; None when all can be stored."""
    for name, value in values.items():
        if value and _UNSTORABLE.search(value):
            return name
    return None
