"""What every HTTP-based adapter needs when reading a partner's reply.

Replies are untrusted: the body is read within a limit *after* decompression (a gzip bomb is
refused, not inflated), and ``Retry-After`` is understood in both its forms.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import aiohttp


class ReplyTooLarge(Exception):
    pass


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, decompressed, but never more than ``limit`` bytes of it held.

    ``Content-Length`` counts compressed bytes, so it only settles the matter for identity
    encoding; otherwise the body is streamed (aiohttp inflates in bounded chunks) and counted.
    """
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    length = resp.content_length
    if length is not None and encoding == "identity":
        if length > limit:
            raise ReplyTooLarge()
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
