"""The X-Road message protocol 4.x as a SOAP partner profile (``soap: {profile: xroad, xroad: …}``).

Declared once per partner::

    soap:
      wsdl: partners/wsdl/gd-verify-certificate.wsdl
      profile: xroad
      xroad:
        client: {instance: CN-GD, member_class: GOV, member_code: 11440000MB2C92227Y, subsystem: tongban}
        service: {instance: CN-GD, member_class: GOV, member_code: 11440000MB2C92227Y,
                  subsystem: certificate-verification, version: v1}
        user_id: CN-TONGBAN          # optional: xrd:userId
        issue: …                     # optional: xrd:issue (a mapping's headers: may fill it per case)

and per service item ``xroad: {code: verifyCertificate, version: v1}`` (the service code defaults
to the item's operation, the version to the partner's). tongban then writes, into the header parts
the WSDL declares (PR-MESS §2.2, §3.2): ``xrd:client`` (objectType SUBSYSTEM with a subsystem,
else MEMBER), ``xrd:service`` (objectType SERVICE), ``xrd:protocolVersion`` 4.0, ``xrd:userId`` and
``xrd:issue`` when given, and a new ``xrd:id`` (a UUID) for every message: a retry is a new
message, while the idempotency key stays the same.

Faults (PR-MESS §2.5; ErrorCodes.java): ``Client.*`` is the caller's to fix (permanent), ``Server.*``
a failure of the security servers or the provider (transient), except an unknown service or denied
access, which no retry fixes. Codes are compared without case (newer servers write them in lower
case) and without a namespace prefix. A partner's own ``reply: faults:`` rules come first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from federation.config.reader import Reader
from federation.config.replies import FaultRules, ReplyRules
from federation.config.yamlsrc import PathKey

PROTOCOL_VERSION = "4.0"
XRD = "http://x-road.eu/xsd/xroad.xsd"
# Header parts the protocol leaves optional (a WSDL declares them all in one message).
OPTIONAL_PARTS = frozenset({"userId", "issue", "centralService", "requestHash"})
_ID_KEYS = ("instance", "member_class", "member_code", "subsystem")
_PARTS = {
    "instance": "xRoadInstance",
    "member_class": "memberClass",
    "member_code": "memberCode",
    "subsystem": "subsystemCode",
    "code": "serviceCode",
    "version": "serviceVersion",
}
# The profile's fault rules, used unless the partner's reply: declares faults: of its own (codes
# without their namespace prefix, no case). Server faults a retry cannot fix (ErrorCodes.java:
# X_UNKNOWN_SERVICE, X_ACCESS_DENIED, X_UNKNOWN_MEMBER, X_SERVICE_DISABLED) come first.
FAULTS = FaultRules(
    permanent=(
        re.compile(r"\Aclient(\.|\Z)", re.IGNORECASE),
        re.compile(
            r"\Aserver\..*(unknown_?service|access_?denied|unknown_?member|"
            r"service_?disabled)",
            re.IGNORECASE,
        ),
    ),
    transient=(re.compile(r"\Aserver(\.|\Z)", re.IGNORECASE),),
)


@dataclass(frozen=True, kw_only=True)
class XRoadProfile:
    """A partner's X-Road identities: the client (us) and the service's provider."""

    client: Mapping[str, str]  # instance, member_class, member_code, subsystem?
    service: Mapping[str, str]  # instance, member_class, member_code, subsystem?, code?, version?
    user_id: str | None = None
    issue: str | None = None


@dataclass(frozen=True, kw_only=True)
class XRoadService:
    """A service item's own service code and version (None: the defaults)."""

    code: str | None = None
    version: str | None = None
    at: PathKey = field(default=(), compare=False)  # the item's xroad: section, for messages


def parse_profile(r: Reader, path: PathKey, raw: Any) -> XRoadProfile | None:
    """The ``xroad:`` section of a partner's ``soap:``; None (problems reported) if it is wrong."""
    m = r.mapping(path, raw, required=("client", "service"), optional=("user_id", "issue"))
    if m is None:
        return None
    client = _identifier(r, (*path, "client"), m.get("client"), _ID_KEYS)
    service = _identifier(r, (*path, "service"), m.get("service"), (*_ID_KEYS, "code", "version"))
    texts = {k: r.text((*path, k), m[k]) for k in ("user_id", "issue") if k in m}
    if client is None or service is None:
        return None
    return XRoadProfile(
        client=client, service=service, user_id=texts.get("user_id"), issue=texts.get("issue")
    )


