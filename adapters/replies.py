"""A partner's reply rules, evaluated: is this answer its yes, a refusal, or unrecognised?

The rules (``reply:`` in partners.yaml) are parsed by :mod:`federation.config.replies`; both the
REST and the SOAP adapter judge a reply through :func:`judge` and turn anything but a yes into an
adapter error with :func:`rule_refusal`. The order is fixed:

1. a code listed as ``permanent`` or ``transient`` decides, whatever the HTTP status (a code the
   partner lists as a refusal is never read as a yes);
2. a 2xx answer for which every ``success`` condition holds is the partner's yes;
3. any other 2xx answer is what ``otherwise:`` says: ``unconfirmed`` (the default: never counted
   as delivered), ``permanent`` or ``transient``;
4. any other non-2xx answer: the rules say nothing and the HTTP status decides, as without rules.

SOAP faults are judged by :func:`fault_is_transient` (``faults:`` patterns before the standard
Client/Server split).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from federation.config.replies import Condition, ReplyRules, code_text
from federation.domain.errors import (
    AdapterError,
    PermanentError,
    Transcript,
    TransientError,
    UnrecognisedReply,
)
from federation.domain.paths import MISSING, Segment, getter

MESSAGE_LIMIT = 500


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What the rules make of one reply: ``kind`` is success, permanent, transient or unconfirmed."""

    kind: str
    code: str | int | None = None  # the partner's code as it answered, when it is a scalar
    message: str | None = None  # the partner's message, when the rules say where it is
    why: str = ""  # which rule decided, in words


def judge(rules: ReplyRules, *, status: int, body: Any) -> Verdict | None:
    """The verdict on a reply (``body`` parsed: JSON, or the SOAP output as a dict; None if it
    could not be read); None when the rules say nothing (a non-2xx answer with no listed code)."""
    raw = _read(rules.code, body)
    code = code_text(raw)
    said = {"code": raw if code is not None else None, "message": _message(rules, body)}
    if rules.permanent.matches(code):
        return Verdict(kind="permanent", why=f"code {code} is listed as permanent", **said)
    if rules.transient.matches(code):
        return Verdict(kind="transient", why=f"code {code} is listed as transient", **said)
    if not 200 <= status < 300:
        return None
    for cond in rules.success:
        if not _holds(cond, code, status, body):
            return Verdict(kind=rules.otherwise, why=_unmet(cond, rules, code), **said)
    return Verdict(kind="success", why="the success conditions hold", **said)


def holds(cond: Condition, rules: ReplyRules, status: int, body: Any) -> bool:
    """Whether one success condition holds for a reply."""
    return _holds(cond, code_text(_read(rules.code, body)), status, body)


def _holds(cond: Condition, code: str | None, status: int, body: Any) -> bool:
    """:func:`holds`, with the reply's code (at the rules' ``code`` path) already read."""
    if cond.statuses is not None and status not in cond.statuses:
        return False
    if cond.codes is not None and not cond.codes.matches(code):
        return False
    if cond.path is None:
        return True
    value = _read(cond.path, body)
    if cond.exists is not None:
        return (value is not MISSING and value is not None) == cond.exists
    return cond.values is not None and cond.values.matches(code_text(value))


def fault_is_transient(
    rules: ReplyRules | None, code: str, subcodes: tuple[str, ...]
) -> bool | None:
    """Whether a SOAP fault is transient by the ``faults:`` patterns; None if none matches.

    The fault code and its subcodes are matched as written, without their namespace prefix
    (``soap11env:Client.SchemaValidationError`` → ``Client.SchemaValidationError``)."""
    faults = rules.faults if rules is not None else None
    if faults is None:
        return None
    names = [name.rpartition(":")[2] for name in (code, *subcodes) if name]
    for transient, patterns in ((False, faults.permanent), (True, faults.transient)):
        if any(p.search(name) for p in patterns for name in names):
            return transient
    return None


def rule_refusal(
    verdict: Verdict,
    *,
    partner: str,
    operation: str,
    transcript: Transcript,
    status: int,
    retry_after: float | None = None,
) -> AdapterError:
    """The error for a verdict that is no yes: transient (retried), permanent, or unrecognised."""
    said = _said(verdict)
    common: dict[str, Any] = {
        "partner": partner,
        "operation": operation,
        "transcript": transcript,
        "status": status,
        "partner_code": verdict.code,
        "partner_message": verdict.message,
    }
    if verdict.kind == "transient":
        return TransientError(
            f"{partner} answered{said}; its reply rules call it transient ({verdict.why})",
            retry_after=retry_after,
            **common,
        )
    if verdict.kind == "permanent":
        return PermanentError(f"{partner} refused the request{said} ({verdict.why})", **common)
    return UnrecognisedReply(
        f"{partner} answered HTTP {status}{said}, which its reply rules recognise as neither yes "
        f"nor no ({verdict.why}): whether it took the request is unknown; see the reply in the "
        "attempt, then replay it or settle it with the partner",
        **common,
    )


def _said(verdict: Verdict) -> str:
    """The partner's code, for the message; its message stays apart (``partner_message``)."""
    return "" if verdict.code is None else f" with code {verdict.code}"


def _unmet(cond: Condition, rules: ReplyRules, code: str | None) -> str:
    """Which success condition failed, for the error message."""
    if cond.codes is not None:
        success = ", ".join(cond.codes.shown)
        if code is None:
            return f"no code at {rules.code_text!r} (success is {success})"
        return f"code {code} at {rules.code_text!r} is no success code ({success})"
    if cond.path is not None:
        want = "" if cond.exists else "no "
        if cond.exists is None:
            return f"{cond.path_text} is not one of the success values"
        return f"success needs {want}value at {cond.path_text}"
    return "the HTTP status is not a success status"


# A partner's rules name a few paths: each one's accessor is made once, not per reply.
_getter = functools.cache(getter)


def _read(path: tuple[Segment, ...] | None, body: Any) -> Any:
    return MISSING if path is None else _getter(path)(body)


def _message(rules: ReplyRules, body: Any) -> str | None:
    value = _read(rules.message, body)
    text = code_text(value) if not isinstance(value, bool) else None
    return " ".join(text.split())[:MESSAGE_LIMIT] if text else None
