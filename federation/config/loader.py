"""partners.yaml: the partner registry, parsed once and validated strictly.

Every problem names file, line and key path, unknown keys are errors, and all problems are reported
together (``partners.yaml:42: partners[3].endpoint: not an http(s) URL``). Protocol-specific keys
(the ``rest:``/``soap:`` sections and a service's call options) are validated by the protocol's
spec, handed in by the caller (``adapters.registry.protocols()``), so a new protocol brings its own
keys without touching this module and configuration never imports the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from federation.config.auth import parse_auth
from federation.config.callbacks import KEYS as CALLBACK_KEYS
from federation.config.callbacks import parse_callback, warn_unsigned
from federation.config.model import (
    CONFIG_FILE,
    ID_RE,
    LOCAL,
    BrokerSettings,
    Config,
    Inbound,
    Partner,
    ProtocolKeys,
    Service,
    Source,
)
from federation.config.policies import POLICY_KEYS, Policies, override, policies
from federation.config.principals import parse_principals
from federation.config.reader import Reader
from federation.config.refusals import parse_refusal_budget
from federation.config.replies import parse_reply, with_rules
from federation.config.retention import parse_retention
from federation.config.schemas import parse_schemas
from federation.config.services import parse_inbound, parse_services
from federation.config.values import parse_digests, parse_names, parse_region
from federation.config.yamlsrc import Located, PathKey, load_yaml
from federation.domain.errors import ConfigError
from federation.domain.paths import PathSyntaxError, parse_path
from federation.domain.texts import quoted, said


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
    top = r.mapping(
        (),
        doc.data,
        required=("version", "partners"),
        optional=("defaults", "sources", "broker", "search", "local", "schemas", "principals"),
    )
    if top is None:
        return None
    # Before the partners: their WSDLs are loaded through the schema catalogue.
    r.schemas = parse_schemas(r, top.get("schemas"), base)
    if "version" in top and (type(top["version"]) is not int or top["version"] != 1):
        r.error(
            ("version",),
            said(
                "unsupported version %(value)r; this tongban reads 1",
                value=quoted(top.get("version")),
            ),
        )
    parser = _PartnersParser(r, base, protocols, _defaults(r, top.get("defaults", {})))
    broker = _broker(r, top.get("broker"))
    sources = _sources(r, top.get("sources", []), base)
    # The local system (where inbound applications go) is parsed first: its protocol decides
    # which keys the partners' inbound services may have (e.g. a REST path on the local system).
    local = parser.local_section(top)
    partners, inbound_services = parser.partners(top, local)
    if local is not None:
        parser.local(local, inbound_services, partners)
    applicant_fields = _search(r, top.get("search"))
    principals = parse_principals(
        r,
        top.get("principals"),
        source_keys={sid: s.keys_sha256 for sid, s in sources.items()},
        operator_keys=broker.operator_keys_sha256,
        partners=partners,
    )
    if not r.ok:
        return None
    return Config(
        file=file,
        root=base,
        partners=partners,
        sources=sources,
        broker=broker,
        applicant_fields=applicant_fields,
        local_keys_sha256=frozenset(local.keys if local else ()),
        schemas=dict(r.schemas),
        principals=principals,
    )


def _defaults(r: Reader, raw: Any) -> Policies:
    """The ``defaults:`` section: the policies every partner starts from."""
    m = r.mapping(("defaults",), raw, optional=POLICY_KEYS) or {}
    return policies(r, ("defaults",), m, Policies())


def _sources(r: Reader, raw: Any, base: Path) -> dict[str, Source]:
    """The ``sources:`` list: the systems that file applications, by id."""
    sources: dict[str, Source] = {}
    for i, item in enumerate(r.items(("sources",), raw)):
        path: PathKey = ("sources", i)
        m = r.mapping(path, item, required=("id", "name"), optional=(*CALLBACK_KEYS, "keys_sha256"))
        if m is None:
            continue
        sid = r.text((*path, "id"), m.get("id"), pattern=ID_RE, what=said("an id (a-z, 0-9, -)"))
        names = parse_names(r, (*path, "name"), m.get("name"))
        callback = parse_callback(r, path, m, base)
        if callback.secret is None and "callback_secret" not in m:
            warn_unsigned(r, path, callback.url)
        if sid and sid in sources:
            r.error((*path, "id"), said("duplicate source id %(sid)r", sid=sid))
        elif sid and names:
            keys = parse_digests(r, (*path, "keys_sha256"), m.get("keys_sha256", []))
            sources[sid] = Source(
                id=sid,
                names=names,
                callback=callback.url,
                callback_secret=callback.secret,
                callback_secret_previous=callback.previous,
                keys_sha256=frozenset(keys),
            )
    return sources


@dataclass(frozen=True, kw_only=True)
class _LocalSection:
    """The ``local:`` mapping as read so far, before the partners' inbound services are known."""

    fields: dict[str, Any]
    keys: set[str]
    protocol: str | None  # None when the protocol is missing or unknown


