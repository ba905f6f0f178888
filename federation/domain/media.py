"""Media types as HTTP writes them: the ``charset`` parameter of a ``Content-Type``.

Both the intake (what a caller sends) and the adapters (what a partner answers) read bodies as
UTF-8 only; a body declared in another charset must be refused or treated as unreadable, never
read as UTF-8 regardless (``+lnNZJ2WH-``, UTF-7 for 陳大文, is valid UTF-8 with another meaning).
"""

from __future__ import annotations

import re

# One parameter (RFC 9110 §5.6.6): a token, "=", and a token or a quoted string.
_PARAMETER = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")


def charset_of(content_type: str) -> str | None:
    """The ``charset`` of a ``Content-Type``, unquoted and lower-cased; None when it has none.

    A charset given twice with different values comes back as both (``"utf-8, utf-7"``), which
    is no charset anyone accepts: such a header is ambiguous."""
    if ";" not in content_type:  # the usual case: a bare media type
        return None
    found: list[str] = []
    for match in _PARAMETER.finditer(content_type):
        if match.group(1).lower() != "charset":
            continue
        value = match.group(2).strip()
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        value = value.strip().lower()
        if value not in found:
            found.append(value)
    return ", ".join(found) if found else None
