"""What a submission asks for besides its body: its query (``dry_run``) and its one Idempotency-Key.

A submission route files an application for real unless it is told otherwise, so nothing it is
told may be lost on the way: a query parameter it does not know (``dry-run``, ``Dry_Run``), one
given twice (``dry_run=false&dry_run=true``) or a value not understood is ``400 invalid-query``,
and two ``Idempotency-Key`` headers are ``400 missing-idempotency-key`` (the key cannot be told;
the type that already says "send one usable key"), each refused and journalled by the route,
never a real submission under a guess.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable

from aiohttp import web

from federation.api.problems import ProblemError
from federation.config.model import Partner

KEY_HEADER = "Idempotency-Key"
DRY_RUN = "dry_run"
SHOWN = 40  # characters of a parameter's name quoted back (the caller chose it; keep it short)


def key_as_sent(request: web.Request) -> str | None:
    """The Idempotency-Key as received, for the refusal record: one header's value, or several
    joined as HTTP combines repeated field lines (``a1, a2``); None when there is none."""
    values = request.headers.getall(KEY_HEADER, [])
    return ", ".join(values) if values else None


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key (None without one); 400 when it sends the header twice or
    more: which of its keys names the application cannot be told."""
    values = request.headers.getall(KEY_HEADER, [])
    if len(values) > 1:
        raise ProblemError(
            400,
            "missing-idempotency-key",
            f"{len(values)} Idempotency-Key headers: send exactly one, unique per application "
            "(nothing was filed)",
        )
    return values[0] if values else None


def dry_run(request: web.Request, also: Iterable[str] = ()) -> bool:
    """Whether the submission asks for a dry run (``dry_run=true``); 400 ``invalid-query`` for a
    parameter other than ``dry_run`` and ``also``, one given more than once, or a ``dry_run``
    that is neither ``true`` nor ``false``."""
    only(request, (DRY_RUN, *also))
    value = request.query.get(DRY_RUN)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise ProblemError(
        400,
        "invalid-query",
        "dry_run must be true or false (nothing was filed)",
        parameters=[DRY_RUN],
    )


def only(request: web.Request, known: Iterable[str] = ()) -> None:
    """Refuse (400 ``invalid-query``) a query with a parameter not in ``known`` or one given
    twice: a route that files for real must not guess what was meant."""
    if not request.query_string:
        return  # the usual submission: nothing to read (and no Counter to build, per request)
    allowed = tuple(known)
    counts = Counter(name for name, _ in request.query.items())
    unknown = sorted(name for name in counts if name not in allowed)
    if unknown:
        named = "; ".join(_unknown(name, allowed) for name in unknown)
        takes = f"it takes only {', '.join(allowed)}" if allowed else "it takes none"
        raise ProblemError(
            400,
            "invalid-query",
            f"unknown query parameter(s): {named}; {takes} (nothing was filed)",
            parameters=[_shown(name) for name in unknown],
        )
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:
        raise ProblemError(
            400,
            "invalid-query",
            f"{', '.join(repeated)} given more than once: send each once (nothing was filed)",
            parameters=repeated,
        )


def signed_in_query(partner: Partner) -> tuple[str, ...]:
    """The query parameters a partner that signs in the query sends (``place: query``)."""
    spec = partner.inbound.signing if partner.inbound is not None else None
    if spec is None or spec.signing.place != "query":
        return ()
    names = spec.signing.names
    return (names.app_key, names.timestamp, names.nonce, names.signature)


def _unknown(name: str, allowed: tuple[str, ...]) -> str:
    meant = _meant(name, allowed)
    return f"{_shown(name)!r}" + (f" (did you mean {meant}?)" if meant else "")


def _meant(name: str, allowed: tuple[str, ...]) -> str | None:
    """The known parameter ``name`` looks like: the same but for case and separators
    (``Dry-Run``, ``dryrun``), else the closest by spelling."""
    bare = _bare(name)
    for known in allowed:
        if _bare(known) == bare:
            return known
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in allowed], n=1, cutoff=0.75)
    return next((k for k in allowed if close and k.lower() == close[0]), None)


def _bare(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _shown(name: str) -> str:
    return name if len(name) <= SHOWN else name[:SHOWN] + "…"
