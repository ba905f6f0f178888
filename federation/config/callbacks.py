"""Where a callback goes and how it is signed: ``callback`` and ``callback_secret``.

A source (``sources:``) and a partner that files with us (``inbound:``) may each declare a
``callback`` URL, and with it a ``callback_secret``: a reference (``{env:NAME}`` or
``{file:path}``, never the secret) to a Standard Webhooks secret, ``whsec_`` and base64
(federation/domain/webhooks.py). With a secret every callback is signed; without one it goes
unsigned, and ``tongban check`` warns when it goes to another machine than this one: its receiver
cannot tell it from a forged one.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation.config.reader import Reader
from federation.config.secrets import SecretRef, parse_secret
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said
from federation.domain.webhooks import signing_key

KEYS = ("callback", "callback_secret")


def parse_callback(
    r: Reader, path: PathKey, m: dict[str, Any], base: Path
) -> tuple[str | None, SecretRef | None]:
    """The ``callback`` URL of the mapping ``m`` at ``path`` and its ``callback_secret``."""
    callback = r.url((*path, "callback"), m["callback"]) if "callback" in m else None
    if "callback_secret" not in m:
        return callback, None
    where = (*path, "callback_secret")
    secret = parse_secret(r, where, m["callback_secret"], base)
    if "callback" not in m:
        r.error(where, said("a callback_secret signs the callback: give the callback URL too"))
        return callback, None
    if secret is not None and secret.problem() is None and signing_key(secret.read_bytes()) is None:
        r.error(
            where,
            said(
                "secret %(ref)s is no Standard Webhooks signing secret: write whsec_ followed by "
                "the base64 of a random key of 24 to 64 bytes (whsec_ + openssl rand -base64 32)",
                ref=str(secret),
            ),
        )
        return callback, None
    return callback, secret


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
