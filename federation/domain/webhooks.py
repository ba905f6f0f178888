"""Signed callbacks in the Standard Webhooks format (https://www.standardwebhooks.com/).

A callback whose receiver declared a secret carries three headers: ``webhook-id`` (the message's id,
the same on every retry: ``<exchange id>:<state>``, as its ``Idempotency-Key``),
``webhook-timestamp`` (Unix seconds when this try was signed) and ``webhook-signature``
(``v1,`` and the base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>`` under the secret's key). The
receiver recomputes it over the exact bytes it got, compares in constant time and refuses a
timestamp far from its clock, so a forged, altered or replayed callback is told apart. The
libraries the Standard Webhooks project publishes verify it as they are. While a secret is
rotated the header carries one signature per secret, space-separated (``v1,<new> v1,<old>``):
a receiver accepts the callback when any of them is its own.

The secret is written as the format has it: ``whsec_`` and the base64 of a random key of 24 to 64
bytes (``whsec_`` + ``openssl rand -base64 32``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

PREFIX = b"whsec_"
KEY_BYTES = (24, 64)  # the format's bounds on the key, in bytes
RULE = (
    "write whsec_ followed by the base64 of a random key of 24 to 64 bytes "
    "(whsec_ + openssl rand -base64 32)"
)


def signing_key(secret: bytes) -> bytes | None:
    """The HMAC key a ``whsec_<base64>`` secret holds; None if it is no such secret (the reason
    is :data:`RULE`; the secret itself is never quoted)."""
    text = secret.strip()
    if not text.startswith(PREFIX):
        return None
    try:
        key = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    low, high = KEY_BYTES
    return key if low <= len(key) <= high else None


def signature(key: bytes, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "<msg_id>.<timestamp>.<body>">``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    keys: Sequence[bytes], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a callback signed with each of ``keys``: one signature per key, in
    that order, space-separated (the current secret's first, then the one it replaces)."""
    signatures = (signature(k, msg_id=msg_id, timestamp=timestamp, body=body) for k in keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
