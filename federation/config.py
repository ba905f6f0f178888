"""partners.yaml: the partner registry, parsed once and validated strictly.

Every problem names file, line and key path, unknown keys are errors, and all problems are reported
together (``partners.yaml:42: partners[3].endpoint: not an http(s) URL``). Protocol-specific keys
(the ``rest:``/``soap:`` sections and a service's call options) are validated by the protocol's
adapter spec, so a new protocol brings its own keys without touching this module.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from federation.breaker import BreakerPolicy
from federation.errors import ConfigError, Problem
from federation.regions import PROVINCES
from federation.validate import Reader
from federation.yamlsrc import Located, PathKey, load_yaml

ID_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REGION_RE = re.compile(r"\d{2}|\d{6}|\d{12}")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
CONFIG_FILE = "partners.yaml"
LOCAL = "local"  # the id of the local system, which receives inbound applications


@dataclass(frozen=True, kw_only=True)
class Names:
    zh: str
    en: str


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
class RetryPolicy:
    """How often and how long a transiently failing delivery is tried again.

    The first ``short_attempts`` attempts are retried in process, ``short_backoff`` apart (doubling),
    for blips; after that the journal schedules each next attempt (``retry_wait``) with exponential
    backoff from ``backoff_base`` up to ``backoff_cap``, so retries survive restarts. The exchange
    fails for good after ``max_attempts`` attempts or ``max_elapsed`` since it was received.
    """

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    jitter: float = 0.2
    max_elapsed: float = 86400.0
    short_attempts: int = 4
    short_backoff: float = 0.05

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before journal-scheduled retry number ``attempt`` (1-based)."""
        raw = min(self.backoff_cap, self.backoff_base * (2.0 ** max(0, attempt - 1)))
        spread = raw * self.jitter
        draw = rng.random() if rng is not None else random.random()
        return max(0.0, raw - spread + draw * 2 * spread)


@dataclass(frozen=True, kw_only=True)
class RateLimitPolicy:
    per_second: float
    burst: int


@dataclass(frozen=True, kw_only=True)
class Service:
    code: str
    names: Names | None
    mapping: Path
    schema: Path | None = None  # the partner's JSON Schema for this service's request
    inbound_from: str | None = None  # a local-system service: the partner that files it
    options: Mapping[str, Any] = field(default_factory=dict)  # validated by the protocol spec
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
    inbound: Inbound | None = None  # what this partner may file with us


@dataclass(frozen=True, kw_only=True)
class Inbound:
    """Applications a partner files with us: who may (key hashes) and which service items."""

    keys_sha256: frozenset[str]
    services: Mapping[str, Service]  # mapping: partner format → local format; options: local side
    wsdl: Path | None = None  # the WSDL of our SOAP endpoint for this partner, if it files by SOAP
    client_certs_sha256: frozenset[str] = frozenset()  # mutual TLS: the partner's certificates
    callback: str | None = None  # POSTed to with each step of what the partner filed (decisions)


@dataclass(frozen=True, kw_only=True)
class Source:
    """A local system allowed to submit applications, and where it hears how they ended."""

    id: str
    names: Names
    callback: str | None = None  # POSTed to when an exchange is delivered, rejected or failed
    keys_sha256: frozenset[str] = frozenset()  # if any: it must present one (Bearer)


@dataclass(frozen=True, kw_only=True)
class BrokerSettings:
    max_body_bytes: int = 1024 * 1024
    lease: float = 30.0
    poll_interval: float = 1.0
    # if any: support staff's search, replay, reload and other sources' exchanges need one
    operator_keys_sha256: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Config:
    file: Path
    root: Path
    partners: Mapping[str, Partner]
    sources: Mapping[str, Source]
    broker: BrokerSettings
    applicant_fields: tuple[str, ...] = ()  # application paths searchable by keyed hash
    local_keys_sha256: frozenset[str] = frozenset()  # the local system's keys (its decisions)
    warnings: tuple[Problem, ...] = ()  # odd but accepted settings, shown by `tongban check`

    def with_endpoints(self, endpoints: Mapping[str, str]) -> Config:
        """A copy whose partners send to other endpoints (simulators, staging)."""
        unknown = set(endpoints) - set(self.partners)
        if unknown:
            raise KeyError(f"unknown partner(s): {', '.join(sorted(unknown))}")
        partners = {
            pid: replace(p, endpoint=endpoints.get(pid, p.endpoint))
            for pid, p in self.partners.items()
        }
        return replace(self, partners=partners)

    def callback_url(self, source: str, *, inbound: bool) -> str | None:
        """Where an exchange's originator hears how it went: a local source's ``callback``, or,
        for an application a partner filed with us, the partner's ``inbound.callback``."""
        if inbound:
            partner = self.partners.get(source)
            return partner.inbound.callback if partner and partner.inbound else None
        src = self.sources.get(source)
        return src.callback if src else None

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


