"""The configuration model: partners, services, sources and broker settings as frozen values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from federation.config.auth import Auth, InboundSigning
from federation.config.principals import Principal
from federation.config.reader import Reader
from federation.config.refusals import RefusalBudgetSettings
from federation.config.replies import ReplyRules
from federation.config.retention import Retention
from federation.config.secrets import SecretRef
from federation.config.yamlsrc import PathKey
from federation.domain.errors import Problem
from federation.domain.retry import RetryPolicy

ID_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REGION_RE = re.compile(r"\d{2}|\d{6}|\d{12}")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
CONFIG_FILE = "partners.yaml"
LOCAL = "local"  # the id of the local system, which receives inbound applications


@dataclass(frozen=True, kw_only=True)
class Names:
    """Display names: the official Chinese name (``zh``, in the script its authority writes) and
    the English one; optionally the Chinese name in each script (``zh-Hans``, ``zh-Hant``)."""

    zh: str
    en: str
    zh_hans: str | None = None
    zh_hant: str | None = None

    def shown(self, language: str) -> str:
        """The name for a reader of ``language`` (``zh_Hans``, ``zh_Hant`` or ``en``): that
        script's name, else the official Chinese one (English readers: the English name)."""
        if language == "en":
            return self.en or self.zh
        scripted = self.zh_hant if language == "zh_Hant" else self.zh_hans
        return scripted or self.zh or self.en

    def to_dict(self) -> dict[str, str]:
        """As the API answers it: zh and en, and the name in each script where given."""
        out = {"zh": self.zh, "en": self.en}
        if self.zh_hans:
            out["zh-Hans"] = self.zh_hans
        if self.zh_hant:
            out["zh-Hant"] = self.zh_hant
        return out


@dataclass(frozen=True, kw_only=True)
class Region:
    code: str  # GB/T 2260: province (2 digits) or division (6 or 12 digits)
    iso: str  # ISO 3166-2 of the province-level division


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    connect: float = 3.0
    read: float = 15.0
    total: float = 30.0


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    """When a partner's circuit breaker opens, how long it stays open, how many probes it lets by."""

    failures: int = 5
    cool_down: float = 30.0
    probes: int = 1


@dataclass(frozen=True, kw_only=True)
class RateLimitPolicy:
    per_second: float
    burst: int


@dataclass(frozen=True, kw_only=True)
class NoticeRoute:
    """How a partner hears our word on what it filed, in its own format (an inbound service
    item's ``report:``; the mapping's ``report:`` section writes the body): a REST ``path`` under
    the partner's ``inbound.callback``, or a SOAP ``operation`` of its WSDL at its endpoint."""

    path: str | None = None
    operation: str | None = None
    reply: ReplyRules | None = None  # what the partner's answer to a notice means


@dataclass(frozen=True, kw_only=True)
class Service:
    code: str
    names: Names | None
    mapping: Path
    schema: Path | None = None  # the partner's JSON Schema for this service's request
    inbound_from: str | None = None  # a local-system service: the partner that files it
    options: Mapping[str, Any] = field(default_factory=dict)  # validated by the protocol spec
    reply: ReplyRules | None = None  # what the partner's answers mean (None: 2xx is its yes)
    report: NoticeRoute | None = None  # an inbound item: notices to the partner in its dialect
    # where partners.yaml declares it, for problems found later (a mapping that lacks a section
    # the item's settings need): its path and line there
    declared: Problem | None = None


@dataclass(frozen=True, kw_only=True)
class Partner:
    id: str
    names: Names
    region: Region
    protocol: str
    endpoint: str
    timeouts: Timeouts
    concurrency: int
    retry: RetryPolicy
    breaker: BreakerPolicy
    rate_limit: RateLimitPolicy | None
    services: Mapping[str, Service]
    options: Mapping[str, Any] = field(default_factory=dict)  # validated by the protocol spec
    reply: ReplyRules | None = None  # the partner's reply rules (each service item has its own too)
    inbound: Inbound | None = None  # what this partner may file with us
    auth: Auth | None = None  # how we authenticate to it (config/auth.py; secrets by reference)


@dataclass(frozen=True, kw_only=True)
class Inbound:
    """Applications a partner files with us: who may (key hashes) and which service items."""

    keys_sha256: frozenset[str]
    services: Mapping[str, Service]  # mapping: partner format → local format; options: local side
    wsdl: Path | None = None  # the WSDL of our SOAP endpoint for this partner, if it files by SOAP
    client_certs_sha256: frozenset[str] = frozenset()  # mutual TLS: the partner's certificates
    callback: str | None = None  # POSTed to with each step of what the partner filed (decisions)
    callback_secret: SecretRef | None = None  # signs its JSON callbacks (Standard Webhooks)
    callback_secret_previous: SecretRef | None = None  # …and the one before it, while rotated
    signing: InboundSigning | None = None  # the partner signs its calls: verified on arrival


