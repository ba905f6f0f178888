"""Values small enough for a 16 KB window are compressed with it (replay/compress.py): they still
inflate with the journal's one decompressor, lose no match a 32 KB window would find, and larger
values keep the 32 KB window."""

from __future__ import annotations

import random
import zlib

import orjson
import pytest

from replay.compress import (
    COLUMNS_1,
    DICTIONARY_2,
    SMALL_INPUT,
    _zdict,
    compress,
    decompress,
)

WORDS = [w for w in DICTIONARY_2.decode().replace('"', " ").split() if w]


def document(rng: random.Random, size: int) -> bytes:
    """A JSON value of about ``size`` bytes in the journal's vocabulary, with digits in it."""
    out: dict[str, object] = {}
    while len(orjson.dumps(out)) < size:
        out[f"{rng.choice(WORDS)}_{len(out)}"] = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
        out[f"n{len(out)}"] = rng.randrange(10**12)
    return orjson.dumps(out)


def old_form(plain: bytes, context: bytes) -> bytes:
    """As every value was compressed before: a 32 KB window, memLevel 8."""
    packer = zlib.compressobj(
        9, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, _zdict(DICTIONARY_2, context)
    )
    return packer.compress(plain) + packer.flush()


@pytest.mark.parametrize("seed", range(40))
def test_small_and_large_values_inflate_and_are_no_larger_than_before(seed: int) -> None:
    rng = random.Random(seed)
    context = document(rng, rng.choice([0, 800, 3000]))
    room = SMALL_INPUT - len(_zdict(DICTIONARY_2, context))
    # under, at and over the 16 KB window's limit, and far over it
    for size in (200, room - 300, room, room + 1, room + 400, 40_000):
        plain = document(rng, 100)[: max(1, size)] if size < 100 else document(rng, size)[:size]
        packed = compress(plain, context, DICTIONARY_2)
        assert decompress(packed, "a value", context, DICTIONARY_2) == plain
        assert len(packed) <= len(old_form(plain, context)) * 1.01 + 2


@pytest.mark.parametrize("context", [b"", b"x" * 3000])
def test_the_small_window_is_used_exactly_up_to_the_limit(
    context: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real = zlib.compressobj

    def spy(level: int, method: int, wbits: int, mem_level: int, *rest: object) -> object:
        seen.append((wbits, mem_level))
        return real(level, method, wbits, mem_level, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(zlib, "compressobj", spy)
    room = SMALL_INPUT - len(_zdict(DICTIONARY_2, context))
    for size in (room, room + 1):
        compress(bytes(size), context, DICTIONARY_2)
    compress(b"{}", b"", COLUMNS_1, mem_level=1)
    assert seen == [(-14, 6), (-15, 8), (-14, 1)]


def test_a_match_farther_back_than_16_kb_is_still_found_in_a_large_value() -> None:
    block = random.Random(7).randbytes(12_000)  # incompressible, then repeated 20 KB later
    plain = block + bytes(8_000) + block
    packed = compress(plain, b"", DICTIONARY_2)
    assert decompress(packed, "a value", b"", DICTIONARY_2) == plain
    assert len(packed) < 13_000  # the repeat is a match: a 16 KB window would pay for it again


def test_a_value_of_the_demo_catalogue_is_compressed_to_the_same_bytes_as_before() -> None:
    application = orjson.dumps(
        {
            "applicant": {"name": "陳大文", "id_type": "HKID", "id_number": "A1234563"},
            "vehicle": {"registration_mark": "AB1234", "licence_period_months": 12},
            "contact": {"phone": "+852 9123 4567", "district": "沙田區"},
        }
    )
    event = orjson.dumps({"request": {"status": 200, "sha256": "ab" * 32}, "attempt": 1})
    assert compress(event, application, DICTIONARY_2) == old_form(event, application)
