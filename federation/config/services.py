"""The service items of partners.yaml: a partner's ``services:`` and its ``inbound:`` section.

A service item names its mapping file (and optionally a schema); the keys a protocol adds to a service
(``ProtocolKeys.service_keys``) are read by that protocol's spec. Paths resolve against the config's
directory and must exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from federation.config.auth import parse_inbound_signing
from federation.config.callbacks import KEYS as CALLBACK_KEYS
from federation.config.callbacks import parse_callback, warn_unsigned
from federation.config.model import SERVICE_RE, Inbound, ProtocolKeys, Service
from federation.config.notices import parse_report
from federation.config.reader import Reader
from federation.config.replies import ReplyRules, parse_reply
from federation.config.values import parse_digests, parse_names
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said

INBOUND_KEYS = ("keys_sha256", "client_certs_sha256", "services", "wsdl", *CALLBACK_KEYS, "signing")


def parse_inbound(
    r: Reader,
    path: PathKey,
    raw: Any,
    base: Path,
    local_protocol: ProtocolKeys | None,
    protocol: str | None = None,
) -> Inbound | None:
    """A partner's ``inbound:`` section: who may file with us, and the services they may file
    (each with the ``report:`` its notices go by, the partner speaking ``protocol``)."""
    m = r.mapping(path, raw, optional=INBOUND_KEYS)
    if m is None:
        return None
    keys, certs = (
        parse_digests(r, (*path, name), m.get(name, []))
        for name in ("keys_sha256", "client_certs_sha256")
    )
    hears = parse_callback(r, path, m, base)
    callback = hears.url
    # A partner may only send status updates (no services): it still needs its keys.
    services: Mapping[str, Service] | None = (
        _with_reports(
            r, (*path, "services"), m["services"], base, local_protocol, (protocol, callback)
        )
        if "services" in m
        else {}
    )
    wsdl: Path | None = None
    if "wsdl" in m:
        wfile = r.text((*path, "wsdl"), m["wsdl"])
        wsdl = r.inside((*path, "wsdl"), wfile, base) if wfile is not None else None
        if wsdl is not None and not wsdl.is_file():
            r.error((*path, "wsdl"), said("WSDL file %(wfile)r not found", wfile=wfile))
    signing = (
        parse_inbound_signing(r, (*path, "signing"), m["signing"], base) if "signing" in m else None
    )
    if "callback_secret" not in m and _hears_json(m.get("services")):
        warn_unsigned(r, path, callback)
    if not (keys or certs) or services is None:
        if not (keys or certs):
            r.error(
                path,
                said("lists no keys_sha256 and no client_certs_sha256: nobody could file anything"),
            )
        return None
    return Inbound(
        keys_sha256=frozenset(keys),
        services=services,
        wsdl=wsdl,
        client_certs_sha256=frozenset(certs),
        callback=callback,
        callback_secret=hears.secret,
        callback_secret_previous=hears.previous,
        signing=signing,
    )


def _hears_json(raw: Any) -> bool:
    """Whether an item of the inbound ``services:`` has no ``report:``: the partner hears how
    it stands by tongban's JSON callback (the others by notices in its own dialect)."""
    items = raw.values() if isinstance(raw, dict) else ()
    return any(not (isinstance(v, dict) and "report" in v) for v in items)


def _with_reports(
    r: Reader,
    path: PathKey,
    raw: Any,
    base: Path,
    spec: ProtocolKeys | None,
    partner: tuple[str | None, str | None],
) -> dict[str, Service] | None:
    """Inbound service items, each with its ``report:`` (config/notices.py) read apart: the
    other keys are the local system's protocol's."""
    if not isinstance(raw, dict):
        return parse_services(r, path, raw, base, spec)
    reports = {c: v["report"] for c, v in raw.items() if isinstance(v, dict) and "report" in v}
    rest = {
        c: {k: x for k, x in v.items() if k != "report"} if c in reports else v
        for c, v in raw.items()
    }
    services = parse_services(r, path, rest, base, spec)
    if services is None:
        return None
    protocol, callback = partner
    for code, value in reports.items():
        route = parse_report(
            r, (*path, code, "report"), value, protocol=protocol, callback=callback
        )
        if code in services and route is not None:
            services[code] = replace(services[code], report=route)
    return services


def parse_services(
    r: Reader,
    path: PathKey,
    raw: Any,
    base: Path,
    spec: ProtocolKeys | None,
    reply: ReplyRules | None = None,
) -> dict[str, Service] | None:
    """Service items by code: mapping file, schema, protocol options, reply rules (over ``reply``)."""
    m = r.mapping(path, raw, extra_ok=True)
    if m is None:
        return None
    if not m:
        r.error(path, said("lists no service item"))
        return None
    out: dict[str, Service] = {}
    for code, value in m.items():
        service = _service(r, (*path, code), code, value, base, spec, reply)
        if service is not None:
            out[code] = service
    return out


def _service(
    r: Reader,
    spath: PathKey,
    code: str,
    value: Any,
    base: Path,
    spec: ProtocolKeys | None,
    reply: ReplyRules | None,
) -> Service | None:
    """One service item (a mapping file name alone, or its keys); None if it cannot be used."""
    if not SERVICE_RE.fullmatch(code):
        r.error(
            spath, said("%(code)r is not a service item code (letters, digits, . _ -)", code=code)
        )
        return None
    if isinstance(value, str):
        value = {"mapping": value}
    extra = spec.service_keys if spec else ()
    sm = r.mapping(
        spath, value, required=("mapping",), optional=("name", "schema", "reply", *extra)
    )
    if sm is None:
        return None
    names = parse_names(r, (*spath, "name"), sm["name"]) if "name" in sm else None
    mfile = r.text((*spath, "mapping"), sm.get("mapping"))
    if mfile is None:
        return None
    mpath = r.inside((*spath, "mapping"), mfile, base)
    if mpath is None:
        return None
    if not mpath.is_file():
        r.error((*spath, "mapping"), said("mapping file %(mfile)r not found", mfile=mfile))
        return None
    schema: Path | None = None
    if "schema" in sm:
        sfile = r.text((*spath, "schema"), sm["schema"])
        schema = r.inside((*spath, "schema"), sfile, base) if sfile is not None else None
        if sfile is not None and schema is None:
            return None
        if schema is not None and not schema.is_file():
            r.error((*spath, "schema"), said("schema file %(sfile)r not found", sfile=sfile))
            return None
    soap = spec is not None and spec.name == "soap"
    rules = parse_reply(r, (*spath, "reply"), sm.get("reply"), reply, soap=soap)
    options: Mapping[str, Any] = {}
    if spec is not None:
        options = spec.parse_service(r, spath, {k: sm[k] for k in extra if k in sm})
    return Service(
        code=code,
        names=names,
        mapping=mpath,
        schema=schema,
        options=options,
        reply=rules,
        declared=r.doc.problem(spath, ""),
    )
