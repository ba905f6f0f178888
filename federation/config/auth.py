"""A partner's ``auth:`` section: how tongban proves who it is on each outbound call.

At most one request scheme (``bearer``, ``api_key``, ``oauth2``, ``signing``), plus optionally a TLS
client certificate (``client_cert``) and, for SOAP, an X.509 signature with a Timestamp
(``ws_signature``). Every secret is a reference (:mod:`federation.config.secrets`); docs/partner-auth.md
has a worked example of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.config.reader import Reader
from federation.config.secrets import SecretRef, file_ref, parse_secret
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said

HEADER_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
SCHEMES = ("bearer", "api_key", "oauth2", "signing")
ALGORITHMS = ("hmac-sha256", "hmac-sm3", "sha256", "sm3")
DIGESTS = ("sha256", "sm3")
PARTS = ("method", "path", "query", "headers", "body_digest", "timestamp", "nonce", "app_key")
KEYED = ("hmac-sha256", "hmac-sm3")


@dataclass(frozen=True, kw_only=True)
class Bearer:
    token: SecretRef


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    header: str
    key: SecretRef


@dataclass(frozen=True, kw_only=True)
class OAuth2:
    """OAuth2 client credentials (RFC 6749 4.4); the client authenticates with HTTP Basic."""

    token_url: str
    client_id: str
    client_secret: SecretRef
    scope: str | None = None
    early: float = 30.0  # a token is renewed this long before it expires


@dataclass(frozen=True, kw_only=True)
class SignatureNames:
    """Where the signing values travel: header names (or query parameters, ``place: query``)."""

    app_key: str = "X-App-Key"
    timestamp: str = "X-Timestamp"
    nonce: str = "X-Nonce"
    signature: str = "X-Signature"


@dataclass(frozen=True, kw_only=True)
class Signing:
    """Declarative request signing: which parts, in what order, joined how, hashed how."""

    app_key: str
    secret: SecretRef
    algorithm: str = "hmac-sha256"
    encoding: str = "hex"  # or base64
    parts: tuple[str, ...] = ("method", "path", "query", "body_digest", "timestamp", "nonce")
    separator: str = "\n"
    body_digest: str = "sha256"
    signed_headers: tuple[str, ...] = ()
    names: SignatureNames = SignatureNames()
    place: str = "header"  # or query
    timestamp_unit: str = "ms"  # or s


@dataclass(frozen=True, kw_only=True)
class InboundSigning:
    """How a partner signs its calls to us: the same declarative signing, checked on arrival,
    with the window a timestamp may be off by (and a nonce is remembered for)."""

    signing: Signing
    window: float = 300.0


@dataclass(frozen=True, kw_only=True)
class ClientCert:
    cert: Path
    key: SecretRef  # a {file:…} reference: the private key's file, owner-only
    ca: Path | None = None  # the CA the partner's server certificate is checked with


@dataclass(frozen=True, kw_only=True)
class WsSignature:
    cert: Path
    key: SecretRef
    ttl: float = 300.0  # the Timestamp's Expires, seconds after Created


@dataclass(frozen=True, kw_only=True)
class Auth:
    """A partner's (or a service item's) credentials."""

    scheme: Bearer | ApiKey | OAuth2 | Signing | None = None
    client_cert: ClientCert | None = None
    ws_signature: WsSignature | None = None

    def secrets(self) -> tuple[SecretRef, ...]:
        """Every secret it refers to: what the journal and the logs must never hold."""
        refs: list[SecretRef] = []
        s = self.scheme
        if isinstance(s, Bearer):
            refs.append(s.token)
        elif isinstance(s, ApiKey):
            refs.append(s.key)
        elif isinstance(s, OAuth2):
            refs.append(s.client_secret)
        elif isinstance(s, Signing):
            refs.append(s.secret)
        for extra in (self.client_cert, self.ws_signature):
            if extra is not None:
                refs.append(extra.key)
        return tuple(refs)


def parse_auth(r: Reader, path: PathKey, raw: Any, base: Path) -> Auth | None:
    """The ``auth:`` section (None if absent or wrong; problems on ``r``)."""
    if raw is None:
        return None
    m = r.mapping(path, raw, optional=(*SCHEMES, "client_cert", "ws_signature"), quote=False)
    if m is None:
        return None
    named = [k for k in SCHEMES if k in m]
    if len(named) > 1:
        r.error(path, said("one request scheme at most, not %(names)s", names=" and ".join(named)))
        return None
    scheme: Bearer | ApiKey | OAuth2 | Signing | None = None
    if named:
        key = named[0]
        scheme = _SCHEME_PARSERS[key](r, (*path, key), m[key], base)
        if scheme is None:
            return None
    cert = (
        _client_cert(r, (*path, "client_cert"), m["client_cert"], base)
        if "client_cert" in m
        else None
    )
    wss = (
        _ws_signature(r, (*path, "ws_signature"), m["ws_signature"], base)
        if "ws_signature" in m
        else None
    )
    return Auth(scheme=scheme, client_cert=cert, ws_signature=wss)


def _bearer(r: Reader, path: PathKey, raw: Any, base: Path) -> Bearer | None:
    token = parse_secret(r, path, raw, base)
    return Bearer(token=token) if token else None


def _api_key(r: Reader, path: PathKey, raw: Any, base: Path) -> ApiKey | None:
    m = r.mapping(path, raw, required=("key",), optional=("header",), quote=False)
    if m is None:
        return None
    header = r.text(
        (*path, "header"),
        m.get("header", "X-Api-Key"),
        pattern=HEADER_RE,
        what=said("an HTTP header name"),
    )
    key = parse_secret(r, (*path, "key"), m.get("key"), base)
    return ApiKey(header=header, key=key) if header and key else None


def _oauth2(r: Reader, path: PathKey, raw: Any, base: Path) -> OAuth2 | None:
    m = r.mapping(
        path,
        raw,
        required=("token_url", "client_id", "client_secret"),
        optional=("scope", "early"),
        quote=False,
    )
    if m is None:
        return None
    url = r.url((*path, "token_url"), m.get("token_url"))
    client = r.text((*path, "client_id"), m.get("client_id"))
    secret = parse_secret(r, (*path, "client_secret"), m.get("client_secret"), base)
    scope = r.text((*path, "scope"), m["scope"]) if "scope" in m else None
    early = r.duration((*path, "early"), m["early"], high=3600) if "early" in m else 30.0
    if not (url and client and secret) or early is None:
        return None
    return OAuth2(token_url=url, client_id=client, client_secret=secret, scope=scope, early=early)


_SIGNING_KEYS = (
    "algorithm",
    "encoding",
    "parts",
    "separator",
    "body_digest",
    "signed_headers",
    "names",
    "place",
    "timestamp_unit",
)


def _signing(r: Reader, path: PathKey, raw: Any, base: Path) -> Signing | None:
    m = r.mapping(path, raw, required=("app_key", "secret"), optional=_SIGNING_KEYS, quote=False)
    if m is None:
        return None
    app_key = r.text((*path, "app_key"), m.get("app_key"))
    secret = parse_secret(r, (*path, "secret"), m.get("secret"), base)
    values: dict[str, Any] = {}
    for key, choices in (
        ("algorithm", ALGORITHMS),
        ("encoding", ("hex", "base64")),
        ("body_digest", DIGESTS),
        ("place", ("header", "query")),
        ("timestamp_unit", ("ms", "s")),
    ):
        if key in m:
            values[key] = r.choice((*path, key), m[key], choices)
    if "separator" in m:
        sep = m["separator"]
        if isinstance(sep, str):
            values["separator"] = sep
        else:
            r.error((*path, "separator"), said('expected text ("\\n", "&", "" …)'))
    if "parts" in m:
        parts = [
            r.choice((*path, "parts", i), p, PARTS)
            for i, p in enumerate(r.items((*path, "parts"), m["parts"]))
        ]
        values["parts"] = tuple(p for p in parts if p)
        if not values["parts"]:
            r.error((*path, "parts"), said("lists no part to sign"))
    if "signed_headers" in m:
        items = r.items((*path, "signed_headers"), m["signed_headers"])
        heads = [
            r.text(
                (*path, "signed_headers", i), h, pattern=HEADER_RE, what=said("an HTTP header name")
            )
            for i, h in enumerate(items)
        ]
        values["signed_headers"] = tuple(h.lower() for h in heads if h)
    if "names" in m:
        values["names"] = _names(r, (*path, "names"), m["names"])
    if any(v is None for v in values.values()) or not (app_key and secret):
        return None
    signing = Signing(app_key=app_key, secret=secret, **values)
    if "headers" in signing.parts and not signing.signed_headers:
        r.error((*path, "parts"), said("signs 'headers' but lists no signed_headers"))
    return signing


def parse_inbound_signing(r: Reader, path: PathKey, raw: Any, base: Path) -> InboundSigning | None:
    """An ``inbound.signing:`` block: a signing block plus ``window`` (seconds, default 300)."""
    if not isinstance(raw, dict):
        r.mapping(path, raw, quote=False)  # the error at its line, no secret quoted
        return None
    window = 300.0
    if "window" in raw:
        value = raw["window"]
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 3600:
            window = float(value)
        else:
            r.error((*path, "window"), said("expected seconds between 1 and 3600"))
            return None
    signing = _signing(r, path, {k: v for k, v in raw.items() if k != "window"}, base)
    return InboundSigning(signing=signing, window=window) if signing is not None else None


def _names(r: Reader, path: PathKey, raw: Any) -> SignatureNames | None:
    fields = ("app_key", "timestamp", "nonce", "signature")
    m = r.mapping(path, raw, optional=fields)
    if m is None:
        return None
    values = {
        k: r.text((*path, k), m[k], pattern=HEADER_RE, what=said("a header or parameter name"))
        for k in fields
        if k in m
    }
    if any(v is None for v in values.values()):
        return None
    return SignatureNames(**values)  # type: ignore[arg-type]


def _client_cert(r: Reader, path: PathKey, raw: Any, base: Path) -> ClientCert | None:
    m = r.mapping(path, raw, required=("cert", "key"), optional=("ca",), quote=False)
    if m is None:
        return None
    cert = file_ref(r, (*path, "cert"), m.get("cert"), base)
    key = _key_file(r, (*path, "key"), m.get("key"), base)
    ca = file_ref(r, (*path, "ca"), m["ca"], base) if "ca" in m else None
    if cert is None or key is None or ("ca" in m and ca is None):
        return None
    return ClientCert(cert=cert, key=key, ca=ca)


def _ws_signature(r: Reader, path: PathKey, raw: Any, base: Path) -> WsSignature | None:
    m = r.mapping(path, raw, required=("cert", "key"), optional=("ttl",), quote=False)
    if m is None:
        return None
    cert = file_ref(r, (*path, "cert"), m.get("cert"), base)
    key = _key_file(r, (*path, "key"), m.get("key"), base)
    ttl = r.duration((*path, "ttl"), m["ttl"], low=1, high=86400) if "ttl" in m else 300.0
    if cert is None or key is None or ttl is None:
        return None
    return WsSignature(cert=cert, key=key, ttl=ttl)


def _key_file(r: Reader, path: PathKey, raw: Any, base: Path) -> SecretRef | None:
    """A private key: a ``{file:…}`` reference (TLS and XML signing read keys from files)."""
    ref = parse_secret(r, path, raw, base)
    if ref is not None and ref.kind != "file":
        r.error(path, said("a private key is read from a file: write '{file:path}'"))
        return None
    return ref


_SCHEME_PARSERS: dict[str, Any] = {
    "bearer": _bearer,
    "api_key": _api_key,
    "oauth2": _oauth2,
    "signing": _signing,
}
