"""Hashes and HMACs by name: SHA-256 and the national hash SM3 (GM/T 0004-2012), via ``cryptography``.

SM3 comes from the OpenSSL that ``cryptography`` links; :func:`sm3_available` says whether it does.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sm3": hashes.SM3}


def digest(name: str, data: bytes) -> bytes:
    """``data`` hashed with ``name`` (sha256 or sm3)."""
    h = hashes.Hash(_HASHES[name]())
    h.update(data)
    return h.finalize()


def mac(name: str, key: bytes, data: bytes) -> bytes:
    """HMAC of ``data`` under ``key`` with the hash ``name`` (sha256 or sm3)."""
    h = hmac.HMAC(key, _HASHES[name]())
    h.update(data)
    return h.finalize()


def encode(raw: bytes, encoding: str) -> str:
    """``raw`` as lowercase hex or standard base64."""
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode("ascii")


def sm3_available() -> bool:
    """Whether the OpenSSL under ``cryptography`` provides SM3."""
    try:
        digest("sm3", b"abc")
    except UnsupportedAlgorithm:
        return False
    return True
