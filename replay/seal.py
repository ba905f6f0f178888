"""Sealing payloads and signing the chain, once for every backend.

Payloads (every event's data: the application, the mapped request, attempt transcripts, replies;
and refused request bodies) are sealed with AES-256-GCM under the keyring's current data key
(``replay/keys.py``). What ``seal`` writes is bytes, kept as they are in the BLOB/bytea columns::

    ~tb3.<key id>.<nonce ‖ ciphertext ‖ tag>      plaintext: <flag> [<crc32 of context>] <DEFLATE>

The plaintext is compressed first (``replay/compress.py``: encrypted bytes do not compress, so it
is now or never). The flag says which dictionary: a shipped one alone, or a shipped one with a
*context* after it: the clear bytes of the exchange's ``received`` event, which the mapped request
and the later events repeat (names, addresses, document numbers). A value sealed with a context
opens only with the same context, which its CRC-32 checks. Flags 0 and 1 are DICTIONARY_1 alone
and with the context, as written before; values sealed now are 2 (DICTIONARY_2 alone) or 3
(DICTIONARY_2, then a *lead*, then the context, the CRC-32 covering both; the lead is the
exchange's id, which every attempt's transcript repeats in a header and the reader knows).

Where a value must be text (the archive's JSON lines), ``as_text`` spells it
``~tb3.<key id>.<base85(…)>`` and ``from_text`` reads it back. Values of the earlier formats still
open: ``~tb2.<key id>.<base85(…)>`` (compressed, no context) and ``~tb1.<key id>.<base64url(…)>``
(the plaintext as it was).

The associated data binds each ciphertext to where it belongs (an event's exchange id, kind and
time; a refusal's time, status and size; the partner's words in a row's last error, its exchange
id: ``replay/lasterror.py``), so a sealed value moved to another row does not open.
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
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from federation.domain.errors import JournalDamaged
from replay.compress import DICTIONARY_1, DICTIONARY_2, CompressionError, compress, decompress
from replay.keys import Keyring

PREFIX = b"~tb3."  # what seal() writes: binary, compressed (with the exchange's context, or not)
PREFIX_2 = b"~tb2."  # the second format: compressed, base85
PREFIX_1 = b"~tb1."  # the first format: not compressed, base64url
PREFIXES = (PREFIX, PREFIX_2, PREFIX_1)
# The flag byte before the DEFLATE stream of a ~tb3. value: the dictionary, with a context or not.
_PLAIN, _WITH_CONTEXT, _PLAIN_2, _WITH_CONTEXT_2 = 0, 1, 2, 3
_DICTIONARIES = {
    _PLAIN: (DICTIONARY_1, False),
    _WITH_CONTEXT: (DICTIONARY_1, True),
    _PLAIN_2: (DICTIONARY_2, False),
    _WITH_CONTEXT_2: (DICTIONARY_2, True),
}
CONTEXTS_KEPT = 4096  # exchanges whose context a Seal remembers (about 1 KB each)


class SealError(JournalDamaged):
    """A sealed value that does not open: a wrong or missing key, or an altered value."""


def event_aad(exchange_id: str, kind: str, at: float) -> bytes:
    """What an event's sealed data is bound to."""
    return b"\0".join((b"tongban/event", exchange_id.encode(), kind.encode(), _num(at)))


def error_aad(exchange_id: str) -> bytes:
    """What the partner's words in an exchange's ``last_error`` are bound to (its row)."""
    return b"\0".join((b"tongban/error", exchange_id.encode()))


def refusal_aad(at: float, status: int, body_bytes: int) -> bytes:
    """What a refused body is bound to (numbers only: text columns may be escaped on storage)."""
    return b"\0".join((b"tongban/refusal", _num(at), _num(status), _num(body_bytes)))


def _num(value: float | int) -> bytes:
    return repr(float(value)).encode()


def as_text(stored: bytes) -> str:
    """A stored value as text (for the archive's JSON lines): a binary sealed value with its
    body in base85, anything else as the UTF-8 text it is."""
    if stored.startswith(PREFIX):
        kid, _, body = stored[len(PREFIX) :].partition(b".")
        return (PREFIX + kid + b"." + base64.b85encode(body)).decode("ascii")
    return stored.decode()


def from_text(text: str) -> bytes:
    """The stored bytes ``as_text`` spelled (ValueError when a body is not base85)."""
    raw = text.encode()
    if raw.startswith(PREFIX):
        kid, _, body = raw[len(PREFIX) :].partition(b".")
        return PREFIX + kid + b"." + base64.b85decode(body)
    return raw


class ContextMissing(SealError):
    """A value sealed with its exchange's context, opened without it (its tag did check out)."""


