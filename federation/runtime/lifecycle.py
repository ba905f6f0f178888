"""Lifecycle steps (Administrative Licensing Law art. 32): a partner's or the local system's word on
an application, checked against the rules in :data:`~federation.domain.models.LIFECYCLE_NEXT` and
journalled, whether it came by callback, by poll or from the local system.

Refusals are :class:`~federation.domain.errors.RequestRefused`; the HTTP edge answers them.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import time
from collections.abc import Mapping
from typing import Any

from federation.config import LOCAL
from federation.domain.errors import LifecycleMoved, MappingError, RefusalKind, RequestRefused
from federation.domain.models import (
    LIFECYCLE_NEXT,
    Direction,
    Event,
    Exchange,
    Lifecycle,
    State,
    StateChange,
)
from federation.domain.storable import unstorable
from federation.runtime.catalogue import Catalogue
from federation.runtime.notices import reported
from federation.runtime.supplements import CORRECTION, filed_at, filed_in_round, material_left
from replay.journal import Journal, Query

EXCHANGE_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")  # federation.domain.ids.new_id's form
SLACK = dt.timedelta(seconds=2)  # partners that give whole seconds, and a little clock skew
WORDLESS = frozenset({"partner_update", "via", "supplement", "at"})  # not what a step says


def is_state(value: object) -> bool:
    """Is ``value`` one of the lifecycle states (text, not a list or a number that maps to one)?"""
    return isinstance(value, str) and value in LIFECYCLE_NEXT


async def filed_by(journal: Journal, pid: str, key: str) -> Exchange:
    """The application partner ``pid`` filed with that idempotency key, with its history."""
    if unstorable({"key": key}):  # no journal holds such a key (PostgreSQL cannot even ask)
        raise RequestRefused(
            RefusalKind.NOT_FOUND, "not-found", f"{pid} filed no application with that key"
        )
    found = await journal.search(Query(source=pid, partner=LOCAL, idempotency_key=key, limit=1))
    full: Exchange | None = await journal.get(found[0].id) if found else None
    if full is None or full.direction is not Direction.INBOUND:
        raise RequestRefused(
            RefusalKind.NOT_FOUND, "not-found", f"{pid} filed no application with that key"
        )
    return full


async def record_lifecycle(
    journal: Journal,
    catalogue: Catalogue,
    exchange: Exchange,
    lifecycle: dict[str, Any],
    update: Any,
    *,
    via: str = "callback",
) -> tuple[str, bool]:
    """Journal a partner's word on an application and tell its source (callback or poll alike).

    Returns the state and whether it was a step: the same state as the latest is none (nothing is
    journalled). A state that may not follow the latest (:data:`LIFECYCLE_NEXT`) is journalled as a
    ``lifecycle_refused`` event of the exchange (once, if ``exchange`` comes with its events and the
    last word was the same refusal) and raised as 409 problem details; the latest state stands.
    The step is written only if the latest word is still the one it was checked against and no
    other step was written since (a new correction round leaves the word as it was: the count of
    steps tells); if another update got there first, it is checked again against that one.
    """
    for _ in range(3):
        try:
            return await _record_step(journal, catalogue, exchange, lifecycle, update, via)
        except LifecycleMoved:
            moved = await journal.get(exchange.id)
            if moved is None:
                break
            exchange = moved
    raise RequestRefused(
        RefusalKind.CONFLICT,
        "lifecycle-busy",
        f"exchange {exchange.id} keeps changing; send the update again",
    )


async def _record_step(
    journal: Journal,
    catalogue: Catalogue,
    exchange: Exchange,
    lifecycle: dict[str, Any],
    update: Any,
    via: str,
) -> tuple[str, bool]:
    state: str = lifecycle["lifecycle"]
    latest = exchange.lifecycle_state or Lifecycle.SUBMITTED.value
    left = await _material_left(journal, exchange, state)
    heard = _heard(exchange, lifecycle, via, left)
    if heard is not Heard.STEP:
        if heard is Heard.REPEAT:
            await _repeated(journal, exchange, lifecycle, update, via)
        return latest, False
    following = LIFECYCLE_NEXT.get(latest, frozenset())
    if state != latest and state not in following:  # (the same again: a new correction round)
        await _refused(journal, exchange, state, latest, update, via)
        may = ", ".join(s.value for s in Lifecycle if s.value in following) or "nothing"
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "lifecycle-out-of-order",
            f"exchange {exchange.id} is {latest}: {state} cannot follow it (may follow: {may})",
            lifecycle=latest,
        )
    inbound = exchange.direction is Direction.INBOUND
    callback = catalogue.config.callback_url(exchange.source, inbound=inbound)
    await journal.record(
        exchange.id,
        [
            Event(
                exchange_id=exchange.id,
                kind="lifecycle",
                at=time.time(),
                data={**lifecycle, "partner_update": update, "via": via},
            )
        ],
        StateChange(
            state=State.DELIVERED,
            expect=frozenset({State.DELIVERED}),
            notify=callback is not None or reported(catalogue, exchange),  # or a notice
            notify_as=f"lifecycle:{state}",
            lifecycle_state=state,
            expect_lifecycle=exchange.lifecycle_state,
            # …and no step taken since, one to the same state either (a new round: two notices
            # of it heard at once are one round, the later one heard again as a resend)
            expect_steps=exchange.lifecycle_steps,
        ),
    )
    return state, True


class Heard(enum.Enum):
    """What a word on an application is, against the steps journalled so far."""

    STEP = "step"  # a step (or one out of order, refused as such)
    RESENT = "resent"  # a step already journalled, in the same words: nothing new
    # the latest state again in other words, or a polled 补正 in the round's words that cannot be
    # told from the old one (undated): no new step, journalled as such for support staff
    REPEAT = "repeat"


def _heard(
    exchange: Exchange, lifecycle: dict[str, Any], via: str, left: dt.datetime | None
) -> Heard:
    """A partner (or the local system) resending a notice is harmless; the same state in new
    words is kept without a new step, except ``correction_required`` while a supplement is on
    its way for the round, which asks for more: a new round, which that supplement's delivery does
    not close; so is a notice of it in the round's words dated after the supplement was filed.
    Once the supplement was delivered (its material ``left`` then), a ``correction_required`` is
    a new round (:func:`_after_material`)."""
    state = lifecycle["lifecycle"]
    latest = exchange.lifecycle_state or Lifecycle.SUBMITTED.value
    steps = exchange.lifecycle()
    answered = bool(steps) and "supplement" in steps[-1]  # the latest: a supplement delivered
    if state != latest and not (state == CORRECTION and answered):
        return Heard.STEP
    told = [e for e in exchange.events if e.kind == "lifecycle"]
    heard = words(lifecycle)
    same = any(e.data.get("lifecycle") == state and words(e.data) == heard for e in told)
    if state != latest:  # correction_required after the round's supplement was delivered
        return _after_material(lifecycle, same, via, left)
    if state == CORRECTION and filed_in_round(exchange.events):
        # asked for more while the round's supplement is on its way: in new words, or (a
        # notice, not a polled state: the partner has not got the material) dated after filing;
        # undated in the round's words it is the round's notice resent
        filed = filed_at(exchange.events)
        if not same or (via != "poll" and _after(lifecycle, filed)):
            return Heard.STEP
    if same or not told:  # (no step told: submitted again, as the delivery said)
        return Heard.RESENT
    return Heard.REPEAT


def _after_material(
    lifecycle: Mapping[str, Any], same: bool, via: str, left: dt.datetime | None
) -> Heard:
    """A ``correction_required`` heard after the round's supplement was delivered: a new round,
    unless in words already said (the partner's set phrase, or the old request) and either dated
    before the material ``left`` (the old request: it has not processed the material yet) or,
    undated, a polled state (a poll answer is where the application stands, not a notice: a
    partner that has not processed the material yet still says so). New words are a new round
    whatever their date: what the partner asks has not been heard, and a clock may be wrong."""
    if not same:
        return Heard.STEP
    if _dated(lifecycle) is None:
        # a notice sent after the delivery asks again; a state cannot be told from the old one:
        # kept once for support staff (the source is not told)
        return Heard.REPEAT if via == "poll" else Heard.STEP
    return Heard.RESENT if left is not None and _before(lifecycle, left) else Heard.STEP


def words(data: Mapping[str, Any]) -> dict[str, Any]:
    """What was said in a step (its state, note …), without how it came or its time: a partner
    answering a poll with the time of the answer says nothing new by it (the time tells only
    while a supplement is on its way or once it was delivered, :func:`_heard`)."""
    return {k: v for k, v in data.items() if k not in WORDLESS}


def _before(mapped: Mapping[str, Any], when: float | dt.datetime) -> bool:
    """Whether the partner dates its word (``at``) more than :data:`SLACK` before ``when``
    (False: undated, or not before)."""
    dated = _dated(mapped)
    if not isinstance(when, dt.datetime):  # a journal's time: seconds since the epoch
        when = dt.datetime.fromtimestamp(when, dt.UTC)
    return dated is not None and dated + SLACK < when


def _after(mapped: Mapping[str, Any], when: float | None) -> bool:
    """Whether the partner dates its word (``at``) after ``when`` (or less than :data:`SLACK`
    before it); False if it gives no time, or there is no ``when``."""
    return when is not None and _dated(mapped) is not None and not _before(mapped, when)


async def _material_left(journal: Journal, exchange: Exchange, state: str) -> dt.datetime | None:
    """When the material of the supplement that answered the latest correction round left for
    the partner, if ``state`` is a 补正 heard after that supplement's delivery (else None): the
    start of its attempt (:func:`material_left`), or, not journalled, the delivery's time."""
    steps = exchange.lifecycle()
    if state != CORRECTION or not steps or "supplement" not in steps[-1]:
        return None
    left = await material_left(journal, str(steps[-1]["supplement"]))
    if left is not None:
        return dt.datetime.fromtimestamp(left, dt.UTC)
    try:
        return dt.datetime.fromisoformat(str(steps[-1]["at"]))
    except (TypeError, ValueError):  # a step's time that does not read
        return None


def _dated(mapped: Mapping[str, Any]) -> dt.datetime | None:
    """The time the partner gives its word (``at``), if it is one with a zone."""
    try:
        when = dt.datetime.fromisoformat(str(mapped.get("at")))
    except ValueError:  # no time, not a time
        return None
    return when if when.tzinfo is not None else None


async def _repeated(
    journal: Journal, exchange: Exchange, lifecycle: dict[str, Any], update: Any, via: str
) -> None:
    """Journal the latest state said again in new words, or a polled 补正 that cannot be told
    from the old request (:func:`_after_material`), once per words as ``lifecycle_repeated``:
    kept for support staff, no step, the source not told."""
    since = exchange.events[_last_step(exchange) + 1 :]
    if any(e.kind == "lifecycle_repeated" and words(e.data) == words(lifecycle) for e in since):
        return
    data = {**lifecycle, "partner_update": update, "via": via}
    await journal.record(
        exchange.id,
        [Event(exchange_id=exchange.id, kind="lifecycle_repeated", at=time.time(), data=data)],
        StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
    )


def _last_step(exchange: Exchange) -> int:
    """Index of the latest ``lifecycle`` event (-1: none)."""
    kinds = [e.kind for e in exchange.events]
    return len(kinds) - 1 - kinds[::-1].index("lifecycle") if "lifecycle" in kinds else -1


async def _refused(
    journal: Journal, exchange: Exchange, state: str, latest: str, update: Any, via: str
) -> None:
    """Journal a state that may not follow the latest as ``lifecycle_refused`` (once, if the
    last word was the same refusal)."""
    words_so_far = [e for e in exchange.events if e.kind in ("lifecycle", "lifecycle_refused")]
    last = words_so_far[-1] if words_so_far else None
    if last is not None and last.kind == "lifecycle_refused" and last.data.get("reported") == state:
        return
    refused = {"reported": state, "after": latest, "via": via, "partner_update": update}
    await journal.record(
        exchange.id,
        [Event(exchange_id=exchange.id, kind="lifecycle_refused", at=time.time(), data=refused)],
        StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
    )


async def exchange_for(journal: Journal, pid: str, update: dict[str, Any]) -> Exchange:
    """The application sent to ``pid`` that a status update names, with its history.

    Named by ``exchange_id``, or by ``idempotency_key``: the key the partner was sent it with
    (the exchange id, one application's by construction) or, for an application sent before the
    key was the exchange id, the source's own key while no other application to ``pid`` has it.
    Given both, they must name the same application.
    """
    xid, key = update.get("exchange_id"), update.get("idempotency_key")
    if xid is None and key is None:
        raise _invalid("name the application by its idempotency_key or exchange_id")
    for name, value in (("exchange_id", xid), ("idempotency_key", key)):
        if value is not None and (not isinstance(value, str) or not value):
            raise _invalid(f"{name} must be a non-empty string")
    if isinstance(xid, str):
        exchange = await _sent(journal, pid, xid)
        if exchange is None:
            raise RequestRefused(
                RefusalKind.NOT_FOUND, "not-found", f"no application sent to {pid!r} as {xid}"
            )
        if isinstance(key, str) and key not in (exchange.sent_key(), exchange.idempotency_key):
            raise _invalid(f"idempotency_key names another application than exchange {xid}")
    else:
        assert isinstance(key, str)
        exchange = await _by_key(journal, pid, key)
    if exchange.supplement_of is not None:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "supplement",
            f"that key names a supplement to exchange {exchange.supplement_of}: report on the "
            "application by its own key",
        )
    if exchange.state is not State.DELIVERED:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "not-delivered",
            f"exchange {exchange.id} is {exchange.state.value}, not delivered",
        )
    return exchange


