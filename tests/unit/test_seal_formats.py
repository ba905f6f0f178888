"""Sealed payloads: compressed before they are sealed, and values of the first format still open."""

from __future__ import annotations

import base64
import os

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from replay.compress import CompressionError, compress, decompress
from replay.keys import Keyring
from replay.seal import PREFIX, PREFIX_1, Seal, SealError, event_aad

APPLICATION = orjson.dumps(
    {
        "application": {
            "mode": "全程网办",
            "region_code": "810000",
            "applicant": {
                "name": "李永燊",
                "name_en": "LEE, Wing Sun",
                "documents": {"hk_id_card": {"number": "K802133(3)"}},
                "phone": "+85261937204",
                "address": {
                    "region_code": "810000",
                    "text": "香港九龍觀塘協和街33號安基大廈7樓D室",
                },
            },
            "attachments": [{"kind": "hk_id_card", "file": "tbfile://hk/0153/hkid.pdf"}],
        },
        "request_hash": "sha256:" + "6e" * 32,
    }
)
AAD = event_aad("01JD0000000000000000000000", "received", 1_800_000_000.25)


def first_format(ring: Keyring, plain: bytes, aad: bytes) -> bytes:
    """A value as the journal sealed it before compression: base64url, plaintext as given."""
    nonce = os.urandom(12)
    sealed = AESGCM(ring.data[ring.current]).encrypt(nonce, plain, aad)
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=")
    return PREFIX_1 + ring.current.encode() + b"." + body


def test_a_sealed_application_is_compressed_and_opens_as_written() -> None:
    """A payload sealed now is smaller than its clear JSON, and opens to the exact bytes."""
    seal = Seal(Keyring.generate())
    stored = seal.seal(APPLICATION, AAD)
    assert stored.startswith(PREFIX)
    assert len(stored) < len(APPLICATION)
    assert seal.open(stored, AAD, "the application") == APPLICATION


def test_a_value_of_the_first_format_still_opens() -> None:
    """Journals written before compression keep opening: ~tb1. values are read as they were."""
    ring = Keyring.generate()
    seal = Seal(ring)
    old = first_format(ring, APPLICATION, AAD)
    assert seal.open(old, AAD, "an old event") == APPLICATION
    assert not seal.sealed_with_current(old)  # rekey seals it again, compressed
    assert seal.sealed_with_current(seal.seal(APPLICATION, AAD))


def test_a_sealed_value_that_does_not_inflate_is_a_seal_error() -> None:
    """Ciphertext that authenticates but holds no DEFLATE stream is a clear error, not a crash."""
    ring = Keyring.generate()
    nonce = os.urandom(12)
    junk = AESGCM(ring.data[ring.current]).encrypt(nonce, b"\xff\xfe not deflate", AAD)
    stored = PREFIX + ring.current.encode() + b"." + base64.b85encode(nonce + junk)
    with pytest.raises(SealError, match="does not inflate"):
        Seal(ring).open(stored, AAD, "event 7")


def test_a_moved_compressed_value_does_not_open() -> None:
    """Compression changes nothing of the binding: a value moved to another event is refused."""
    seal = Seal(Keyring.generate())
    stored = seal.seal(APPLICATION, AAD)
    elsewhere = event_aad("01JD0000000000000000000001", "received", 1_800_000_000.25)
    with pytest.raises(SealError, match="does not open"):
        seal.open(stored, elsewhere, "event 8")


def test_compression_round_trips_and_refuses_a_truncated_stream() -> None:
    """What compress() makes, decompress() restores; a cut stream is refused, not half-read."""
    packed = compress(APPLICATION)
    assert decompress(packed, "x") == APPLICATION
    with pytest.raises(CompressionError, match=r"whole value|does not inflate"):
        decompress(packed[: len(packed) // 2], "x")
