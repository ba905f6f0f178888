"""What an adapter asks once per attempt: the headers (or query) that prove who we are.

Every attempt is signed afresh (a new timestamp, nonce and signature; the current token), so a retry
or a ``resend`` is never refused for a stale signature. A secret that cannot be read holds the
exchange (a transient error naming the reference, never the value): nothing is sent without its
credentials, and a partner's credentials come from its own ``auth:`` only.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import aiohttp

from adapters.auth import REDACTED
from adapters.auth.oauth import TokenSource
from adapters.auth.signing import sign
from adapters.auth.tls import client_context
from federation.config import Partner
from federation.config.auth import ApiKey, Auth, Bearer, OAuth2, Signing
from federation.config.secrets import SecretError, read_texts
from federation.domain.errors import NotSent, Transcript


@dataclass(frozen=True, kw_only=True)
class Applied:
    """One attempt's credentials: the URL and headers to send, and what the transcript keeps."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    shown_url: str
    shown_headers: Mapping[str, str]
    token: str | None = field(default=None, repr=False)  # an OAuth2 token, for invalidate()
    service: str = ""
    # what this attempt read or made that a reply must not quote back (adapters.auth.scrub)
    secrets: tuple[str | bytes, ...] = field(default=(), repr=False)


class Credentials:
    """A partner's credentials (and its service items' overrides) for one adapter."""

    def __init__(
        self,
        partner: Partner,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partner = partner
        self.clock = clock
        self._auth: dict[str, Auth | None] = {
            code: svc.options.get("auth", partner.auth) for code, svc in partner.services.items()
        }
        self._tokens: dict[int, TokenSource] = {}
        self._plain: dict[str, Applied] = {}  # see without_auth
        self.unusable: str | None = None  # why the client certificate cannot be presented
        for auth in self._auth.values():
            if auth is not None and isinstance(auth.scheme, OAuth2):
                self._tokens.setdefault(
                    id(auth.scheme), TokenSource(auth.scheme, partner.id, monotonic)
                )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client-certificate context of the partner's session. One that cannot be built
        (a file missing, a key others may read) holds every attempt, naming why: nothing goes
        to the partner without its certificate. Deploy the files, then restart."""
        auth = self.partner.auth
        if auth is None or auth.client_cert is None:
            return None
        cert = auth.client_cert
        try:
            return client_context(cert)
        except SecretError as exc:
            self.unusable = f"client certificate: {exc}"
        except (ssl.SSLError, OSError) as exc:
            name = cert.cert.name if isinstance(exc, OSError) else "its key"
            self.unusable = f"client certificate {name}: {getattr(exc, 'strerror', None) or exc}"
        return None

    def auth_for(self, service: str) -> Auth | None:
        return self._auth.get(service, self.partner.auth)

    def token_source(self, service: str) -> TokenSource | None:
        auth = self.auth_for(service)
        if auth is None or not isinstance(auth.scheme, OAuth2):
            return None
        return self._tokens.get(id(auth.scheme))

    def without_auth(self, service: str, url: str) -> Applied | None:
        """An attempt's credentials when the service has no scheme to apply (None: ask
        :meth:`apply`). Kept per service (for its last URL: one entry each, however many URLs):
        the common case is a lookup, not a coroutine and a new :class:`Applied` per attempt. A
        certificate that cannot be presented still goes to :meth:`apply`, which holds the attempt."""
        applied = self._plain.get(service)
        if applied is not None and applied.url == url and self.unusable is None:
            return applied
        auth = self.auth_for(service)
        if self.unusable is not None or (auth is not None and auth.scheme is not None):
            return None
        applied = Applied(url=url, headers={}, shown_url=url, shown_headers={}, service=service)
        self._plain[service] = applied
        return applied

    async def apply(
        self,
        session: aiohttp.ClientSession,
        *,
        service: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Applied:
        """The credentials of one attempt; a secret that cannot be read holds the exchange."""
        auth = self.auth_for(service)
        scheme = auth.scheme if auth else None
        if self.unusable is not None:
            raise not_sent(self.unusable, self.partner.id, service, method, url)
        try:
            if isinstance(scheme, Bearer):
                token = (await read_texts((scheme.token,)))[0]  # a file: in a thread
                value = f"Bearer {token}"
                return _header(url, service, "Authorization", value, f"Bearer {REDACTED}", token)
            if isinstance(scheme, ApiKey):
                key = (await read_texts((scheme.key,)))[0]
                return _header(url, service, scheme.header, key, REDACTED, key)
            if isinstance(scheme, OAuth2):
                source = self._tokens[id(scheme)]
                token = await source.token(session)
                applied = _header(
                    url, service, "Authorization", f"Bearer {token}", "Bearer " + REDACTED, token
                )
                return replace(applied, token=token)
            if isinstance(scheme, Signing):
                secret = await scheme.secret.load()
                signed = sign(
                    scheme,
                    secret,
                    method=method,
                    url=url,
                    headers=headers,
                    body=body,
                    now=self.clock(),
                )
                return Applied(
                    url=signed.url,
                    headers=signed.headers,
                    shown_url=signed.shown_url,
                    shown_headers=signed.shown_headers,
                    service=service,
                    secrets=(secret, signed.signature),  # a partner may know the secret too
                )
        except SecretError as exc:
            raise not_sent(exc, self.partner.id, service, method, url) from None
        return Applied(url=url, headers={}, shown_url=url, shown_headers={}, service=service)

    def refused(self, applied: Applied) -> bool:
        """The partner answered 401 to ``applied``: drop its token; True if asking again helps."""
        source = self.token_source(applied.service)
        if source is None or applied.token is None:
            return False
        source.invalidate(applied.token)
        return True


def _header(url: str, service: str, name: str, value: str, shown: str, secret: str) -> Applied:
    return Applied(
        url=url,
        headers={name: value},
        shown_url=url,
        shown_headers={name: shown},
        service=service,
        secrets=(secret,),
    )


def not_sent(
    why: SecretError | str, partner: str, operation: str, method: str, url: str
) -> NotSent:
    """What holds an attempt whose credentials cannot be had (a secret that cannot be read, a
    certificate that cannot be presented): transient, naming why (a reference, never a value),
    and nothing was sent, so the partner's breaker does not count it."""
    return NotSent(
        f"not sent: {why}",
        partner=partner,
        operation=operation,
        transcript=Transcript(request={"method": method, "url": url, "sent": False}),
    )
