"""Field encryption for partners that require it: ``encrypt`` and its inbound counterpart ``decrypt``.

``{encrypt: {cipher: sm4-gcm, key: "{env:HK_FIELD_KEY}"}}`` encrypts the field's text (UTF-8) with
SM4 (GM/T 0002-2012) or AES; the key is a secret reference holding 32 hex digits (SM4, AES-128) or
64 (AES-256), read at every use so a rotated key applies at once. The value written is
base64 (or hex) of ``iv ‖ ciphertext ‖ tag`` for GCM, ``iv ‖ ciphertext`` for CBC (PKCS#7 padding)
and the ciphertext alone for ECB (padded; deterministic, only for partners that insist on it).
``decrypt`` with the same arguments reads such a value back; a wrong key or an altered value is a
:class:`TransformError` that names neither the key nor the value. ``{file:…}`` references resolve
against the mapping file's directory.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from federation.config.secrets import SecretError, SecretRef, parse_secret
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    arguments,
    as_text,
    step,
)

CIPHERS = ("sm4-gcm", "sm4-cbc", "sm4-ecb", "aes-gcm", "aes-cbc")


@dataclass(frozen=True, kw_only=True)
class FieldCipher:
    """A cipher, its mode and its key's reference, as a mapping declared them."""

    cipher: str
    key: SecretRef
    encoding: str = "base64"

    def _key(self) -> bytes:
        try:
            text = self.key.read()
        except SecretError as exc:
            raise TransformError(said("field key unavailable: %(error)s", error=exc.text)) from None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise TransformError(
                said("field key %(key)s is not hex digits", key=str(self.key))
            ) from None
        sizes = (16,) if self.cipher.startswith("sm4") else (16, 32)
        if len(raw) not in sizes:
            raise TransformError(
                said(
                    "field key %(key)s has %(n)s bytes; %(cipher)s needs %(size)s",
                    key=str(self.key),
                    n=len(raw),
                    cipher=self.cipher,
                    size=sizes[0],
                )
                if len(sizes) == 1
                else said(
                    "field key %(key)s has %(n)s bytes; %(cipher)s needs %(size)s or %(other)s",
                    key=str(self.key),
                    n=len(raw),
                    cipher=self.cipher,
                    size=sizes[0],
                    other=sizes[1],
                )
            )
        return raw

    def _algorithm(self, key: bytes) -> algorithms.SM4 | algorithms.AES:
        return algorithms.SM4(key) if self.cipher.startswith("sm4") else algorithms.AES(key)

    def encrypt(self, text: str) -> str:
        key = self._key()
        data = text.encode("utf-8")
        mode = self.cipher.rsplit("-", 1)[1]
        if mode == "gcm":
            iv = os.urandom(12)
            enc = Cipher(self._algorithm(key), modes.GCM(iv)).encryptor()
            out = iv + enc.update(data) + enc.finalize() + enc.tag
        else:
            padder = padding.PKCS7(128).padder()
            padded = padder.update(data) + padder.finalize()
            iv = os.urandom(16) if mode == "cbc" else b""
            chosen = modes.CBC(iv) if mode == "cbc" else modes.ECB()
            plain = Cipher(self._algorithm(key), chosen).encryptor()
            out = iv + plain.update(padded) + plain.finalize()
        return out.hex() if self.encoding == "hex" else base64.b64encode(out).decode("ascii")

    def decrypt(self, text: str) -> str:
        key = self._key()
        try:
            raw = (
                bytes.fromhex(text)
                if self.encoding == "hex"
                else base64.b64decode(text, validate=True)
            )
        except (ValueError, binascii.Error):
            raise TransformError(
                said("not %(encoding)s ciphertext", encoding=self.encoding)
            ) from None
        mode = self.cipher.rsplit("-", 1)[1]
        try:
            if mode == "gcm":
                if len(raw) < 28:
                    raise ValueError("too short")
                iv, body, tag = raw[:12], raw[12:-16], raw[-16:]
                dec = Cipher(self._algorithm(key), modes.GCM(iv, tag)).decryptor()
                data = dec.update(body) + dec.finalize()
            else:
                iv, body = (raw[:16], raw[16:]) if mode == "cbc" else (b"", raw)
                chosen = modes.CBC(iv) if mode == "cbc" else modes.ECB()
                block = Cipher(self._algorithm(key), chosen).decryptor()
                padded = block.update(body) + block.finalize()
                unpadder = padding.PKCS7(128).unpadder()
                data = unpadder.update(padded) + unpadder.finalize()
            return data.decode("utf-8")
        except (InvalidTag, ValueError, UnicodeDecodeError):
            raise TransformError(
                said(
                    "cannot decrypt with %(cipher)s: wrong key %(key)s or an altered value",
                    cipher=self.cipher,
                    key=str(self.key),
                )
            ) from None


def _field_cipher(raw: Any, ctx: Context, path: PathKey) -> FieldCipher | None:
    args = arguments(ctx, path, raw, required=("cipher", "key"), optional=("encoding",))
    if args is None:
        return None
    r = ctx.reader
    cipher = r.choice((*path, "cipher"), args.get("cipher"), CIPHERS)
    encoding = r.choice((*path, "encoding"), args.get("encoding", "base64"), ("base64", "hex"))
    base = Path(r.doc.file).resolve().parent
    key = parse_secret(r, (*path, "key"), args.get("key"), base)
    if cipher is None or encoding is None or key is None:
        return None
    return FieldCipher(cipher=cipher, key=key, encoding=encoding)


@step("encrypt")
def _encrypt(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    fc = _field_cipher(raw, ctx, path)
    if fc is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        return fc.encrypt(as_text(v, "encrypt"))

    return run


@step("decrypt")
def _decrypt(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    fc = _field_cipher(raw, ctx, path)
    if fc is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        return fc.decrypt(as_text(v, "decrypt"))

    return run