class Contexts:
    """The ``received`` payloads of recently written or read exchanges, by exchange id: the
    context that the exchange's later events are compressed with. Bounded, shared by threads."""

    def __init__(self, size: int = CONTEXTS_KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, exchange_id: str, plain: bytes) -> None:
        with self._lock:
            self._kept[exchange_id] = plain
            self._kept.move_to_end(exchange_id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def get(self, exchange_id: str) -> bytes | None:
        with self._lock:
            return self._kept.get(exchange_id)


class Seal:
    """Seals and opens values, signs and checks MACs, with one keyring (None: clear, unsigned)."""

    def __init__(self, ring: Keyring | None, *, where: str = "the journal key") -> None:
        self.ring = ring
        self.where = where
        self._aead = {} if ring is None else {k: AESGCM(v) for k, v in ring.data.items()}
        self.contexts = Contexts()

    @property
    def keyed(self) -> bool:
        """Whether values are sealed and the head signed."""
        return self.ring is not None

    # -- sealing ----------------------------------------------------------------------------------

    def seal(
        self, plain: bytes, aad: bytes, context: bytes | None = None, *, lead: bytes = b""
    ) -> bytes:
        """``plain`` sealed under the current key (unchanged when unkeyed), compressed with
        DICTIONARY_2, and ``lead`` and ``context`` after it when a context is given."""
        if self.ring is None:
            return plain
        if context:
            head = bytes((_WITH_CONTEXT_2,)) + struct.pack(">I", zlib.crc32(lead + context))
            packed = compress(plain, lead + context, DICTIONARY_2)
        else:
            head, packed = bytes((_PLAIN_2,)), compress(plain, b"", DICTIONARY_2)
        return self._sealed(head + packed, aad)

    def _sealed(self, inner: bytes, aad: bytes) -> bytes:
        assert self.ring is not None
        nonce = os.urandom(12)
        sealed = self._aead[self.ring.current].encrypt(nonce, inner, aad)
        return PREFIX + self.ring.current.encode() + b"." + nonce + sealed

    def open(
        self,
        stored: bytes,
        aad: bytes,
        what: str,
        context: bytes | None = None,
        *,
        lead: bytes = b"",
    ) -> bytes:
        """The clear bytes of a stored value (one in clear is returned as it is). A value sealed
        with a context needs the same ``context`` (and ``lead``): without it, ContextMissing."""
        if not stored.startswith(PREFIXES):
            return stored
        inner = self._inner(stored, aad, what)
        if stored.startswith(PREFIX_1):
            return inner
        if stored.startswith(PREFIX_2):
            return self._inflated(inner, b"", DICTIONARY_1, what)
        flag, packed = inner[0] if inner else -1, inner[1:]
        dictionary, with_context = _DICTIONARIES.get(flag, (b"", False))
        if not dictionary or (with_context and len(packed) < 4):
            raise SealError(f"{what} has an unknown compression flag (altered?)")
        if not with_context:
            return self._inflated(packed, b"", dictionary, what)
        if context is None:
            raise ContextMissing(f"{what} opens only with its exchange's received event")
        if flag == _WITH_CONTEXT:
            lead = b""  # written before leads: the context alone
        if struct.unpack(">I", packed[:4])[0] != zlib.crc32(lead + context):
            raise SealError(f"{what} was sealed with another context than its received event")
        return self._inflated(packed[4:], lead + context, dictionary, what)

    def reseal(self, stored: bytes, aad: bytes, new: Seal, what: str) -> bytes:
        """``stored`` sealed again under ``new``'s current key, its compressed bytes as they are
        (so a value sealed with a context needs none here); clear values are sealed."""
        if not stored.startswith(PREFIX):
            return new.seal(self.open(stored, aad, what), aad)
        if new.ring is None:
            raise SealError(f"{what}: cannot reseal without a key")
        return new._sealed(self._inner(stored, aad, what), aad)

    def _inner(self, stored: bytes, aad: bytes, what: str) -> bytes:
        """The decrypted bytes of a sealed value, its tag checked."""
        kid_raw, _, body = stored[len(PREFIX) :].partition(b".")
        try:
            kid = kid_raw.decode("ascii")
            if stored.startswith(PREFIX_1):
                raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
            elif stored.startswith(PREFIX_2):
                raw = base64.b85decode(body)
            else:
                raw = body
        except (UnicodeDecodeError, ValueError):
            raise SealError(f"{what} is not a well-formed sealed value (altered?)") from None
        aead = self._aead.get(kid)
        if aead is None:
            held = "no key at all" if self.ring is None else "no such key"
            raise SealError(f"{what} is sealed with key {kid}, and {self.where} has {held}")
        try:
            return aead.decrypt(raw[:12], raw[12:], aad)
        except (InvalidTag, ValueError):
            raise SealError(
                f"{what} does not open with key {kid} of {self.where}: a wrong key, or the "
                "sealed value or what it is bound to was altered"
            ) from None

    @staticmethod
    def _inflated(packed: bytes, context: bytes, dictionary: bytes, what: str) -> bytes:
        try:
            return decompress(packed, what, context, dictionary)
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