class _PartnersParser:
    """The partner sections of partners.yaml, which share the defaults and the protocol specs."""

    def __init__(
        self, r: Reader, base: Path, protocols: Mapping[str, ProtocolKeys], defaults: Policies
    ) -> None:
        self.r = r
        self.base = base
        self.protocols = protocols
        self.defaults = defaults
        self.protocol_names = tuple(sorted(protocols))
        self.common = (*POLICY_KEYS, "reply", "auth", *self.protocol_names)

    def local_section(self, top: dict[str, Any]) -> _LocalSection | None:
        """The ``local:`` section's keys, key digests and protocol, or None when it is absent."""
        if "local" not in top:
            return None
        raw = self.r.mapping(
            ("local",),
            top["local"],
            required=("name", "region", "protocol", "endpoint"),
            optional=(*self.common, "keys_sha256"),
        )
        keys = parse_digests(self.r, ("local", "keys_sha256"), (raw or {}).get("keys_sha256", []))
        if raw is None:
            return None
        protocol = raw.get("protocol")
        return _LocalSection(
            fields={k: v for k, v in raw.items() if k != "keys_sha256"},
            keys=keys,
            protocol=protocol if protocol in self.protocol_names else None,
        )

    def partners(
        self, top: dict[str, Any], local: _LocalSection | None
    ) -> tuple[dict[str, Partner], dict[str, tuple[Service, PathKey]]]:
        """The ``partners:`` list by id, and the inbound services they declare with their paths."""
        r = self.r
        partners: dict[str, Partner] = {}
        inbound_services: dict[str, tuple[Service, PathKey]] = {}
        raw_partners = r.items(("partners",), top.get("partners"))
        if not raw_partners and "partners" in top:
            r.error(("partners",), said("lists no partner"))
        for i, raw in enumerate(raw_partners):
            path: PathKey = ("partners", i)
            m = r.mapping(
                path,
                raw,
                required=("id", "name", "region", "protocol", "endpoint", "services"),
                optional=(*self.common, "inbound"),
            )
            if m is None:
                continue
            pid = r.text(
                (*path, "id"), m.get("id"), pattern=ID_RE, what=said("an id (a-z, 0-9, -)")
            )
            if pid == LOCAL:
                r.error(
                    (*path, "id"),
                    said("%(id)r is the local system's id: declare it under 'local:'", id=LOCAL),
                )
                continue
            inbound = self._inbound_of(path, m, local)
            partner = self.partner(path, m, pid, None)
            if pid and pid in partners:
                r.error((*path, "id"), said("duplicate partner id %(pid)r", pid=pid))
                continue
            if partner is not None:
                partners[partner.id] = replace(partner, inbound=inbound)
                self._collect_inbound(path, partner.id, inbound, inbound_services)
        return partners, inbound_services

    def _inbound_of(
        self, path: PathKey, m: dict[str, Any], local: _LocalSection | None
    ) -> Inbound | None:
        if "inbound" not in m:
            return None
        files = isinstance(m["inbound"], dict) and bool(m["inbound"].get("services"))
        if files and local is None:
            self.r.error(
                (*path, "inbound"), said("inbound services need a 'local:' system to deliver to")
            )
            return None
        spec = self.protocols.get((local.protocol if local else None) or "")
        protocol = m.get("protocol") if isinstance(m.get("protocol"), str) else None
        return parse_inbound(self.r, (*path, "inbound"), m["inbound"], self.base, spec, protocol)

    def _collect_inbound(
        self,
        path: PathKey,
        pid: str,
        inbound: Inbound | None,
        seen: dict[str, tuple[Service, PathKey]],
    ) -> None:
        # An inbound service code names one service of the local system: two partners cannot share it.
        for code, svc in (inbound.services if inbound else {}).items():
            svc = replace(svc, inbound_from=pid)
            if code in seen:
                self.r.error(
                    (*path, "inbound", "services", code),
                    said(
                        "inbound service %(code)r is also declared by another partner (line %(line)s)",
                        code=code,
                        line=self.r.doc.line(seen[code][1]),
                    ),
                )
            seen[code] = (svc, (*path, "inbound", "services", code))

    def local(
        self,
        local: _LocalSection,
        inbound_services: dict[str, tuple[Service, PathKey]],
        partners: dict[str, Partner],
    ) -> None:
        """Add the local system to ``partners``, its services being the partners' inbound ones."""
        services = {c: s for c, (s, _) in inbound_services.items()}
        partner = self.partner(("local",), local.fields, LOCAL, services)
        if partner is not None:
            partners[LOCAL] = partner
        if inbound_services and not local.keys:
            self.r.warn(
                ("local",),
                said(
                    "no keys_sha256: the local system cannot report its decisions on inbound applications "
                    "(POST /v1/exchanges/{id}/lifecycle needs its key)"
                ),
            )

    def partner(
        self,
        path: PathKey,
        m: dict[str, Any],
        pid: str | None,
        services: Mapping[str, Service] | None,
    ) -> Partner | None:
        """A partner (or the local system) from its parsed keys; None if anything is wrong."""
        r = self.r
        names = parse_names(r, (*path, "name"), m.get("name"))
        region = parse_region(r, (*path, "region"), m.get("region"))
        protocol = r.choice((*path, "protocol"), m.get("protocol"), self.protocol_names)
        endpoint = r.url((*path, "endpoint"), m.get("endpoint"))
        own = policies(r, path, m, self.defaults)
        options = self._protocol_options(path, m, protocol)
        reply = parse_reply(r, (*path, "reply"), m.get("reply"), None, soap=protocol == "soap")
        auth = parse_auth(r, (*path, "auth"), m.get("auth"), self.base)
        if services is None:
            spec = self.protocols.get(protocol or "")
            raw = m.get("services")
            services = parse_services(r, (*path, "services"), raw, self.base, spec, reply)
        else:
            services = with_rules(services, reply)
        if not (pid and names and region and protocol and endpoint and services is not None):
            return None
        return Partner(
            id=pid,
            names=names,
            region=region,
            protocol=protocol,
            endpoint=endpoint,
            timeouts=own.timeouts,
            concurrency=own.concurrency,
            retry=own.retry,
            breaker=own.breaker,
            rate_limit=own.rate_limit,
            services=services,
            options=options,
            reply=reply,
            auth=auth,
        )

    def _protocol_options(
        self, path: PathKey, m: dict[str, Any], protocol: str | None
    ) -> Mapping[str, Any]:
        # Only the section named by the partner's protocol applies; the protocol's spec reads it.
        if protocol is None:
            return {}
        for other in self.protocol_names:
            if other != protocol and other in m:
                self.r.error(
                    (*path, other),
                    said(
                        "section %(other)r does not apply to protocol %(protocol)r",
                        other=other,
                        protocol=protocol,
                    ),
                )
        spec = self.protocols[protocol]
        return spec.parse_partner(self.r, (*path, protocol), m.get(protocol, {}), self.base)