@dataclass(frozen=True, kw_only=True)
class Source:
    """A local system allowed to submit applications, and where it hears how they ended."""

    id: str
    names: Names
    callback: str | None = None  # POSTed to when an exchange is delivered, rejected or failed
    callback_secret: SecretRef | None = None  # signs each callback (Standard Webhooks)
    callback_secret_previous: SecretRef | None = None  # …and the one before it, while rotated
    keys_sha256: frozenset[str] = frozenset()  # if any: it must present one (Bearer)


@dataclass(frozen=True, kw_only=True)
class BrokerSettings:
    max_body_bytes: int = 1024 * 1024
    lease: float = 30.0
    poll_interval: float = 1.0
    body_timeout: float = 10.0  # a request body that stalls this long between reads is cut
    # if any: support staff's search, replay, reload and other sources' exchanges need one
    operator_keys_sha256: frozenset[str] = frozenset()
    retention: Retention | None = None  # archive and prune ended exchanges (config/retention.py)
    # refusals journalled one by one and their bodies kept, per address and in all; None: every
    # one in full (config/refusals.py, api/budget.py)
    refusal_budget: RefusalBudgetSettings | None = field(default_factory=RefusalBudgetSettings)


@dataclass(frozen=True, kw_only=True)
class Config:
    file: Path
    root: Path
    partners: Mapping[str, Partner]
    sources: Mapping[str, Source]
    broker: BrokerSettings
    applicant_fields: tuple[str, ...] = ()  # application paths searchable by keyed hash
    local_keys_sha256: frozenset[str] = frozenset()  # the local system's keys (its decisions)
    schemas: Mapping[str, Path] = field(default_factory=dict)  # schema catalogue: location → file
    principals: tuple[Principal, ...] = ()  # who may call the local API (config/principals.py)
    warnings: tuple[Problem, ...] = ()  # odd but accepted settings, shown by `tongban check`

    def with_endpoints(self, endpoints: Mapping[str, str]) -> Config:
        """A copy whose partners send to other endpoints (simulators, staging); a key
        ``<partner>:callback`` moves the partner's ``inbound.callback`` (where its notices go)."""
        callbacks = {k.removesuffix(":callback"): v for k, v in endpoints.items() if ":" in k}
        unknown = {k for k in endpoints if ":" not in k} - set(self.partners)
        unknown |= {
            pid for pid in callbacks if (p := self.partners.get(pid)) is None or not p.inbound
        }
        if unknown or any(not k.endswith(":callback") for k in endpoints if ":" in k):
            raise KeyError(f"unknown partner(s): {', '.join(sorted(unknown or endpoints))}")
        partners = {
            pid: replace(p, endpoint=endpoints.get(pid, p.endpoint))
            for pid, p in self.partners.items()
        }
        for pid, url in callbacks.items():
            inbound = partners[pid].inbound
            assert inbound is not None  # checked above
            partners[pid] = replace(partners[pid], inbound=replace(inbound, callback=url))
        return replace(self, partners=partners)

    def callback_url(self, source: str, *, inbound: bool) -> str | None:
        """Where an exchange's originator hears how it went: a local source's ``callback``, or,
        for an application a partner filed with us, the partner's ``inbound.callback``."""
        if inbound:
            partner = self.partners.get(source)
            return partner.inbound.callback if partner and partner.inbound else None
        src = self.sources.get(source)
        return src.callback if src else None

    def callback_secrets(self, source: str, *, inbound: bool) -> tuple[SecretRef, ...]:
        """The secrets that sign the callbacks :meth:`callback_url` names: none, the current
        one, or (while it is rotated) the current one and the one before it, in that order."""
        owner: Source | Inbound | None
        if inbound:
            partner = self.partners.get(source)
            owner = partner.inbound if partner else None
        else:
            owner = self.sources.get(source)
        if owner is None or owner.callback_secret is None:
            return ()
        previous = owner.callback_secret_previous
        return (owner.callback_secret,) if previous is None else (owner.callback_secret, previous)

    def with_inbound_keys(self, keys: Mapping[str, str]) -> Config:
        """A copy in which each named partner (and ``local``, the local system) authenticates
        with one key (its SHA-256): for the demo."""
        partners = dict(self.partners)
        local_keys = self.local_keys_sha256
        for pid, digest in keys.items():
            if pid == LOCAL:
                local_keys = frozenset({digest})
                continue
            p = partners.get(pid)
            if p is None or p.inbound is None:
                raise KeyError(f"partner {pid!r} files no inbound applications")
            partners[pid] = replace(p, inbound=replace(p.inbound, keys_sha256=frozenset({digest})))
        return replace(self, partners=partners, local_keys_sha256=local_keys)


class ProtocolKeys(Protocol):
    """What configuration needs of a protocol: the keys it adds to partners.yaml, validated.

    The adapters' ``ProtocolSpec`` extends this; configuration is handed the specs and never
    imports the adapters.
    """

    name: str
    service_keys: tuple[str, ...]

    def parse_partner(self, r: Reader, path: PathKey, raw: Any, base: Path) -> Mapping[str, Any]:
        """Validate the partner's protocol section (``rest:``/``soap:``)."""

    def parse_service(self, r: Reader, path: PathKey, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """Validate a service item's protocol keys (``service_keys``)."""
