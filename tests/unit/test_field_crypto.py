"""Field encryption in mappings: SM4 and AES-GCM out, the decrypting counterpart in, keys by reference."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from federation.domain.errors import ConfigError, MappingError
from federation.mapping import CompiledMapping, load_mapping

SM4_KEY = "0123456789abcdeffedcba9876543210"
AES_KEY = "8f" * 32
NAME = "陳大文 燊"


def mapping(tmp_path: Path, step: str) -> CompiledMapping:
    """A mapping of ``value`` through one transform step."""
    file = tmp_path / f"m{abs(hash(step))}.yaml"
    file.write_text(
        textwrap.dedent(f"""\
            mapping: 1
            request:
              out: {{from: value, transform: {step}}}
            """),
        encoding="utf-8",
    )
    return load_mapping(file)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Field keys in the environment, as an operator would provide them."""
    monkeypatch.setenv("TB_SM4_KEY", SM4_KEY)
    monkeypatch.setenv("TB_AES_KEY", AES_KEY)
    monkeypatch.setenv("TB_OTHER_KEY", "00" * 16)


@pytest.mark.parametrize(
    ("cipher", "env"),
    [("sm4-gcm", "TB_SM4_KEY"), ("sm4-cbc", "TB_SM4_KEY"), ("aes-gcm", "TB_AES_KEY")],
)
def test_encrypt_then_decrypt_gives_the_value_back(tmp_path: Path, cipher: str, env: str) -> None:
    """What encrypt writes, decrypt with the same key reads back; two encryptions differ."""
    args = f'{{cipher: {cipher}, key: "{{env:{env}}}"}}'
    enc = mapping(tmp_path, f"{{encrypt: {args}}}")
    dec = mapping(tmp_path, f"{{decrypt: {args}}}")
    first = enc.map_request({"value": NAME})["out"]
    second = enc.map_request({"value": NAME})["out"]
    assert first != second and NAME not in first
    assert dec.map_request({"value": first}) == {"out": NAME}


def test_sm4_ecb_matches_the_block_cipher_directly(tmp_path: Path) -> None:
    """sm4-ecb in hex is PKCS#7-padded SM4 of the UTF-8 text, block by block."""
    enc = mapping(tmp_path, '{encrypt: {cipher: sm4-ecb, key: "{env:TB_SM4_KEY}", encoding: hex}}')
    out = enc.map_request({"value": NAME})["out"]
    padder = padding.PKCS7(128).padder()
    data = padder.update(NAME.encode()) + padder.finalize()
    e = Cipher(algorithms.SM4(bytes.fromhex(SM4_KEY)), modes.ECB()).encryptor()
    assert out == (e.update(data) + e.finalize()).hex()


def test_a_wrong_key_or_altered_value_fails_without_revealing_either(tmp_path: Path) -> None:
    """Decrypting under another key, or a changed ciphertext, is a mapping error naming the key ref."""
    enc = mapping(tmp_path, '{encrypt: {cipher: sm4-gcm, key: "{env:TB_SM4_KEY}"}}')
    wrong = mapping(tmp_path, '{decrypt: {cipher: sm4-gcm, key: "{env:TB_OTHER_KEY}"}}')
    right = mapping(tmp_path, '{decrypt: {cipher: sm4-gcm, key: "{env:TB_SM4_KEY}"}}')
    value = enc.map_request({"value": NAME})["out"]
    with pytest.raises(MappingError) as caught:
        wrong.map_request({"value": value})
    assert "wrong key {env:TB_OTHER_KEY} or an altered value" in str(caught.value.problems[0])
    raw = bytearray(base64.b64decode(value))
    raw[14] ^= 1
    with pytest.raises(MappingError) as altered:
        right.map_request({"value": base64.b64encode(bytes(raw)).decode()})
    text = " ".join(str(p) for p in altered.value.problems)
    assert "altered value" in text and SM4_KEY not in text and "00" * 16 not in text


def test_a_missing_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset key variable fails the field with the variable's name."""
    enc = mapping(tmp_path, '{encrypt: {cipher: aes-gcm, key: "{env:TB_AES_KEY}"}}')
    monkeypatch.delenv("TB_AES_KEY")
    with pytest.raises(MappingError) as caught:
        enc.map_request({"value": NAME})
    assert "TB_AES_KEY is not set" in str(caught.value.problems[0])


def test_a_key_written_into_the_mapping_is_refused(tmp_path: Path) -> None:
    """A literal key is a load error at its line that does not repeat it."""
    with pytest.raises(ConfigError) as caught:
        mapping(tmp_path, f"{{encrypt: {{cipher: sm4-gcm, key: '{SM4_KEY}'}}}}")
    assert "secrets never go in" in str(caught.value) and SM4_KEY not in str(caught.value)
