"""Where a callback goes and how it is signed: ``callback``, ``callback_secret`` and
``callback_secret_previous``.

A source (``sources:``) and a partner that files with us (``inbound:``) may each declare a
``callback`` URL, and with it a ``callback_secret``: a reference (``{env:NAME}`` or
``{file:path}``, never the secret) to a Standard Webhooks secret, ``whsec_`` and base64
(federation/domain/webhooks.py). With a secret every callback is signed; without one it goes
unsigned, and ``tongban check`` warns when it goes to another machine than this one: its receiver
cannot tell it from a forged one. While a secret is rotated, ``callback_secret_previous`` names
the one before it (a reference too): every callback then carries both signatures, the current
one first, so a receiver that knows either accepts it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation.config.reader import Reader
from federation.config.secrets import SecretRef, parse_secret
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said
from federation.domain.webhooks import signing_key

KEYS = ("callback", "callback_secret", "callback_secret_previous")


@dataclass(frozen=True, kw_only=True)
class Callback:
    """A ``callback`` URL and the secrets that sign what goes to it (the current one first)."""

    url: str | None = None
    secret: SecretRef | None = None
    previous: SecretRef | None = None


def parse_callback(r: Reader, path: PathKey, m: dict[str, Any], base: Path) -> Callback:
    """The ``callback`` URL of the mapping ``m`` at ``path``, its ``callback_secret`` and the
    ``callback_secret_previous`` a rotation keeps signing with for a while."""
    callback = r.url((*path, "callback"), m["callback"]) if "callback" in m else None
    if "callback_secret" not in m:
        if "callback_secret_previous" in m:
            r.error(
                (*path, "callback_secret_previous"),
                said(
                    "callback_secret_previous is the secret callback_secret replaces: give "
                    "callback_secret too (the new one)"
                ),
            )
        return Callback(url=callback)
    secret = _signing_secret(r, (*path, "callback_secret"), m["callback_secret"], base)
    previous = None
    if "callback_secret_previous" in m:
        where = (*path, "callback_secret_previous")
        previous = _signing_secret(r, where, m["callback_secret_previous"], base)
    if "callback" not in m:
        r.error(
            (*path, "callback_secret"),
            said("a callback_secret signs the callback: give the callback URL too"),
        )
        return Callback(url=callback)
    if secret is None:
        return Callback(url=callback)
    return Callback(url=callback, secret=secret, previous=previous)


def _signing_secret(r: Reader, where: PathKey, raw: Any, base: Path) -> SecretRef | None:
    """A reference to a Standard Webhooks secret at ``where``; None (an error said) if not."""
    secret = parse_secret(r, where, raw, base)
    if secret is not None and secret.problem() is None and signing_key(secret.read_bytes()) is None:
        r.error(
            where,
            said(
                "secret %(ref)s is no Standard Webhooks signing secret: write whsec_ followed by "
                "the base64 of a random key of 24 to 64 bytes (whsec_ + openssl rand -base64 32)",
                ref=str(secret),
            ),
        )
        return None
    return secret


def warn_unsigned(r: Reader, path: PathKey, callback: str | None) -> None:
    """A warning at ``path``'s ``callback`` when it goes, unsigned, to another machine."""
    if callback is None or is_loopback(callback):
        return
    r.warn(
        (*path, "callback"),
        said(
            "callbacks to %(host)s go unsigned, so its receiver cannot tell them from forged "
            "ones: add a callback_secret (docs/delivery.md)",
            host=urlsplit(callback).hostname or callback,
        ),
    )


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