async def _sent(journal: Journal, pid: str, xid: str) -> Exchange | None:
    """Exchange ``xid`` with its history, if it is one sent to ``pid``."""
    exchange = await journal.get(xid) if EXCHANGE_ID.fullmatch(xid) else None
    return exchange if exchange is not None and exchange.target == pid else None


async def _by_key(journal: Journal, pid: str, key: str) -> Exchange:
    """The application sent to ``pid`` with ``key`` (see :func:`exchange_for`)."""
    sent = await _sent(journal, pid, key)
    if sent is not None and sent.sent_key() == key:
        return sent
    found = (
        []
        if unstorable({"key": key})
        else await journal.search(Query(partner=pid, idempotency_key=key, limit=2))
    )
    if len(found) > 1:
        raise RequestRefused(
            RefusalKind.CONFLICT,
            "ambiguous",
            "two applications carry that key: send the key we sent with the application "
            "(its exchange id) or exchange_id",
        )
    exchange = await journal.get(found[0].id) if found else None
    if exchange is None:
        raise RequestRefused(
            RefusalKind.NOT_FOUND, "not-found", f"no application sent to {pid!r} with that key"
        )
    return exchange


def _invalid(detail: str) -> RequestRefused:
    return RequestRefused(RefusalKind.INVALID, "invalid-request", detail)


