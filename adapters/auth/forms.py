"""The shapes a secret travels in besides its own characters, so that a partner's echo of one is
found too: base64 of the secret (how a gateway's log line or error page may print a credential:
``invalid credential: c2VjcmV0…``), HTTP Basic credentials (RFC 7617), base64 of
``user:password``, as the header was built, and the hex of the secret's UTF-8 bytes (a dump, a
digest-like log field), lower and upper case, looked for only as it is (:func:`bare`).

Base64 of a piece of a text depends on where the piece starts: three bytes go to four characters,
so what a byte becomes depends on the bytes before it, and the secret inside ``user:secret`` or a
JSON body that was base64-encoded whole is written in characters its own base64 does not hold.
But only its first and last characters mix with the text's: the rest, its core, is one of three
strings whatever the text around it, one for each offset of the secret modulo 3
(:func:`_cores`); each is looked for, so base64 of any text that holds the secret is found,
wherever it stands in it (the one or two characters either side of the core, which hold a few
bits of its first and last bytes mixed with the text's, are kept). The shapes it was sent in
are looked for whole as well (the secret alone, and each :class:`Basic` value an adapter tells
the scrubber it sent: a secret that is itself a Basic header's value, ``Basic dXNlcjpwYXNz``, is
read so as well: its base64 alone, ``user:password`` and the password), so the padding and edge
characters of those go too. Each shape is written with either alphabet of RFC 4648 (standard
``+/``, URL-safe ``-_``), with its ``=`` padding and without. Each of those strings is a secret to
the scrubber like the one it came from (:func:`of`), so it is found in every written form too
(``%2B`` for ``+``, ``\\/`` for ``/``, ``%3D`` for ``=``, encoded twice; base64 broken into
lines: :mod:`adapters.auth.rewrite`). But cut off only as :func:`heads` says: a text that ends in
the first four characters of the secret as written loses them, in the first eight of a shape's
whole base64, never in the start of its hex or of a core (``6162``, the hex of ``ab``, ends many a
receipt number or amount).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass, field

from federation.config.secrets import MIN_SECRET


@dataclass(frozen=True, slots=True)
class Basic:
    """HTTP Basic credentials as sent (RFC 7617): ``Basic`` and base64 of ``user:password``."""

    user: str
    password: str | bytes = field(repr=False)

    def raw(self) -> bytes:
        """``user:password``, the bytes the header's base64 holds (UTF-8, RFC 7617 2.1)."""
        password = self.password
        if isinstance(password, str):
            password = password.encode("utf-8")
        return self.user.encode("utf-8") + b":" + password

    def header(self) -> str:
        """The ``Authorization`` header's value."""
        return "Basic " + base64.b64encode(self.raw()).decode("ascii")


Secret = str | bytes | Basic | None
"""What an attempt read or built, as an adapter hands it to the scrubber."""

# a Basic header's value: the scheme, then base64 (token68, RFC 7235 2.1; either alphabet)
_BASIC = re.compile(r"\s*basic\s+([A-Za-z0-9+/_-]+=*)\s*", re.IGNORECASE)


_DERIVED = 8  # characters: a shape derived from a secret (base64, core, hex) shorter, or the
# cut-off start of its base64 shorter, is not looked for: ids and codes hold as few by chance


@functools.lru_cache(maxsize=64)  # as the scrubber's other caches of secrets
def of(secret: Secret) -> tuple[str, ...]:
    """The strings that stand for ``secret`` in a text: itself (if it is text: bytes that are
    not UTF-8 cannot appear in one), the base64 of each shape it was sent in, in either
    alphabet, padded and not, the cores of its base64 at each offset, and its hex in either
    case; none shorter than :data:`MIN_SECRET`, and none derived from it shorter than
    :data:`_DERIVED` (the unpadded base64 of a secret of four or five bytes). A password sent as
    :class:`Basic` stands for itself as well (``user:password`` holds it, so is not searched
    for apart)."""
    if secret is None:
        return ()
    found: dict[str, None] = {}
    if isinstance(secret, Basic):
        found.update(dict.fromkeys(of(secret.password)))
        found.update(dict.fromkeys(_base64(secret.raw())))
    else:
        text: str | None = secret if isinstance(secret, str) else _text(secret)
        data = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
        if text is not None:
            found[text] = None
            sent = _basic(text)
            if sent is not None:  # a Basic header's value: its base64, and what that holds
                found.update(dict.fromkeys(of(sent)))
        found.update(dict.fromkeys(_base64(data)))
        found.update(dict.fromkeys(_cores(data)))
        found.update(dict.fromkeys((data.hex(), data.hex().upper())))
    written = _shapes(secret)[0]
    return tuple(s for s in found if len(s) >= (MIN_SECRET if s in written else _DERIVED))


