"""partners.yaml: the partner registry, parsed once and validated strictly.

Every problem names file, line and key path, unknown keys are errors, and all problems are reported
together (``partners.yaml:42: partners[3].endpoint: not an http(s) URL``). Protocol-specific keys
(the ``rest:``/``soap:`` sections and a service's call options) are validated by the protocol's
spec, handed in by the caller (``adapters.registry.protocols()``), so a new protocol brings its own
keys without touching this module and configuration never imports the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from federation.config.model import (
    CONFIG_FILE,
    ID_RE,
    LOCAL,
    REGION_RE,
    SERVICE_RE,
    SHA256_RE,
    BreakerPolicy,
    BrokerSettings,
    Config,
    Inbound,
    Names,
    Partner,
    ProtocolKeys,
    RateLimitPolicy,
    Region,
    Service,
    Source,
    Timeouts,
)
from federation.config.reader import Reader
from federation.config.yamlsrc import Located, PathKey, load_yaml
from federation.domain.errors import ConfigError
from federation.domain.regions import PROVINCES
from federation.domain.retry import RetryPolicy


def load_config(root: Path, protocols: Mapping[str, ProtocolKeys]) -> Config:
    """Load ``root/partners.yaml`` (or the file ``root``); raise ConfigError listing every problem.

    ``protocols`` maps each ``protocol:`` value to the spec that validates its keys
    (``adapters.registry.protocols()``).
    """
    file = root if root.is_file() else root / CONFIG_FILE
    base = file.parent
    doc = load_yaml(file, display=_display(file, base))
    reader = Reader(doc)
    config = _parse(reader, doc, file, base, protocols)
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors or config is None:
        raise ConfigError(sorted(reader.problems, key=lambda p: p.line or 0))
    return replace(config, warnings=tuple(p for p in reader.problems if p.severity == "warning"))


def _display(file: Path, base: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def _parse(
    r: Reader, doc: Located, file: Path, base: Path, protocols: Mapping[str, ProtocolKeys]
) -> Config | None:
    def protocol_names() -> tuple[str, ...]:
        return tuple(sorted(protocols))

    protocol_spec = protocols.__getitem__

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
            services = _services(
                r, (*path, "services"), m.get("services"), base, protocols.get(protocol or "")
            )
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
                inbound = _inbound(
                    r, (*path, "inbound"), m["inbound"], base, protocols.get(local_protocol or "")
                )
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
    from federation.domain.paths import PathSyntaxError, parse_path

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
    r: Reader, path: PathKey, raw: Any, base: Path, local_protocol: ProtocolKeys | None
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
    r: Reader, path: PathKey, raw: Any, base: Path, spec: ProtocolKeys | None
) -> dict[str, Service] | None:
    m = r.mapping(path, raw, extra_ok=True)
    if m is None:
        return None
    if not m:
        r.error(path, "lists no service item")
        return None
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