def lifecycle_of(
    catalogue: Catalogue, exchange: Exchange, update: dict[str, Any]
) -> dict[str, Any]:
    mapping = catalogue.mapping(exchange.target, exchange.service)
    try:
        mapped = mapping.map_status(update) if mapping is not None else None
    except MappingError as exc:
        problems = [p.to_dict() for p in exc.problems]
        raise RequestRefused(
            RefusalKind.UNPROCESSABLE,
            "mapping-failed",
            "the status update does not map",
            errors=problems,
        ) from exc
    if mapped is None:
        raise RequestRefused(
            RefusalKind.NOT_FOUND,
            "unknown-service",
            f"the mapping of {exchange.service!r} takes no status updates",
        )
    if not is_state(mapped.get("lifecycle")):
        raise RequestRefused(
            RefusalKind.UNPROCESSABLE,
            "mapping-failed",
            f"{mapped.get('lifecycle')!r} is not a lifecycle state "
            f"({', '.join(s.value for s in Lifecycle)})",
        )
    return as_text(mapped)


def as_text(mapped: Mapping[str, Any]) -> dict[str, Any]:
    """A mapped status update's values as text (a number as its digits), those that are None
    left out; a value that is no text (an object, a list, true or false) is refused (422): the
    source would be handed the partner's structure as the step's note."""
    out: dict[str, Any] = {}
    errors = []
    for key, value in mapped.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if value is None or isinstance(value, str):
            if value is not None:
                out[key] = value
            continue
        errors.append({"path": key, "message": f"maps to {type(value).__name__}, not text"})
    if errors:
        raise RequestRefused(
            RefusalKind.UNPROCESSABLE,
            "mapping-failed",
            "the status update maps to values that are not text: "
            + ", ".join(e["path"] for e in errors),
            errors=errors,
        )
    return out
