"""Applicant references: find an exchange by an ID number without storing the number.

The journal keeps ``HMAC-SHA256(key, normalised value)`` of the application fields named in
partners.yaml (``search: {applicant_fields: [...]}``). The same value typed by support staff —
with or without brackets, spaces, lower case or full-width characters — hashes to the same
reference. The key comes from ``TONGBAN_SEARCH_KEY`` (hex) or a file beside the SQLite journal
(``<journal>.key``, created with mode 0600 on first use); without the key the references are useless.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from federation.domain.errors import ConfigError, Problem
from federation.domain.paths import MISSING, getter, parse_path

ENV = "TONGBAN_SEARCH_KEY"
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_DROP = str.maketrans("", "", " ()/-[]")


def normalise(value: str) -> str:
    """``a123456 (3)`` and ``Ａ１２３４５６（３）`` → ``A1234563``."""
    return value.translate(_FULLWIDTH).upper().translate(_DROP)


def load_key(journal: Path | None) -> bytes:
    """The search key: from the environment, or the key file beside the journal (made if absent)."""
    env = os.environ.get(ENV)
    if env:
        try:
            key = bytes.fromhex(env)
        except ValueError:
            raise ConfigError([Problem(message=f"{ENV} must be hex")]) from None
        if len(key) < 16:
            raise ConfigError([Problem(message=f"{ENV} must be at least 16 bytes (32 hex digits)")])
        return key
    if journal is None:
        raise ConfigError([Problem(message=f"set {ENV} (hex) to search by applicant reference")])
    file = journal.with_name(journal.name + ".key")
    if not file.exists():
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(file.read_text().strip())


KEPT_BYTES = 16  # of a reference, in the journal's exchange_refs


def kept(ref: bytes) -> bytes:
    """What the journal stores of a reference: its first 16 bytes. A lookup key, not a proof:
    two applicants' references would have to agree in 128 bits to be confused (none of the
    journal's numbers of exchanges comes near the 2**64 where that starts to be likely)."""
    return ref[:KEPT_BYTES]


def kept_all(refs: Iterable[bytes]) -> list[bytes]:
    """An exchange's references as stored, each once."""
    return list(dict.fromkeys(kept(r) for r in refs))


def forms(ref: bytes) -> tuple[bytes, bytes]:
    """The stored forms a search looks for: as kept now, and whole (journals written before
    references were cut to 16 bytes)."""
    return kept(ref), ref


def reference(key: bytes, value: str) -> bytes:
    """The keyed hash of one applicant reference (HMAC-SHA256; the one-shot C path)."""
    return hmac.digest(key, normalise(value).encode(), "sha256")


class RefExtractor:
    """Computes the references of an application from the configured fields."""

    def __init__(self, key: bytes, fields: Iterable[str]) -> None:
        self._key = key
        self._getters = [getter(parse_path(f)) for f in fields]

    def __call__(self, application: Mapping[str, Any]) -> tuple[bytes, ...]:
        refs = []
        for get in self._getters:
            value = get(application)
            if value is not MISSING and isinstance(value, (str, int)) and str(value).strip():
                refs.append(reference(self._key, str(value)))
        return tuple(dict.fromkeys(refs))
