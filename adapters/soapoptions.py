"""What partners.yaml says of a SOAP partner and its service items, as values: the ``soap:``
section's options, WS-Security credentials' names, and a service item's operations. Read and
checked by ``adapters.soapspec.SoapSpec``; used by the adapter, the simulators and ``tongban check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.headerplan import NO_SETTINGS, HeaderSettings
from adapters.wsdl import Catalogue
from adapters.xroad import XRoadService
from federation.config.reader import Reader
from federation.config.secrets import SecretRef, checked, parse_secret
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said

DEFAULT_HEADER = "{urn:tongban:header}IdempotencyKey"
QNAME_RE = re.compile(r"\{[^{}\s]+\}[A-Za-z_][A-Za-z0-9_.-]*")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"


@dataclass(frozen=True, kw_only=True)
class WsSecurity:
    """UsernameToken credentials: the password a secret reference (``password: "{env:NAME}"`` or
    ``"{file:path}"``, or ``password_env: NAME`` as before), read at every send."""

    username: str
    password: SecretRef


@dataclass(frozen=True, kw_only=True)
class SoapOptions:
    wsdl: Path
    root: Path  # the configuration directory: WSDL imports may read files below it only
    service: str
    port: str
    version: str  # "1.1" or "1.2"
    idempotency_header: str = DEFAULT_HEADER  # Clark notation: {namespace}LocalName
    ws_security: WsSecurity | None = None
    headers: HeaderSettings = NO_SETTINGS  # soap: headers:, idempotency:, profile:
    schemas: Catalogue = ()  # partners.yaml's schema catalogue, which the WSDL is loaded with


@dataclass(frozen=True, kw_only=True)
class SoapService:
    operation: str
    soap_action: str | None = None  # overrides the soapAction of `operation` (None: the WSDL's)
    status_operation: str | None = None  # asked how an application stands (polling)
    poll_every: float | None = None  # ask that often, for partners that cannot call back
    supplement_operation: str | None = None  # takes a correction round's material (补正)
    xroad: XRoadService | None = None  # an X-Road partner's service code and version for the item

    def operation_for(self, kind: str) -> str | None:
        """The WSDL operation for a request kind (application, status, supplement), if any."""
        if kind == "status":
            return self.status_operation
        if kind == "supplement":
            return self.supplement_operation
        return self.operation


HEADER_KEYS = ("headers", "idempotency", "profile", "xroad")  # adapters.headerplan reads them


def ws_security(r: Reader, path: PathKey, raw: Any, base: Path) -> WsSecurity | None:
    """partners.yaml's ``soap: ws_security:``: a user name, and the password by reference. A
    password that cannot be read here is a warning: what needs it is held until it can be read
    (the broker starts, and every other partner is served)."""
    if raw is None:
        return None
    m = r.mapping(path, raw, required=("username",), optional=("password", "password_env"))
    if m is None:
        return None
    user = r.text((*path, "username"), m.get("username"))
    if ("password" in m) == ("password_env" in m):
        r.error(path, said("give the password once: password: '{env:NAME}' or '{file:path}'"))
        return None
    if "password" in m:
        ref = parse_secret(r, (*path, "password"), m["password"], base)
    else:
        where = (*path, "password_env")
        env = r.text(where, m["password_env"], pattern=ENV_RE, what=said("a variable name"))
        ref = None if env is None else SecretRef(kind="env", name=env, base=base)
        if ref is not None:
            checked(r, where, ref)
    if user is None or ref is None:
        return None
    return WsSecurity(username=user, password=ref)
