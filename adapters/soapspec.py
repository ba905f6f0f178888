"""partners.yaml for ``protocol: soap``: the keys a SOAP partner and its services may have, read and
checked against the partner's WSDL when the configuration loads (the WSDL read from the
repository, never fetched), and the element trees a mapping for it may write
(``tongban check``, the mapping playground). The adapter itself is :mod:`adapters.soap`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from adapters.base import Adapter
from adapters.envelope import VERSIONS
from adapters.headerplan import (
    HeaderSettings,
    check_settings,
    filled_paths,
    parse_settings,
    plan_for,
    xroad_item,
)
from adapters.soap import KINDS, SoapAdapter, wsdl_port
from adapters.soapheaders import HeaderPathError, covered, parse_steps, tree
from adapters.soapoptions import (
    DEFAULT_HEADER,
    HEADER_KEYS,
    QNAME_RE,
    SoapOptions,
    SoapService,
    ws_security,
)
from adapters.wsdl import Catalogue, Port, WsdlError, find_port, input_headers, input_tree
from adapters.wsdl import load_document as load_wsdl
from adapters.xroad import OPTIONAL_PARTS
from federation.config import Partner
from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said


class SoapSpec:
    """partners.yaml keys for ``protocol: soap``."""

    name = "soap"
    service_keys: tuple[str, ...] = (
        "operation",
        "soap_action",
        "status_operation",
        "poll_every",
        "supplement_operation",
        "xroad",
    )

    def __init__(self) -> None:
        # parse_service cannot see the partner it belongs to, so parse_partner leaves the WSDL port
        # here, keyed by the Reader of this load and the partner's path (the loader parses a
        # partner's section before its services).
        self._ports: weakref.WeakKeyDictionary[Reader, dict[PathKey, Port]] = (
            weakref.WeakKeyDictionary()
        )
        # ...and its header settings (with the idempotency_header as written), for the same reason
        self._settings: weakref.WeakKeyDictionary[
            Reader, dict[PathKey, tuple[HeaderSettings, Any]]
        ] = weakref.WeakKeyDictionary()

    def parse_partner(self, r: Reader, path: PathKey, raw: Any, base: Path) -> Mapping[str, Any]:
        keys = ("service", "port", "version", "idempotency_header", "ws_security", *HEADER_KEYS)
        m = r.mapping(path, raw, required=("wsdl",), optional=keys)
        if m is None:
            return {}
        # Every key is checked even when the WSDL cannot be read: all problems are reported at once.
        version: str | None = None
        if "version" in m:
            version = str(m["version"])  # YAML reads 1.1 as a number; '1.1' and 1.1 both do
            if version not in VERSIONS:
                allowed = ", ".join(VERSIONS)
                r.error(
                    (*path, "version"),
                    said(
                        "%(value)r is not one of: %(allowed)s", value=m["version"], allowed=allowed
                    ),
                )
                version = None
        header = DEFAULT_HEADER
        if "idempotency_header" in m:
            what = said("a namespaced element name such as %(example)s", example=DEFAULT_HEADER)
            p = (*path, "idempotency_header")
            header = r.text(p, m["idempotency_header"], pattern=QNAME_RE, what=what) or header
        security = ws_security(r, (*path, "ws_security"), m.get("ws_security"), base)
        settings = parse_settings(r, path, m, base)
        names = {k: r.text((*path, k), m[k]) for k in ("service", "port") if k in m}
        located = self._wsdl(r, path, m, base)
        if located is None:
            return {}
        file, root = located
        schemas: Catalogue = tuple(sorted((k, v) for k, v in r.schemas.items()))
        try:
            document = load_wsdl(file, root, schemas)
            port = find_port(document, names.get("service"), names.get("port"))
        except WsdlError as exc:
            # At the setting it is about when the section has it (a service or port not in
            # the WSDL); else at the wsdl setting (the file, or a choice it leaves open).
            r.error((*path, exc.key if exc.key in m else "wsdl"), exc.text)
            return {}
        self._ports.setdefault(r, {})[tuple(path[:-1])] = port
        self._settings.setdefault(r, {})[tuple(path[:-1])] = (settings, m.get("idempotency_header"))
        if version is not None and version != port.version.name:
            overrides = said(
                "overrides the WSDL binding's SOAP %(version)s", version=port.version.name
            )
            r.warn((*path, "version"), overrides)
        options = SoapOptions(
            wsdl=file,
            root=root,
            service=port.service,
            port=port.name,
            version=version or port.version.name,
            idempotency_header=header,
            ws_security=security,
            headers=settings,
            schemas=schemas,
        )
        return {"soap": options}

    @staticmethod
    def _wsdl(
        r: Reader, path: PathKey, m: Mapping[str, Any], base: Path
    ) -> tuple[Path, Path] | None:
        """The WSDL file and the directory its imports may read from, if it is a usable file."""
        if "wsdl" not in m:
            return None
        name = r.text((*path, "wsdl"), m["wsdl"])
        if name is None:
            return None
        root = base.resolve()
        file = (root / name).resolve()
        if not file.is_relative_to(root):
            r.error(
                (*path, "wsdl"), said("%(name)r is outside the configuration directory", name=name)
            )
            return None
        if not file.is_file():
            r.error((*path, "wsdl"), said("WSDL file %(name)r not found", name=name))
            return None
        return file, root

    def parse_service(self, r: Reader, path: PathKey, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        if "operation" not in raw:
            r.error(
                path,
                said("missing required key %(key)r (the WSDL operation to call)", key="operation"),
            )
            return {}
        port = self._ports.get(r, {}).get(tuple(path[:-2]))
        names: dict[str, str | None] = {}
        for key in ("operation", "status_operation", "supplement_operation"):
            if key not in raw:
                names[key] = None
                continue
            names[key] = name = r.text((*path, key), raw[key])
            if name is not None and port is not None and name not in port.operations:
                known = ", ".join(port.operations)
                r.error(
                    (*path, key),
                    said(
                        "no operation %(name)r in port %(port)s: %(known)s",
                        name=name,
                        port=port.name,
                        known=known,
                    ),
                )
        action = (
            r.text((*path, "soap_action"), raw["soap_action"]) if "soap_action" in raw else None
        )
        every = (
            r.duration((*path, "poll_every"), raw["poll_every"], low=0.05, high=7 * 86400)
            if "poll_every" in raw
            else None
        )
        if ("status_operation" in raw) != ("poll_every" in raw):
            r.error(
                path,
                said(
                    "status_operation and poll_every go together (polling calls status_operation "
                    "that often)"
                ),
            )
        operation = names["operation"]
        item = xroad_item(r, path, raw)
        if operation is None:
            return {}
        svc = SoapService(
            operation=operation,
            soap_action=action,
            status_operation=names["status_operation"],
            poll_every=every,
            supplement_operation=names["supplement_operation"],
            xroad=item,
        )
        partner_path = tuple(path[:-2])
        settings = self._settings.get(r, {}).get(partner_path)
        if port is not None and settings is not None:
            kinds = {kind: svc.operation_for(kind) for kind in KINDS}
            ops = {kind: name for kind, name in kinds.items() if name in port.operations}
            check_settings(r, partner_path, port, ops, item, *settings)
        return {"soap": svc}

    def create(self, partner: Partner) -> Adapter:
        return SoapAdapter(partner)

    def target_tree(
        self, partner: Partner, service: str, kind: str = "application"
    ) -> tuple[str, set[str], set[str]] | None:
        """Also kind ``headers``: the application operation's header paths, and the required ones
        that partners.yaml (fixed values, profile, idempotency placement) leaves to the mapping."""
        if kind == "headers":
            return header_tree(partner, service)
        return operation_tree(partner, service, kind)


SOAP = SoapSpec()


def operation_tree(
    partner: Partner, service: str, kind: str = "application"
) -> tuple[str, set[str], set[str]] | None:
    """The operation ``service`` calls for ``kind``, the dotted paths of its input elements and
    the unconditionally required ones (None: no operation for that kind). An element that
    partners.yaml's ``idempotency: {body: …}`` fills is not the mapping's to write."""
    svc: SoapService = partner.services[service].options["soap"]
    name = svc.operation_for(kind)
    if name is None:
        return None
    options: SoapOptions = partner.options["soap"]
    paths, required = input_tree(wsdl_port(options), name)
    if options.headers.key_body:
        key = {".".join(step for _, step in parse_steps(options.headers.key_body))}
        required = {need for need in required if not covered(key, need)}
    return name, paths, required


def header_tree(partner: Partner, service: str) -> tuple[str, set[str], set[str]] | None:
    """The application operation's header paths and the required ones nothing in partners.yaml
    fills (None: the operation declares no header parts)."""
    options: SoapOptions = partner.options["soap"]
    svc: SoapService = partner.services[service].options["soap"]
    port = wsdl_port(options)
    parts = input_headers(port, svc.operation)
    if not parts:
        return None
    optional = OPTIONAL_PARTS if options.headers.profile is not None else frozenset()
    paths, required = tree(parts, optional)
    try:
        body = input_tree(port, svc.operation)[0] if options.headers.key_body else set()
        plan = plan_for(
            options.headers, parts, operation=svc.operation, body_paths=body, item=svc.xroad
        )
    except HeaderPathError:
        return svc.operation, paths, set()  # reported by the config loader
    legacy = etree.QName(options.idempotency_header).localname
    filled = filled_paths(plan, legacy if options.idempotency_header in parts.tags else None)
    return svc.operation, paths, {need for need in required if not covered(filled, need)}