def _search(r: Reader, raw: Any) -> tuple[str, ...]:
    """The ``search:`` section: the field paths of applications that hold the applicant's id."""
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
            r.error(
                ("search", "applicant_fields", i), said("bad field path: %(error)s", error=exc.text)
            )
            continue
        out.append(text)
    return tuple(out)


def _broker(r: Reader, raw: Any) -> BrokerSettings:
    if raw is None:
        return BrokerSettings()
    m = r.mapping(
        ("broker",),
        raw,
        optional=(
            "max_body_bytes",
            "lease",
            "poll_interval",
            "operator_keys_sha256",
            "body_timeout",
            "retention",
            "refusal_budget",
        ),
    )
    if m is None:
        return BrokerSettings()
    values: dict[str, Any] = {}
    if "operator_keys_sha256" in m:
        path = ("broker", "operator_keys_sha256")
        values["operator_keys_sha256"] = frozenset(
            parse_digests(r, path, m["operator_keys_sha256"])
        )
    if "max_body_bytes" in m:
        values["max_body_bytes"] = r.integer(
            ("broker", "max_body_bytes"), m["max_body_bytes"], low=1024, high=64 * 1024 * 1024
        )
    if "lease" in m:
        values["lease"] = r.duration(("broker", "lease"), m["lease"], low=1, high=3600)
    if "body_timeout" in m:
        values["body_timeout"] = r.duration(
            ("broker", "body_timeout"), m["body_timeout"], low=0.1, high=600
        )
    if "poll_interval" in m:
        values["poll_interval"] = r.duration(
            ("broker", "poll_interval"), m["poll_interval"], low=0.01, high=60
        )
    if "retention" in m:
        values["retention"] = parse_retention(r, m["retention"])
    settings = override(BrokerSettings(), values)
    if "refusal_budget" in m:  # None turns it off: not a value override() passes over
        budget = parse_refusal_budget(r, m["refusal_budget"])
        settings = replace(settings, refusal_budget=budget)
    return settings