def load_config(root: Path) -> Config:
    """Load ``root/partners.yaml`` (or the file ``root``); raise ConfigError listing every problem."""
    file = root if root.is_file() else root / CONFIG_FILE
    base = file.parent
    doc = load_yaml(file, display=_display(file, base))
    reader = Reader(doc)
    config = _parse(reader, doc, file, base)
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors or config is None:
        raise ConfigError(sorted(reader.problems, key=lambda p: p.line or 0))
    return replace(config, warnings=tuple(p for p in reader.problems if p.severity == "warning"))


def _display(file: Path, base: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def _parse(r: Reader, doc: Located, file: Path, base: Path) -> Config | None:
    from adapters.registry import protocol_names, protocol_spec  # adapters own their keys

    top = r.mapping(
        (),
        doc.data,
        required=("version", "partners"),
        optional=("defaults", "sources", "broker", "search", "local"),
    )
    if top is None:
        return None
    if "version" in top and (type(top["version"]) is not int or top["version"] != 1):
        r.error(("version",), f"unsupported version {top.get('version')!r}; this tongban reads 1")

    defaults = (
        r.mapping(
            ("defaults",),
            top.get("defaults", {}),
            optional=("timeouts", "concurrency", "retry", "breaker", "rate_limit"),
        )
        or {}
    )
    d_timeouts = _timeouts(r, ("defaults", "timeouts"), defaults.get("timeouts"), Timeouts())
    d_conc = _concurrency(r, ("defaults", "concurrency"), defaults.get("concurrency"), 16)
    d_retry = _retry(r, ("defaults", "retry"), defaults.get("retry"), RetryPolicy())
    d_breaker = _breaker(r, ("defaults", "breaker"), defaults.get("breaker"), BreakerPolicy())
    d_rate = _rate(r, ("defaults", "rate_limit"), defaults.get("rate_limit"), None)

    broker = _broker(r, top.get("broker"))

    sources: dict[str, Source] = {}
    for i, raw in enumerate(r.items(("sources",), top.get("sources", []))):
        path: PathKey = ("sources", i)
        m = r.mapping(path, raw, required=("id", "name"), optional=("callback", "keys_sha256"))
        if m is None:
            continue
        sid = r.text((*path, "id"), m.get("id"), pattern=ID_RE, what="an id (a-z, 0-9, -)")
        names = _names(r, (*path, "name"), m.get("name"))
        callback = r.url((*path, "callback"), m["callback"]) if "callback" in m else None
        if sid and sid in sources:
            r.error((*path, "id"), f"duplicate source id {sid!r}")
        elif sid and names:
            keys = _digests(r, (*path, "keys_sha256"), m.get("keys_sha256", []))
            sources[sid] = Source(
                id=sid, names=names, callback=callback, keys_sha256=frozenset(keys)
            )

    common = ("timeouts", "concurrency", "retry", "breaker", "rate_limit", *protocol_names())

    def one(
        path: PathKey, m: dict[str, Any], pid: str | None, services: Mapping[str, Service] | None
    ) -> Partner | None:
        """A partner (or the local system) from its parsed keys; None if anything is wrong."""
        names = _names(r, (*path, "name"), m.get("name"))
        region = _region(r, (*path, "region"), m.get("region"))
        protocol = r.choice((*path, "protocol"), m.get("protocol"), protocol_names())
        endpoint = r.url((*path, "endpoint"), m.get("endpoint"))
        timeouts = _timeouts(r, (*path, "timeouts"), m.get("timeouts"), d_timeouts)
        conc = _concurrency(r, (*path, "concurrency"), m.get("concurrency"), d_conc)
        retry = _retry(r, (*path, "retry"), m.get("retry"), d_retry)
        breaker = _breaker(r, (*path, "breaker"), m.get("breaker"), d_breaker)
        rate = _rate(r, (*path, "rate_limit"), m.get("rate_limit"), d_rate)
        options: Mapping[str, Any] = {}
        if protocol is not None:
            spec = protocol_spec(protocol)
            for other in protocol_names():
                if other != protocol and other in m:
                    r.error(
                        (*path, other), f"section {other!r} does not apply to protocol {protocol!r}"
                    )
            options = spec.parse_partner(r, (*path, protocol), m.get(protocol, {}), base)
        if services is None:
            services = _services(r, (*path, "services"), m.get("services"), base, protocol)
        if not (pid and names and region and protocol and endpoint and services is not None):
            return None
        return Partner(
            id=pid,
            names=names,
            region=region,
            protocol=protocol,
            endpoint=endpoint,
            timeouts=timeouts,
            concurrency=conc,
            retry=retry,
            breaker=breaker,
            rate_limit=rate,
            services=services,
            options=options,
        )

    # The local system (where inbound applications go) is parsed first: its protocol decides
    # which keys the partners' inbound services may have (e.g. a REST path on the local system).
    local_raw = (
        r.mapping(
            ("local",),
            top["local"],
            required=("name", "region", "protocol", "endpoint"),
            optional=(*common, "keys_sha256"),
        )
        if "local" in top
        else None
    )
    local_keys = _digests(r, ("local", "keys_sha256"), (local_raw or {}).get("keys_sha256", []))
    local_protocol = local_raw.get("protocol") if local_raw else None
    if local_protocol not in protocol_names():
        local_protocol = None

    partners: dict[str, Partner] = {}
    inbound_services: dict[str, tuple[Service, PathKey]] = {}
    raw_partners = r.items(("partners",), top.get("partners"))
    if not raw_partners and "partners" in top:
        r.error(("partners",), "lists no partner")
    for i, raw in enumerate(raw_partners):
        path = ("partners", i)
        m = r.mapping(
            path,
            raw,
            required=("id", "name", "region", "protocol", "endpoint", "services"),
            optional=(*common, "inbound"),
        )
        if m is None:
            continue
        pid = r.text((*path, "id"), m.get("id"), pattern=ID_RE, what="an id (a-z, 0-9, -)")
        if pid == LOCAL:
            r.error((*path, "id"), f"{LOCAL!r} is the local system's id: declare it under 'local:'")
            continue
        inbound = None
        if "inbound" in m:
            files = isinstance(m["inbound"], dict) and bool(m["inbound"].get("services"))
            if files and local_raw is None:
                r.error((*path, "inbound"), "inbound services need a 'local:' system to deliver to")
            else:
                inbound = _inbound(r, (*path, "inbound"), m["inbound"], base, local_protocol)
        partner = one(path, m, pid, None)
        if pid and pid in partners:
            r.error((*path, "id"), f"duplicate partner id {pid!r}")
            continue
        if partner is not None:
            partners[partner.id] = replace(partner, inbound=inbound)
            for code, svc in (inbound.services if inbound else {}).items():
                svc = replace(svc, inbound_from=partner.id)
                if code in inbound_services:
                    r.error(
                        (*path, "inbound", "services", code),
                        f"inbound service {code!r} is also declared by another partner (line "
                        f"{r.doc.line(inbound_services[code][1])})",
                    )
                inbound_services[code] = (svc, (*path, "inbound", "services", code))
    if local_raw is not None:
        local_fields = {k: v for k, v in local_raw.items() if k != "keys_sha256"}
        local = one(
            ("local",), local_fields, LOCAL, {c: s for c, (s, _) in inbound_services.items()}
        )
        if local is not None:
            partners[LOCAL] = local
        if inbound_services and not local_keys:
            r.warn(
                ("local",),
                "no keys_sha256: the local system cannot report its decisions on inbound "
                "applications (POST /v1/exchanges/{id}/lifecycle needs its key)",
            )
    applicant_fields = _search(r, top.get("search"))
    if not r.ok:
        return None
    return Config(
        file=file,
        root=base,
        partners=partners,
        sources=sources,
        broker=broker,
        applicant_fields=applicant_fields,
        local_keys_sha256=frozenset(local_keys),
    )


def _search(r: Reader, raw: Any) -> tuple[str, ...]:
    from federation.mapping.paths import PathSyntaxError, parse_path

    if raw is None:
        return ()
    m = r.mapping(("search",), raw, optional=("applicant_fields",))
    out = []
    for i, item in enumerate(
        r.items(("search", "applicant_fields"), (m or {}).get("applicant_fields", []))
    ):
        text = r.text(("search", "applicant_fields", i), item)
        if text is None:
            continue
        try:
            parse_path(text)
        except PathSyntaxError as exc:
            r.error(("search", "applicant_fields", i), f"bad field path: {exc}")
            continue
        out.append(text)
    return tuple(out)


def _names(r: Reader, path: PathKey, raw: Any) -> Names | None:
    m = r.mapping(path, raw, required=("zh", "en"))
    if m is None:
        return None
    zh = r.text((*path, "zh"), m.get("zh"))
    en = r.text((*path, "en"), m.get("en"))
    return Names(zh=zh, en=en) if zh and en else None


def _region(r: Reader, path: PathKey, raw: Any) -> Region | None:
    m = r.mapping(path, raw, required=("code", "iso"))
    if m is None:
        return None
    code = r.text((*path, "code"), m.get("code"), pattern=REGION_RE, what="a GB/T 2260 code")
    iso = r.text((*path, "iso"), m.get("iso"))
    if code is None or iso is None:
        return None
    province = PROVINCES.get(code[:2])
    if province is None:
        r.error((*path, "code"), f"{code!r} starts with no GB/T 2260 province code")
        return None
    if iso != province.iso:
        r.error((*path, "iso"), f"{iso!r} does not match region code {code} ({province.iso})")
        return None
    return Region(code=code, iso=iso)


def _timeouts(r: Reader, path: PathKey, raw: Any, default: Timeouts) -> Timeouts:
    if raw is None:
        return default
    m = r.mapping(path, raw, optional=("connect", "read", "total"))
    if m is None:
        return default
    values = {}
    for key in ("connect", "read", "total"):
        if key in m:
            v = r.duration((*path, key), m[key], low=0.001, high=3600)
            if v is not None:
                values[key] = v
    t = replace(default, **values)
    if t.total < t.connect:
        r.error((*path, "total"), "total timeout is shorter than the connect timeout")
    return t


def _concurrency(r: Reader, path: PathKey, raw: Any, default: int) -> int:
    if raw is None:
        return default
    return r.integer(path, raw, low=1, high=1024) or default


def _retry(r: Reader, path: PathKey, raw: Any, default: RetryPolicy) -> RetryPolicy:
    if raw is None:
        return default
    keys = (
        "max_attempts",
        "backoff_base",
        "backoff_cap",
        "jitter",
        "max_elapsed",
        "short_attempts",
        "short_backoff",
    )
    m = r.mapping(path, raw, optional=keys)
    if m is None:
        return default
    values: dict[str, Any] = {}
    if "max_attempts" in m:
        values["max_attempts"] = r.integer(
            (*path, "max_attempts"), m["max_attempts"], low=1, high=1000
        )
    if "short_attempts" in m:
        values["short_attempts"] = r.integer(
            (*path, "short_attempts"), m["short_attempts"], low=1, high=10
        )
    for key in ("backoff_base", "backoff_cap", "max_elapsed", "short_backoff"):
        if key in m:
            values[key] = r.duration((*path, key), m[key], low=0.0, high=90 * 86400)
    if "jitter" in m:
        values["jitter"] = r.number((*path, "jitter"), m["jitter"], low=0.0, high=1.0)
    return replace(default, **{k: v for k, v in values.items() if v is not None})


def _breaker(r: Reader, path: PathKey, raw: Any, default: BreakerPolicy) -> BreakerPolicy:
    if raw is None:
        return default
    m = r.mapping(path, raw, optional=("failures", "cool_down", "probes"))
    if m is None:
        return default
    values: dict[str, Any] = {}
    if "failures" in m:
        values["failures"] = r.integer((*path, "failures"), m["failures"], low=1, high=1000)
    if "probes" in m:
        values["probes"] = r.integer((*path, "probes"), m["probes"], low=1, high=100)
    if "cool_down" in m:
        values["cool_down"] = r.duration((*path, "cool_down"), m["cool_down"], low=0.01, high=86400)
    return replace(default, **{k: v for k, v in values.items() if v is not None})


def _rate(
    r: Reader, path: PathKey, raw: Any, default: RateLimitPolicy | None
) -> RateLimitPolicy | None:
    if raw is None:
        return default
    m = r.mapping(path, raw, required=("per_second",), optional=("burst",))
    if m is None:
        return default
    rate = r.number((*path, "per_second"), m.get("per_second"), low=0.01, high=100_000)
    burst = r.integer((*path, "burst"), m["burst"], low=1, high=100_000) if "burst" in m else None
    if rate is None:
        return default
    return RateLimitPolicy(per_second=rate, burst=burst or max(1, int(rate)))


def _broker(r: Reader, raw: Any) -> BrokerSettings:
    if raw is None:
        return BrokerSettings()
    m = r.mapping(
        ("broker",),
        raw,
        optional=("max_body_bytes", "lease", "poll_interval", "operator_keys_sha256"),
    )
    if m is None:
        return BrokerSettings()
    values: dict[str, Any] = {}
    if "operator_keys_sha256" in m:
        path = ("broker", "operator_keys_sha256")
        values["operator_keys_sha256"] = frozenset(_digests(r, path, m["operator_keys_sha256"]))
    if "max_body_bytes" in m:
        values["max_body_bytes"] = r.integer(
            ("broker", "max_body_bytes"), m["max_body_bytes"], low=1024, high=64 * 1024 * 1024
        )
    if "lease" in m:
        values["lease"] = r.duration(("broker", "lease"), m["lease"], low=1, high=3600)
    if "poll_interval" in m:
        values["poll_interval"] = r.duration(
            ("broker", "poll_interval"), m["poll_interval"], low=0.01, high=60
        )
    return replace(BrokerSettings(), **{k: v for k, v in values.items() if v is not None})


def _inbound(
    r: Reader, path: PathKey, raw: Any, base: Path, local_protocol: str | None
) -> Inbound | None:
    m = r.mapping(
        path,
        raw,
        optional=("keys_sha256", "client_certs_sha256", "services", "wsdl", "callback"),
    )
    if m is None:
        return None
    keys, certs = (
        _digests(r, (*path, name), m.get(name, []))
        for name in ("keys_sha256", "client_certs_sha256")
    )
    # A partner may only send status updates (no services): it still needs its keys.
    services: Mapping[str, Service] | None = (
        _services(r, (*path, "services"), m["services"], base, local_protocol)
        if "services" in m
        else {}
    )
    callback = r.url((*path, "callback"), m["callback"]) if "callback" in m else None
    wsdl: Path | None = None
    if "wsdl" in m:
        wfile = r.text((*path, "wsdl"), m["wsdl"])
        if wfile is not None:
            wsdl = (base / wfile).resolve()
            if not wsdl.is_file():
                r.error((*path, "wsdl"), f"WSDL file {wfile!r} not found")
    if not (keys or certs) or services is None:
        if not (keys or certs):
            r.error(
                path, "lists no keys_sha256 and no client_certs_sha256: nobody could file anything"
            )
        return None
    return Inbound(
        keys_sha256=frozenset(keys),
        services=services,
        wsdl=wsdl,
        client_certs_sha256=frozenset(certs),
        callback=callback,
    )


def _digests(r: Reader, path: PathKey, raw: Any) -> set[str]:
    """A list of SHA-256 hex digests (of keys or certificates), lower-cased."""
    out: set[str] = set()
    for i, item in enumerate(r.items(path, raw)):
        digest = r.text((*path, i), item, pattern=SHA256_RE, what="a sha256 hex digest")
        if digest:
            out.add(digest.lower())
    return out


def _services(
    r: Reader, path: PathKey, raw: Any, base: Path, protocol: str | None
) -> dict[str, Service] | None:
    from adapters.registry import protocol_spec

    m = r.mapping(path, raw, extra_ok=True)
    if m is None:
        return None
    if not m:
        r.error(path, "lists no service item")
        return None
    spec = protocol_spec(protocol) if protocol else None
    out: dict[str, Service] = {}
    for code, value in m.items():
        spath: PathKey = (*path, code)
        if not SERVICE_RE.fullmatch(code):
            r.error(spath, f"{code!r} is not a service item code (letters, digits, . _ -)")
            continue
        if isinstance(value, str):
            value = {"mapping": value}
        extra = spec.service_keys if spec else ()
        sm = r.mapping(spath, value, required=("mapping",), optional=("name", "schema", *extra))
        if sm is None:
            continue
        names = _names(r, (*spath, "name"), sm["name"]) if "name" in sm else None
        mfile = r.text((*spath, "mapping"), sm.get("mapping"))
        if mfile is None:
            continue
        mpath = (base / mfile).resolve()
        if not mpath.is_file():
            r.error((*spath, "mapping"), f"mapping file {mfile!r} not found")
            continue
        schema: Path | None = None
        if "schema" in sm:
            sfile = r.text((*spath, "schema"), sm["schema"])
            if sfile is not None:
                schema = (base / sfile).resolve()
                if not schema.is_file():
                    r.error((*spath, "schema"), f"schema file {sfile!r} not found")
                    continue
        options: Mapping[str, Any] = {}
        if spec is not None:
            options = spec.parse_service(r, spath, {k: sm[k] for k in extra if k in sm})
        out[code] = Service(
            code=code,
            names=names,
            mapping=mpath,
            schema=schema,
            options=options,
            declared=r.doc.problem(spath, ""),
        )
    return out
