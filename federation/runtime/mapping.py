"""Mapping one exchange: the one place that decides what an application becomes on the wire.

Delivery, filing at the door (inbound applications, correction-round material) and the replay dry
run all ask :func:`map_exchange` (or :func:`map_application`, before there is an exchange) and get
:class:`Mapped` or :class:`MappingFailed` back, never an exception. The mapping's ``supplement:``
section maps a correction round's material, ``request:`` everything else; the partner's JSON Schema
describes applications only, so it checks nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from federation.domain.errors import MappingError, Problem
from federation.domain.models import Exchange, canonical_json
from federation.runtime.catalogue import Catalogue

FailureKind = Literal["not_configured", "mapping", "schema"]


@dataclass(frozen=True, kw_only=True)
class Mapped:
    """The partner's request, the warnings raised on the way, and the versions of every file used."""

    request: dict[str, Any]
    warnings: tuple[Problem, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)

    def event_data(self) -> dict[str, Any]:
        """The ``mapped`` event's data, as the journal keeps it."""
        data: dict[str, Any] = {"mapped": self.request, "versions": self.versions}
        if self.warnings:
            data["warnings"] = [w.to_dict() for w in self.warnings]
        return data


@dataclass(frozen=True, kw_only=True)
class MappingFailed:
    """Why the application cannot be sent: no mapping any more, failing fields, or a request that
    breaks the partner's schema (``request`` then holds what the mapping made)."""

    kind: FailureKind
    problems: tuple[Problem, ...]
    message: str
    versions: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None

    def error(self) -> dict[str, Any]:
        """The exchange's ``last_error``."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.kind != "not_configured":
            out["problems"] = [p.to_dict() for p in self.problems]
        return out


def as_stored(request: Mapping[str, Any]) -> dict[str, Any]:
    """A mapped request as the journal's ``mapped`` event keeps it and the REST adapter sends it
    (:func:`~federation.domain.models.canonical_json`): a date as ``"2025-04-28"``, an amount as
    its exact text ``"5794.00"``. What a page shows, and what a new mapping is compared with an
    exchange's stored request as."""
    stored: dict[str, Any] = orjson.loads(canonical_json(request))
    return stored


def map_exchange(catalogue: Catalogue, exchange: Exchange) -> Mapped | MappingFailed:
    """Map the exchange's application with ``catalogue`` (its supplement: section for follow-ups)."""
    return map_application(
        catalogue,
        exchange.target,
        exchange.service,
        exchange.application,
        supplement=exchange.supplement_of is not None,
    )


def map_application(
    catalogue: Catalogue,
    partner: str,
    service: str,
    application: Mapping[str, Any],
    *,
    supplement: bool = False,
) -> Mapped | MappingFailed:
    """Map an application (or, with ``supplement``, correction-round material) for ``partner``."""
    mapping = catalogue.mapping(partner, service)
    if mapping is None:
        message = f"partner {partner!r} has no service {service!r} any more"
        return MappingFailed(
            kind="not_configured", problems=(Problem(message=message),), message=message
        )
    versions = catalogue.versions(partner, service)
    section = mapping.supplement if supplement else mapping.request
    if section is None:
        missing = Problem(message="this service's mapping takes no supplements", file=mapping.file)
        return _fields_failed((missing,), versions)
    try:
        request, warnings = section.apply_checked(application)
    except MappingError as exc:
        return _fields_failed(exc.problems, versions)
    schema = None if supplement else catalogue.schema(partner, service)
    if schema is not None and (broken := schema.problems(request, file=schema.file)):
        return MappingFailed(
            kind="schema",
            problems=tuple(broken),
            message=f"the mapped request breaks the partner's schema in {len(broken)} place(s)",
            versions=versions,
            request=request,
        )
    return Mapped(request=request, warnings=tuple(warnings), versions=versions)


def _fields_failed(problems: tuple[Problem, ...], versions: dict[str, str]) -> MappingFailed:
    return MappingFailed(
        kind="mapping",
        problems=problems,
        message=f"{len(problems)} field(s) failed the mapping",
        versions=versions,
    )
