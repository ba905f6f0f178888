"""Sealed payloads: compressed before they are sealed (with the exchange's context where there is
one), kept as bytes, and values of the earlier formats still open."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from replay.compress import DICTIONARY_1, DICTIONARY_2, CompressionError, compress, decompress
from replay.keys import Keyring
from replay.seal import (
    PREFIX,
    PREFIX_1,
    PREFIX_2,
    ContextMissing,
    Seal,
    SealError,
    as_text,
    event_aad,
    from_text,
)

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
DICTIONARY_1_SHA256 = "a31878ca24d21caa"
DICTIONARY_2_SHA256 = "4ccb08fe122d14b4"


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


def second_format(ring: Keyring, plain: bytes, aad: bytes) -> bytes:
    """A value as the journal sealed it before binary values: compressed, base85 text."""
    nonce = os.urandom(12)
    sealed = AESGCM(ring.data[ring.current]).encrypt(nonce, compress(plain), aad)
    return PREFIX_2 + ring.current.encode() + b"." + base64.b85encode(nonce + sealed)


def test_a_value_of_the_second_format_still_opens() -> None:
    """Journals written with base85 text values keep opening, and rekey writes them anew."""
    ring = Keyring.generate()
    seal = Seal(ring)
    old = second_format(ring, APPLICATION, AAD)
    assert seal.open(old, AAD, "an old event") == APPLICATION
    assert not seal.sealed_with_current(old)


@pytest.mark.parametrize("flag", [b"\x00", b"\x07"])
def test_a_sealed_value_that_does_not_inflate_is_a_seal_error(flag: bytes) -> None:
    """Ciphertext that authenticates but holds no DEFLATE stream (or an unknown flag) is a clear
    error, not a crash."""
    ring = Keyring.generate()
    nonce = os.urandom(12)
    junk = AESGCM(ring.data[ring.current]).encrypt(nonce, flag + b"\xff\xfe not deflate", AAD)
    stored = PREFIX + ring.current.encode() + b"." + nonce + junk
    with pytest.raises(SealError, match=r"does not inflate|unknown compression flag"):
        Seal(ring).open(stored, AAD, "event 7")


MAPPED = orjson.dumps(
    {
        "mapped": {
            "xm": "李永燊",
            "ywxm": "LEE, Wing Sun",
            "gajmsfzh": "K802133(3)",
            "lxdh": "+85261937204",
            "txdz": "香港九龍觀塘協和街33號安基大廈7樓D室",
        }
    }
)
MAPPED_AAD = event_aad("01JD0000000000000000000000", "mapped", 1_800_000_001.5)


def test_a_later_event_sealed_with_its_application_as_context_is_smaller_and_needs_it() -> None:
    """The mapped request repeats the application: compressed with it as context it is smaller,
    opens with the same context, refuses another one, and says so when opened without any."""
    seal = Seal(Keyring.generate())
    alone = seal.seal(MAPPED, MAPPED_AAD)
    with_context = seal.seal(MAPPED, MAPPED_AAD, APPLICATION)
    assert len(with_context) < len(alone) - 40
    assert seal.open(with_context, MAPPED_AAD, "mapped", APPLICATION) == MAPPED
    with pytest.raises(ContextMissing, match="received event"):
        seal.open(with_context, MAPPED_AAD, "mapped")
    with pytest.raises(SealError, match="another context"):
        seal.open(with_context, MAPPED_AAD, "mapped", APPLICATION + b" ")
    other = Seal(Keyring.generate())
    moved = seal.reseal(with_context, MAPPED_AAD, other, "mapped")
    assert other.open(moved, MAPPED_AAD, "mapped", APPLICATION) == MAPPED  # rekey needs no context


def test_a_binary_value_spelled_as_text_reads_back_to_the_same_bytes() -> None:
    """The archive's text form of a binary sealed value is ASCII and gives back its exact bytes;
    a clear value stays the text it is."""
    stored = Seal(Keyring.generate()).seal(APPLICATION, AAD)
    text = as_text(stored)
    assert text.isascii() and text.startswith("~tb3.")
    assert from_text(text) == stored
    assert from_text(as_text(APPLICATION)) == APPLICATION


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


def sealed_by_hand(ring: Keyring, inner: bytes, aad: bytes) -> bytes:
    """A ~tb3. value around ``inner`` (flag, CRC, DEFLATE), as a journal of any version wrote it."""
    nonce = os.urandom(12)
    sealed = AESGCM(ring.data[ring.current]).encrypt(nonce, inner, aad)
    return PREFIX + ring.current.encode() + b"." + nonce + sealed


def test_values_written_with_the_first_dictionary_still_open() -> None:
    """Flags 0 and 1 (DICTIONARY_1 alone, and with the received event as context, no lead) are
    what journals wrote before DICTIONARY_2: they open as they were, whatever lead is offered."""
    ring = Keyring.generate()
    seal = Seal(ring)
    plain_0 = sealed_by_hand(ring, b"\x00" + compress(APPLICATION), AAD)
    assert seal.open(plain_0, AAD, "an old received event") == APPLICATION
    crc = struct.pack(">I", zlib.crc32(APPLICATION))
    with_1 = sealed_by_hand(ring, b"\x01" + crc + compress(MAPPED, APPLICATION), MAPPED_AAD)
    lead = b"01JD0000000000000000000000"
    assert seal.open(with_1, MAPPED_AAD, "an old mapped event", APPLICATION, lead=lead) == MAPPED
    with pytest.raises(SealError, match="another context"):
        seal.open(with_1, MAPPED_AAD, "an old mapped event", MAPPED)


def test_values_sealed_now_use_the_second_dictionary_and_the_lead() -> None:
    """New values carry flag 2 (alone) or 3 (lead and context): the region's vocabulary makes a
    Chinese application smaller than DICTIONARY_1 did, the exchange id in the lead makes a
    transcript that repeats it smaller, and a wrong lead is refused, not inflated to other bytes."""
    ring = Keyring.generate()
    seal = Seal(ring)
    lead = b"01JD0000000000000000000000"
    transcript = orjson.dumps(
        {"request": {"headers": {"X-Tongban-Exchange-Id": lead.decode()}}, "attempt": 1}
    )
    alone = seal.seal(APPLICATION, AAD)
    assert AESGCM(ring.data[ring.current]).decrypt(alone[14:26], alone[26:], AAD)[:1] == b"\x02"
    assert len(alone) < len(sealed_by_hand(ring, b"\x00" + compress(APPLICATION), AAD))
    led = seal.seal(transcript, MAPPED_AAD, APPLICATION, lead=lead)
    unled = seal.seal(transcript, MAPPED_AAD, APPLICATION)
    assert len(led) < len(unled)
    assert seal.open(led, MAPPED_AAD, "attempt", APPLICATION, lead=lead) == transcript
    with pytest.raises(SealError, match="another context"):
        seal.open(led, MAPPED_AAD, "attempt", APPLICATION, lead=b"01JD0000000000000000000001")
    with pytest.raises(ContextMissing):
        seal.open(led, MAPPED_AAD, "attempt", lead=lead)


def test_the_shipped_dictionaries_never_change() -> None:
    """Values sealed with a dictionary open only with the same bytes: these digests are the
    dictionaries journals were written with. A change here is a new dictionary, not an edit."""
    assert hashlib.sha256(DICTIONARY_1).hexdigest()[:16] == DICTIONARY_1_SHA256
    assert hashlib.sha256(DICTIONARY_2).hexdigest()[:16] == DICTIONARY_2_SHA256
