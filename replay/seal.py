"""Sealing payloads and signing the chain, once for every backend.

Payloads (every event's data: the application, the mapped request, attempt transcripts, replies;
and refused request bodies) are sealed with AES-256-GCM under the keyring's current data key
(``replay/keys.py``). A sealed value is text, so the archive and every column type take it::

    ~tb2.<key id>.<base85(nonce ‖ ciphertext ‖ tag)>

The plaintext of a ``~tb2.`` value is compressed first (``replay/compress.py``: encrypted bytes do
not compress, so it is now or never), and base85 costs a quarter where base64 cost a third. Values
of the first format, ``~tb1.<key id>.<base64url(…)>`` with the plaintext as it was, still open.

The associated data binds each ciphertext to where it belongs (an event's exchange id, kind and
time; a refusal's time, status and size), so a sealed value moved to another row does not open.
A value without the prefix is in clear: written before the journal had keys, or by an unkeyed
journal; ``tongban journal rekey`` seals those.

The MAC key signs the chain head (``sign_head``) and the checkpoints (``sign``): HMAC-SHA256, so
only a holder of the key can say where the chain ends. Backends never call AES or HMAC themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from federation.domain.errors import JournalError
from replay.compress import CompressionError, compress, decompress
from replay.keys import Keyring

PREFIX = b"~tb2."  # what seal() writes: compressed, base85
PREFIX_1 = b"~tb1."  # the first format: not compressed, base64url
PREFIXES = (PREFIX, PREFIX_1)


class SealError(JournalError):
    """A sealed value that does not open: a wrong or missing key, or an altered value."""


def event_aad(exchange_id: str, kind: str, at: float) -> bytes:
    """What an event's sealed data is bound to."""
    return b"\0".join((b"tongban/event", exchange_id.encode(), kind.encode(), _num(at)))


def refusal_aad(at: float, status: int, body_bytes: int) -> bytes:
    """What a refused body is bound to (numbers only: text columns may be escaped on storage)."""
    return b"\0".join((b"tongban/refusal", _num(at), _num(status), _num(body_bytes)))


def _num(value: float | int) -> bytes:
    return repr(float(value)).encode()


class Seal:
    """Seals and opens values, signs and checks MACs, with one keyring (None: clear, unsigned)."""

    def __init__(self, ring: Keyring | None, *, where: str = "the journal key") -> None:
        self.ring = ring
        self.where = where
        self._aead = {} if ring is None else {k: AESGCM(v) for k, v in ring.data.items()}

    @property
    def keyed(self) -> bool:
        """Whether values are sealed and the head signed."""
        return self.ring is not None

    # -- sealing ----------------------------------------------------------------------------------

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        """``plain`` sealed under the current key (unchanged when unkeyed)."""
        if self.ring is None:
            return plain
        nonce = os.urandom(12)
        sealed = self._aead[self.ring.current].encrypt(nonce, compress(plain), aad)
        return PREFIX + self.ring.current.encode() + b"." + base64.b85encode(nonce + sealed)

    def open(self, stored: bytes, aad: bytes, what: str) -> bytes:
        """The clear bytes of a stored value (one in clear is returned as it is)."""
        if not stored.startswith(PREFIXES):
            return stored
        first = stored.startswith(PREFIX_1)
        try:
            kid_raw, _, body = stored[len(PREFIX) :].partition(b".")
            kid = kid_raw.decode("ascii")
            if first:
                raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
            else:
                raw = base64.b85decode(body)
        except (UnicodeDecodeError, ValueError):
            raise SealError(f"{what} is not a well-formed sealed value (altered?)") from None
        aead = self._aead.get(kid)
        if aead is None:
            held = "no key at all" if self.ring is None else "no such key"
            raise SealError(f"{what} is sealed with key {kid}, and {self.where} has {held}")
        try:
            plain = aead.decrypt(raw[:12], raw[12:], aad)
        except (InvalidTag, ValueError):
            raise SealError(
                f"{what} does not open with key {kid} of {self.where}: a wrong key, or the "
                "sealed value or what it is bound to was altered"
            ) from None
        if first:
            return plain
        try:
            return decompress(plain, what)
        except CompressionError as exc:
            raise SealError(str(exc)) from None

    def sealed_with_current(self, stored: bytes) -> bool:
        """Whether ``stored`` is already sealed with the current key (rekey skips it then)."""
        return self.ring is not None and stored.startswith(
            PREFIX + self.ring.current.encode() + b"."
        )

    # -- signing ----------------------------------------------------------------------------------

    def sign(self, tag: bytes, parts: Iterable[bytes]) -> bytes | None:
        """HMAC-SHA256 of ``parts`` under ``tag`` (None when unkeyed)."""
        if self.ring is None:
            return None
        mac = hmac.new(self.ring.mac, tag, hashlib.sha256)
        for part in parts:
            mac.update(struct.pack(">I", len(part)))
            mac.update(part)
        return mac.digest()

    def sign_head(self, seq: int, head: bytes) -> bytes | None:
        """The MAC of the chain head (seq, hash of that event)."""
        return self.sign(b"tongban/head", (struct.pack(">q", seq), head))

    def head_signed(self, seq: int, head: bytes, mac: bytes | None) -> bool:
        """Whether ``mac`` signs this head with our key."""
        expected = self.sign_head(seq, head)
        return expected is not None and mac is not None and hmac.compare_digest(expected, mac)
