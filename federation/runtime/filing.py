"""Filing on behalf of others: applications partners file with us, and correction-round material
(补正) in both directions. Each is checked, mapped where it must be, and journalled as an exchange.

Refusals are :class:`~federation.domain.errors.RequestRefused`; the HTTP edge answers them.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from federation.config import LOCAL, Partner
from federation.domain.errors import (
    IdempotencyConflict,
    JournalError,
    RefusalKind,
    RequestRefused,
)
from federation.domain.models import Direction, Exchange
from federation.runtime.broker import Broker, Submission
from federation.runtime.mapping import MappingFailed, map_application
from federation.runtime.supplements import CORRECTION, hold_round, withdraw
from replay.journal import Query

KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def conflict(exc: IdempotencyConflict) -> RequestRefused:
    """409: the key names another application."""
    return RequestRefused(
        RefusalKind.CONFLICT,
        "idempotency-conflict",
        f"Idempotency-Key was already used for exchange {exc.exchange_id} with a different "
        "application; use a new key for a new application",
        exchange_id=exc.exchange_id,
    )


async def file_supplement(
    broker: Broker,
    parent: Exchange,
    material: dict[str, Any],
    key: str | None,
    *,
    map_now: bool = False,
) -> tuple[Exchange, bool]:
    """Journal a correction round's material as a follow-up of ``parent`` (both directions).

    Refused (RequestRefused) unless the latest word on ``parent`` is ``correction_required`` and
    no other supplement is on its way for that round (a repeat of a supplement already filed
    under ``key`` is answered like any repeat), its service takes supplements, and ``key`` is a
    valid key. ``map_now``: refuse with 422 material the ``supplement:`` section cannot map (a
    partner's, which must not reach the local system half-mapped). The follow-up's application
    is ``{"material", "original"}``.
    """
    _check_supplement(broker, parent, key)
    assert key is not None  # checked
    repeat = await _is_repeat(broker, parent, key)
    latest = parent.lifecycle_state or parent.state.value
    if latest != CORRECTION and not repeat:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "no-correction-requested",
            f"exchange {parent.id} is {latest}: {parent.target} has not asked for more material",
        )
    # the key the partner (or the local system) was sent the application with: how it knows it
    application = {"material": material, "original": parent.original(sent=True)}
    if map_now:
        mapped = map_application(
            broker.catalogue, parent.target, parent.service, application, supplement=True
        )
        if isinstance(mapped, MappingFailed):
            raise _unprocessable(mapped, "of the material")
    if not repeat:  # one supplement per round: noted on the parent first
        await hold_round(broker.journal, parent, key)
    try:
        return await broker.submit(
            Submission(
                source=parent.source,
                partner=parent.target,
                service=parent.service,
                idempotency_key=key,
                # the material and how the partner knows the application it completes, kept
                # with the follow-up so that a replay sends the same
                application=application,
                supplement_of=parent.id,
                direction=parent.direction,
            )
        )
    except (JournalError, RequestRefused) as exc:
        if not repeat:
            await _withdrawn(broker, parent, key, exc)
        if isinstance(exc, IdempotencyConflict):
            raise conflict(exc) from exc
        raise


def _check_supplement(broker: Broker, parent: Exchange, key: str | None) -> None:
    """A supplement is refused outright for a supplement, a service that takes none, or with
    no valid key."""
    if parent.supplement_of is not None:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "supplement",
            f"exchange {parent.id} is itself a supplement to exchange {parent.supplement_of}: "
            "send material for that application",
        )
    mapping = broker.catalogue.mapping(parent.target, parent.service)
    if mapping is None or mapping.supplement is None:
        raise RequestRefused(
            RefusalKind.NOT_FOUND,
            "unknown-service",
            f"{parent.target!r} takes no supplements for this service",
        )
    if not key or not KEY_RE.fullmatch(key):
        raise RequestRefused(
            RefusalKind.INVALID,
            "missing-idempotency-key",
            "send an Idempotency-Key that is unique per supplement",
        )


async def _withdrawn(
    broker: Broker, parent: Exchange, key: str, exc: JournalError | RequestRefused
) -> None:
    """The supplement noted on ``parent`` was not journalled: its round is free of it (if the
    journal takes the note now; else it is free once the note is old, see supplements.py)."""
    with contextlib.suppress(JournalError):
        await withdraw(broker.journal, parent.id, key, f"not journalled: {type(exc).__name__}")


async def _is_repeat(broker: Broker, parent: Exchange, key: str) -> bool:
    """Was a supplement to ``parent`` already filed under ``key``?"""
    earlier = await broker.journal.search(
        Query(partner=parent.target, source=parent.source, idempotency_key=key, limit=1)
    )
    # (search results come without events, which is where supplement_of is kept)
    first = await broker.journal.get(earlier[0].id) if earlier else None
    return first is not None and first.supplement_of == parent.id


async def file_with(
    broker: Broker,
    partner: Partner,
    service: str,
    application: dict[str, object],
    key: str | None,
    *,
    missing_key: str,
) -> tuple[Exchange, bool]:
    """Check the service, map now, then journal the application (REST and SOAP intake share this).

    Raises RequestRefused for every refusal, including a reused key (409); the caller journals it.
    """
    services = partner.inbound.services if partner.inbound is not None else {}
    if service not in services:
        raise RequestRefused(
            RefusalKind.NOT_FOUND,
            "unknown-service",
            f"{partner.id!r} files no service {service!r} with us",
            services=sorted(services),
        )
    _check_mapping(broker, service, application)
    if not key or not KEY_RE.fullmatch(key):
        raise RequestRefused(RefusalKind.INVALID, "missing-idempotency-key", missing_key)
    try:
        result: tuple[Exchange, bool] = await broker.submit(
            Submission(
                source=partner.id,
                partner=LOCAL,
                service=service,
                idempotency_key=key,
                application=application,
                direction=Direction.INBOUND,
            )
        )
    except IdempotencyConflict as exc:
        raise conflict(exc) from exc
    return result


def _check_mapping(broker: Broker, service: str, application: dict[str, object]) -> None:
    """Map now: an application the local system could not take is refused at the door, whole."""
    mapped = map_application(broker.catalogue, LOCAL, service, application)
    if isinstance(mapped, MappingFailed):
        if mapped.kind == "not_configured":
            raise RequestRefused(
                RefusalKind.NOT_FOUND, "unknown-service", f"no mapping for service {service!r}"
            )
        raise _unprocessable(mapped, "of the application")


def _unprocessable(failed: MappingFailed, what: str) -> RequestRefused:
    """422: what a partner filed cannot be mapped (or breaks the schema), so none of it goes on."""
    problems = [p.to_dict() for p in failed.problems]
    return RequestRefused(
        RefusalKind.UNPROCESSABLE,
        "mapping-failed",
        f"{len(problems)} field(s) {what} cannot be taken; nothing was passed on",
        errors=problems,
    )
