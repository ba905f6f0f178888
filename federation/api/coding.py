"""Content codings of request bodies, read by the edge itself.

The broker's server does not let aiohttp decompress request bodies (``auto_decompress=False`` in
:func:`federation.api.net.start_site`): aiohttp answers a coding it cannot read (``br`` without
Brotli) with its own bare 400 before any route sees the request, reads a coding it does not know
(``x-foo``) as if it were none, and reports a body that does not decompress as an error no route
expects. Here each is a refusal the intake journals: a coding other than gzip or deflate (one at
most, ``identity`` being none) is 415, a body that does not decompress as its Content-Encoding says
is 400, and what it decompresses to counts against the body limit (413), so a small compressed body
cannot grow past it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from federation.api.problems import ProblemError

CODINGS = ("gzip", "deflate")  # the content codings a request body may have (besides identity)
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 §8.4.1.3: x-gzip is gzip
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS


def coding_of(values: Iterable[str]) -> str | None:
    """The one content coding the Content-Encoding header(s) name (None for none or identity);
    415 unsupported-content-encoding for any other, or for more than one."""
    named = [
        token.strip().lower()
        for value in values
        for token in value.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    codings = [_ALIASES.get(name, name) for name in named]
    accepted = " or ".join(CODINGS)
    if len(codings) > 1:
        raise ProblemError(
            415,
            "unsupported-content-encoding",
            f"the body names {len(codings)} content codings ({_quoted(', '.join(named)[:200])}); "
            f"send it with one at most: {accepted}, or none",
            accepted=list(CODINGS),
        )
    if codings and codings[0] not in CODINGS:
        raise ProblemError(
            415,
            "unsupported-content-encoding",
            f"the body's Content-Encoding {named[0][:100]!r} is not read here; "
            f"send it as {accepted}, or uncompressed",
            accepted=list(CODINGS),
        )
    return codings[0] if codings else None


def _quoted(text: str) -> str:
    """Header text quoted back as it can be answered and journalled: a byte that was not UTF-8
    (aiohttp reads it as a lone surrogate, which orjson refuses to write) as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def decompressed(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` decompressed as ``coding`` says, never to more than ``limit`` bytes: 400 when it
    does not decompress (not that format, cut short, bytes after its end), 413 past the limit.
    gzip may hold several members (RFC 1952 §2.2); deflate is the zlib format (RFC 9110 §8.4.1.2),
    also taken as raw deflate when sent so, as aiohttp took it."""
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflate = zlib.decompressobj(_wbits(coding, rest[0]))
        try:
            part = inflate.decompress(rest, limit - size + 1)
        except zlib.error:
            raise _undecodable(coding, "its data is not in that format") from None
        size += len(part)
        if size > limit:
            raise ProblemError(
                413,
                "body-too-large",
                f"the body decompresses ({coding}) to more than the limit of {limit} bytes",
                limit=limit,
            )
        out.append(part)
        if not inflate.eof:
            raise _undecodable(coding, "it ends before its compressed stream does")
        rest = inflate.unused_data
        if rest and coding != "gzip":
            raise _undecodable(coding, "there are bytes after the end of its stream")
    return b"".join(out)


def _wbits(coding: str, first: int) -> int:
    if coding == "gzip":
        return _GZIP
    return _ZLIB if first & 0x0F == 8 else _RAW


def _undecodable(coding: str, why: str) -> ProblemError:
    return ProblemError(
        400,
        "body-not-decompressible",
        f"the body does not decompress as its Content-Encoding ({coding}) says: {why}; "
        "send it compressed so, or uncompressed without that header",
    )
