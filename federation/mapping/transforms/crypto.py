"""Field encryption for partners that require it: ``encrypt`` and its inbound counterpart ``decrypt``.

``{encrypt: {cipher: sm4-gcm, key: "{env:HK_FIELD_KEY}"}}`` encrypts the field's text (UTF-8) with
SM4 (GM/T 0002-2012) or AES; the key is a secret reference holding 32 hex digits (SM4, AES-128) or
64 (AES-256), read at every use so a rotated key applies at once. The value written is
base64 (or hex) of ``iv ‖ ciphertext ‖ tag`` for GCM, ``iv ‖ ciphertext`` for CBC (PKCS#7 padding)
and the ciphertext alone for ECB (padded; deterministic, only for partners that insist on it).
``decrypt`` with the same arguments reads such a value back; a wrong key or an altered value is a
:class:`TransformError` that names neither the key nor the value.

``{file:…}`` references resolve against the folder the mapping file really is in (links followed,
as its code tables are), which the engine gives with :func:`keys_in` while it loads the file: never
against the working directory, which a broker started elsewhere (``tongban serve --config
/etc/tongban`` from ``/``) does not share with the configuration. A mapping edited in the console is
compiled from a temporary copy, and its keys resolve against the original's folder.

A mapping written by someone less trusted than the configuration's deployment (a mapping edited in
the console's playground) is loaded inside :func:`bound_keys`: it may name only the keys given
there, and any other reference is an error at its line before anything reads it (so it can neither
use a secret of the broker's as a key nor learn whether a file exists). The binding is a context
variable, not a load argument, so that the mapping engine between the console and this step need
not carry it; ``asyncio.to_thread`` takes it along.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from federation.config.reader import Reader
from federation.config.secrets import SECRET_RE, SecretError, SecretRef, parse_secret
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


@dataclass(kw_only=True)
class KeyBinding:
    """The field keys a mapping loaded inside :func:`bound_keys` may name (as :func:`key_target`
    writes them), and the references it was refused (as written), for the audit trail."""

    allowed: frozenset[str]
    refused: list[str] = field(default_factory=list)


_BINDING: ContextVar[KeyBinding | None] = ContextVar("tongban_field_keys", default=None)
_FOLDER: ContextVar[Path | None] = ContextVar("tongban_key_folder", default=None)


@contextmanager
def keys_in(folder: Path) -> Iterator[None]:
    """``{file:…}`` field keys of the mapping loaded inside resolve against ``folder`` (absolute:
    the mapping file's real folder)."""
    token = _FOLDER.set(folder)
    try:
        yield
    finally:
        _FOLDER.reset(token)


def _key_folder(r: Reader) -> Path:
    """Where this mapping's ``{file:…}`` keys are: the folder :func:`keys_in` gave, else (a step
    built outside ``load_mapping``) that of the document's file as its reader names it."""
    folder = _FOLDER.get()
    return folder if folder is not None else Path(r.doc.file).resolve().parent


@contextmanager
def bound_keys(allowed: Iterable[str]) -> Iterator[KeyBinding]:
    """Mappings loaded inside may name only the field keys ``allowed`` (:func:`key_target`)."""
    binding = KeyBinding(allowed=frozenset(allowed))
    token = _BINDING.set(binding)
    try:
        yield binding
    finally:
        _BINDING.reset(token)


def key_target(ref: SecretRef) -> str:
    """What a key reference reads, to compare two mappings' keys: the variable, or the file's path
    as written against its mapping's directory (no ``..`` folded away, no link followed, no I/O)."""
    return str(ref) if ref.kind == "env" else f"{{file:{ref.base / ref.name}}}"


def key_of(fn: Step) -> SecretRef | None:
    """The key reference of an ``encrypt`` or ``decrypt`` step; None for any other step."""
    return fn.cipher.key if isinstance(fn, CipherStep) else None


def _bound(r: Reader, path: PathKey, raw: Any, base: Path) -> bool:
    """Whether the key ``raw`` may be named here (see :func:`bound_keys`); an error at ``path``,
    before anything reads it, if not. A malformed reference is left to parse_secret."""
    binding = _BINDING.get()
    m = SECRET_RE.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if binding is None or m is None:
        return True
    ref = SecretRef(kind=m.group(1), name=m.group(2).strip(), base=base)
    if key_target(ref) in binding.allowed:
        return True
    binding.refused.append(str(ref))
    if binding.allowed:
        r.error(
            path,
            said(
                "field key %(ref)s is none of those this partner's mappings in force use "
                "(%(bound)s), and a mapping edited in the console may name only those; a new key is "
                "added to the mapping file by a deployment of the configuration",
                ref=str(ref),
                bound=", ".join(sorted(binding.allowed)),
            ),
        )
    else:
        r.error(
            path,
            said(
                "field key %(ref)s: this partner's mappings in force use no field key, so a "
                "mapping edited in the console may name none; a new key is added to the mapping file "
                "by a deployment of the configuration",
                ref=str(ref),
            ),
        )
    return False


def _field_cipher(raw: Any, ctx: Context, path: PathKey) -> FieldCipher | None:
    args = arguments(ctx, path, raw, required=("cipher", "key"), optional=("encoding",))
    if args is None:
        return None
    r = ctx.reader
    cipher = r.choice((*path, "cipher"), args.get("cipher"), CIPHERS)
    encoding = r.choice((*path, "encoding"), args.get("encoding", "base64"), ("base64", "hex"))
    base = _key_folder(r)
    if not _bound(r, (*path, "key"), args.get("key"), base):
        return None
    key = parse_secret(r, (*path, "key"), args.get("key"), base)
    if cipher is None or encoding is None or key is None:
        return None
    return FieldCipher(cipher=cipher, key=key, encoding=encoding)


@dataclass(frozen=True)
class CipherStep:
    """An ``encrypt`` or ``decrypt`` step: a Step that shows which key it uses (:func:`key_of`)."""

    cipher: FieldCipher
    decrypting: bool

    def __call__(self, v: Any, w: list[Any]) -> Any:
        if self.decrypting:
            return self.cipher.decrypt(as_text(v, "decrypt"))
        return self.cipher.encrypt(as_text(v, "encrypt"))


@step("encrypt")
def _encrypt(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    fc = _field_cipher(raw, ctx, path)
    return None if fc is None else CipherStep(cipher=fc, decrypting=False)


@step("decrypt")
def _decrypt(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    fc = _field_cipher(raw, ctx, path)
    return None if fc is None else CipherStep(cipher=fc, decrypting=True)