def _identifier(r: Reader, path: PathKey, raw: Any, keys: tuple[str, ...]) -> dict[str, str] | None:
    m = r.mapping(path, raw, required=keys[:3], optional=keys[3:])
    if m is None:
        return None
    out = {k: r.text((*path, k), m[k]) for k in keys if k in m}
    return None if any(v is None for v in out.values()) else {k: str(v) for k, v in out.items()}


def parse_service(r: Reader, path: PathKey, raw: Any) -> XRoadService | None:
    """A service item's ``xroad: {code, version}``."""
    m = r.mapping(path, raw, optional=("code", "version"))
    if m is None:
        return None
    code = r.text((*path, "code"), m["code"]) if "code" in m else None
    version = r.text((*path, "version"), m["version"]) if "version" in m else None
    return XRoadService(code=code, version=version, at=tuple(path))


def fixed_headers(
    profile: XRoadProfile, item: XRoadService | None, operation: str
) -> dict[str, Any]:
    """The header values the profile fixes for one service item (all but ``id``)."""
    client = {"@objectType": "SUBSYSTEM" if "subsystem" in profile.client else "MEMBER"}
    client.update({_PARTS[k]: v for k, v in profile.client.items()})
    wanted = dict(profile.service)
    wanted.setdefault("code", operation)
    if item is not None:
        wanted.update({k: v for k, v in (("code", item.code), ("version", item.version)) if v})
    order = (*_ID_KEYS, "code", "version")  # the identifier's element order, for reading ease
    service = {"@objectType": "SERVICE"}
    service.update({_PARTS[k]: wanted[k] for k in order if k in wanted})
    out: dict[str, Any] = {"client": client, "service": service}
    if profile.user_id is not None:
        out["userId"] = profile.user_id
    if profile.issue is not None:
        out["issue"] = profile.issue
    out["protocolVersion"] = PROTOCOL_VERSION
    return out


_SETTINGS = {"userId": "user_id", "issue": "issue"}


def setting_of(profile: XRoadProfile, path: str) -> tuple[str, ...]:
    """Where, below a partner's ``soap:``, the profile's value at the dotted header ``path`` is
    set: ``client.memberCode`` → ``xroad.client.member_code`` (``profile`` for what the profile
    itself writes: protocolVersion, objectType, a service code from the operation)."""
    steps = path.split(".")
    if steps[0] in _SETTINGS:
        return ("xroad", _SETTINGS[steps[0]])
    if steps[0] not in ("client", "service"):
        return ("profile",)
    given = profile.client if steps[0] == "client" else profile.service
    names = {element: key for key, element in _PARTS.items()}
    key = names.get(steps[1]) if len(steps) > 1 else None
    if key is not None and key in given:
        return ("xroad", steps[0], key)
    return ("xroad", steps[0])


_ITEM = {"serviceCode": "code", "serviceVersion": "version"}


def item_setting(item: XRoadService | None, path: str) -> PathKey | None:
    """Where a service item's own ``xroad:`` sets the value at the dotted header ``path``
    (``service.serviceVersion`` → the item's ``xroad.version``); None if the item does not set
    it (the partner's ``xroad:`` does, or the operation's name)."""
    steps = path.split(".")
    if item is None or not item.at or len(steps) < 2 or steps[0] != "service":
        return None
    key = _ITEM.get(steps[1])
    return (*item.at, key) if key is not None and getattr(item, key) else None


# The header the profile fills per message, and with which exchange value.
PER_MESSAGE = {("id",): "message_id"}


def with_fault_rules(rules: ReplyRules | None) -> ReplyRules:
    """A service item's reply rules with the profile's fault rules, unless it declares its own."""
    if rules is None:
        return ReplyRules(faults=FAULTS)
    return rules if rules.faults is not None else replace(rules, faults=FAULTS)
