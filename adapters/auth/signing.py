"""Declarative request signing, as mainland government gateways ask for it.

The string to sign is the parts partners.yaml lists (``auth.signing.parts``), in its order, joined
by its separator:

* ``method`` the HTTP method in capitals; ``path`` the URL path as sent;
* ``query`` the query parameters sorted by name then value, ``k=v`` joined by ``&`` (the signing
  parameters themselves left out when they travel in the query);
* ``headers`` each of ``signed_headers`` as ``name:value`` (name in lower case, value trimmed),
  joined by a newline;
* ``body_digest`` the body's SHA-256 or SM3 in lowercase hex;
* ``timestamp`` (milliseconds or seconds since the epoch), ``nonce`` (32 hex digits, new for every
  attempt), ``app_key``.

``hmac-sha256`` and ``hmac-sm3`` key the MAC with the secret; ``sha256`` and ``sm3`` hash the
string with the secret appended as one more part. The signature, in hex or base64, travels with the
app key, timestamp and nonce in headers or query parameters (``names``, ``place``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adapters.auth import REDACTED
from adapters.auth.digests import digest, encode, mac
from federation.config.auth import Signing


@dataclass(frozen=True, kw_only=True)
class Signed:
    """A request as signed: where it goes, the headers to add, and what the transcript keeps."""

    url: str
    headers: Mapping[str, str]
    shown_url: str  # the URL with a query signature redacted
    shown_headers: Mapping[str, str]  # the added headers with the signature redacted
    signature: str = field(default="", repr=False)


def new_nonce() -> str:
    """A fresh nonce: 128 random bits in hex."""
    return secrets.token_hex(16)


def string_to_sign(
    spec: Signing,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    timestamp: str,
    nonce: str,
) -> str:
    """The canonical string for ``spec``'s parts (see the module docstring)."""
    parts = urlsplit(url)
    own = {spec.names.app_key, spec.names.timestamp, spec.names.nonce, spec.names.signature}
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if spec.place != "query" or k not in own
    )
    lower = {k.lower(): v for k, v in headers.items()}
    values = {
        "method": method.upper(),
        "path": parts.path or "/",
        "query": "&".join(f"{k}={v}" for k, v in query),
        "headers": "\n".join(f"{h}:{lower.get(h, '').strip()}" for h in spec.signed_headers),
        "body_digest": digest(spec.body_digest, body).hex(),
        "timestamp": timestamp,
        "nonce": nonce,
        "app_key": spec.app_key,
    }
    return spec.separator.join(values[p] for p in spec.parts)


def signature(spec: Signing, secret: bytes, text: str) -> str:
    """The signature of ``text`` by ``spec``'s algorithm and encoding. A byte not UTF-8 that
    aiohttp read from a header as a lone surrogate is signed as that byte (as the gateway
    simulator reads it); any other lone surrogate raises UnicodeEncodeError."""
    data = text.encode("utf-8", "surrogateescape")
    if spec.algorithm == "hmac-sha256":
        raw = mac("sha256", secret, data)
    elif spec.algorithm == "hmac-sm3":
        raw = mac("sm3", secret, data)
    else:
        sep = spec.separator.encode("utf-8")
        raw = digest(spec.algorithm, data + sep + secret)
    return encode(raw, spec.encoding)


def sign(
    spec: Signing,
    secret: bytes,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    nonce: str | None = None,
) -> Signed:
    """Sign one attempt: a new timestamp and nonce, the signature where ``spec`` puts it."""
    stamp = str(int(now * 1000) if spec.timestamp_unit == "ms" else int(now))
    nonce = nonce or new_nonce()
    names = spec.names
    extra = {names.app_key: spec.app_key, names.timestamp: stamp, names.nonce: nonce}
    target = url
    if spec.place == "query":
        target = _with_query(url, extra)
    sig = signature(
        spec,
        secret,
        string_to_sign(
            spec,
            method=method,
            url=target,
            headers=headers,
            body=body,
            timestamp=stamp,
            nonce=nonce,
        ),
    )
    if spec.place == "query":
        return Signed(
            url=_with_query(target, {names.signature: sig}),
            headers={},
            shown_url=_with_query(target, {names.signature: REDACTED}),
            shown_headers={},
            signature=sig,
        )
    return Signed(
        url=url,
        headers={**extra, names.signature: sig},
        shown_url=url,
        shown_headers={**extra, names.signature: REDACTED},
        signature=sig,
    )


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))