@functools.lru_cache(maxsize=64)
def heads(secret: Secret) -> tuple[tuple[str, int], ...]:
    """Each string of :func:`of` with how many of its first characters a text must end in to
    lose them (a reply cut off inside it): :data:`MIN_SECRET` for the secret as written,
    :data:`_DERIVED` for a whole shape's base64, 0 (never: found only whole) for the
    cores of its base64 and its hex. The hex of many secrets begins with decimal digits
    (``ab`` is ``6162``), and a base64 core is the middle of a longer text: a receipt, an
    amount, a date or an id that ends in their first few characters is not cut."""
    written, whole = _shapes(secret)
    return tuple(
        (s, MIN_SECRET if s in written else _DERIVED if s in whole else 0) for s in of(secret)
    )


def _shapes(secret: Secret) -> tuple[frozenset[str], frozenset[str]]:
    """The strings of :func:`of` that are ``secret`` as written, and those that are the whole
    base64 of a shape it was sent in."""
    if secret is None:
        return frozenset(), frozenset()
    if isinstance(secret, Basic):
        written, whole = _shapes(secret.password)
        return written, whole | frozenset(_base64(secret.raw()))
    text: str | None = secret if isinstance(secret, str) else _text(secret)
    data = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    written, whole = frozenset(() if text is None else (text,)), frozenset(_base64(data))
    sent = None if text is None else _basic(text)
    if sent is not None:
        more, more_whole = _shapes(sent)
        written, whole = written | more, whole | more_whole
    return written, whole


@functools.lru_cache(maxsize=64)
def bare(secret: Secret) -> tuple[str, ...]:
    """The strings of :func:`of` that a text holds only as they are: the hex of ``secret``
    (digits and ``a``-``f``, which no encoder escapes), searched for without reading a text
    through its escapes."""
    if secret is None or isinstance(secret, Basic):
        return bare(secret.password) if isinstance(secret, Basic) else ()
    data = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    return tuple(s for s in (data.hex(), data.hex().upper()) if len(s) >= MIN_SECRET)


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _base64(data: bytes) -> tuple[str, ...]:
    """``data`` in base64: the standard alphabet and the URL-safe one, each padded and not (as
    many as differ)."""
    standard = base64.b64encode(data).decode("ascii")
    safe = standard.replace("+", "-").replace("/", "_")
    return tuple(dict.fromkeys((standard, standard.rstrip("="), safe, safe.rstrip("="))))


_CORE = 8  # characters: a core shorter would be found by chance in a long enough base64 text


def _cores(data: bytes) -> tuple[str, ...]:
    """The base64 characters that hold only bits of ``data`` where a text holds it at an offset
    of 0, 1 or 2 modulo 3 (character ``k`` holds bits ``6k`` to ``6k + 6`` of the text), in
    either alphabet; none shorter than :data:`_CORE`."""
    found: dict[str, None] = {}
    for offset in range(3):
        standard = base64.b64encode(bytes(offset) + data).decode("ascii")
        core = standard[-(-8 * offset // 6) : 8 * (offset + len(data)) // 6]
        if len(core) >= _CORE:
            found[core] = None
            found[core.replace("+", "-").replace("/", "_")] = None
    return tuple(found)


def _basic(value: str) -> Basic | None:
    """The credentials of ``value`` if it is an HTTP Basic header's value (``Basic`` and the
    base64 of ``user:password``, as a partner's ``api_key`` with ``header: Authorization`` may
    carry them), else None."""
    found = _BASIC.fullmatch(value)
    if found is None:
        return None
    token = found.group(1).rstrip("=")
    token += "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(token.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = raw.partition(b":")
    text = _text(user)
    if not colon or text is None:
        return None
    return Basic(user=text, password=password)
