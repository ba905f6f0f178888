"""Protocol registry: the ``protocol:`` value in partners.yaml → the spec that handles it."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters.base import Adapter, ProtocolSpec
from adapters.rest import REST
from adapters.soapspec import SOAP
from federation.config import Partner

_SPECS: dict[str, ProtocolSpec] = {}


def register(spec: ProtocolSpec) -> None:
    """Make a protocol available to partners.yaml (for plug-ins and tests)."""
    _SPECS[spec.name] = spec


register(REST)
register(SOAP)


def protocols() -> Mapping[str, ProtocolSpec]:
    """Every registered protocol by name: what ``load_config`` validates partners.yaml with."""
    return MappingProxyType(_SPECS)


def protocol_names() -> tuple[str, ...]:
    return tuple(sorted(_SPECS))


def protocol_spec(name: str) -> ProtocolSpec:
    return _SPECS[name]


def create_adapter(partner: Partner) -> Adapter:
    """The adapter for ``partner``'s protocol."""
    return _SPECS[partner.protocol].create(partner)
