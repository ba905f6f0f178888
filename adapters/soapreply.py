"""What a SOAP reply means: delivered, a fault (permanent or transient), or an HTTP error.

Read bounded first (:func:`read_bounded`), then classified whole (:func:`classify`); see
:mod:`adapters.soap` for the rules and why an untrustworthy 2xx reply, or one without the
operation's answer (:func:`unanswered`), is an unknown outcome. A
partner's reply rules (``reply:``, :mod:`adapters.replies`) judge a 2xx reply's output values (a
business code in the body) and, with ``faults:``, which fault codes are permanent or transient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lxml import etree  # type: ignore[import-untyped]

from adapters import xmlsafe
from adapters.base import Reply
from adapters.body import BodyInvalid
from adapters.envelope import Fault, NotSoap, Opened, SeveralBodies, find_fault, open_envelope
from adapters.httpio import refusal, status_refusal
from adapters.replies import fault_is_transient, judge, rule_refusal
from adapters.wsdl import Operation
from federation.config.replies import ReplyRules
from federation.domain.errors import (
    PermanentError,
    Transcript,
    TransientError,
    UnknownOutcomeError,
    UnrecognisedReply,
)

TRANSIENT_STATUS = frozenset({408, 425, 429})
TRANSIENT_FAULTS = frozenset({"Server", "Receiver"})


class Reading(NamedTuple):
    """A reply body as read: the envelope and its fault, or why it could not be trusted.

    A NamedTuple, not a frozen dataclass: made once per reply, in half the time (0.28 against
    0.56 us), and as immutable."""

    opened: Opened | None = None
    fault: Fault | None = None
    refused: str | None = None  # why the body is not a SOAP envelope we can read
    attack: bool = False  # refused for what the XML tried, not merely for being something else
    several: str | None = None  # an Envelope with more than one Body: never a yes (crowded)


def classify(
    pid: str,
    op: Operation,
    sent: dict[str, Any],
    got: dict[str, Any],
    raw: bytes,
    status: int,
    retry_after: float | None,
    rules: ReplyRules | None = None,
) -> Reply:
    """Classify a reply that arrived whole: fault, delivered, or an HTTP error.

    In steps: read the envelope (:func:`read_envelope`); a Body holding more than one element
    is never a yes (:func:`crowded`); a fault decides alone
    (:func:`fault_refusal`, with the rules' ``faults:``); else the HTTP status
    (:func:`transient_status`), then a success's body (:func:`read_body`), which the partner's
    reply rules, if any, must call a success.
    """
    reading = read_envelope(raw)
    several = reading.several or crowded(reading, op)
    if several is not None:
        transcript = Transcript(request=sent, response=got)
        raise crowded_refusal(several, pid, op, transcript, status, retry_after)
    if reading.fault is not None:
        raise fault_refusal(pid, op, reading.fault, sent, got, status, retry_after, rules)
    transcript = Transcript(request=sent, response=got)
    if 200 <= status < 300:
        reply = read_body(pid, op, reading, status, transcript)
        if rules is None:
            missing = unanswered(op, reading)
            if missing is not None:
                raise UnknownOutcomeError(
                    f"{pid} answered HTTP {status} with {missing}, not the answer of {op.name}; "
                    "it may have processed the request",
                    partner=pid,
                    operation=op.name,
                    transcript=transcript,
                    status=status,
                )
            return reply
        verdict = judge(rules, status=status, body=reply.body)
        if verdict is not None and verdict.kind != "success":
            raise rule_refusal(
                verdict, partner=pid, operation=op.name, transcript=transcript, status=status
            )
        return reply
    raise status_refusal(
        transient=transient_status(status),
        said=None if reading.attack else _summary(raw),
        note=f" ({reading.refused})" if reading.attack else "",
        partner=pid,
        operation=op.name,
        transcript=transcript,
        status=status,
        retry_after=retry_after,
    )


def read_envelope(raw: bytes) -> Reading:
    """The reply's SOAP envelope and fault, if the body is one (an empty body is no envelope)."""
    if not raw or raw.isspace():  # as ``not raw.strip()``, without copying the body
        return Reading()
    try:
        opened = open_envelope(xmlsafe.parse(raw, xmlsafe.REPLY_LIMITS))
        return Reading(opened=opened, fault=find_fault(opened.version, opened.first))
    except xmlsafe.XmlRefused as exc:
        return Reading(
            refused=f"refused by the XML parser ({exc.kind}): {exc}",
            attack=exc.kind != "malformed",
        )
    except SeveralBodies as exc:
        return Reading(refused=str(exc), several="more than one Body in the SOAP Envelope")
    except NotSoap as exc:
        return Reading(refused=str(exc))


def crowded(reading: Reading, op: Operation) -> str | None:
    """What a Body holding more than the reply's answer holds, or None.

    A Fault stands alone in a Body (SOAP 1.2 puts nothing beside it; beside an answer it says yes
    and no at once, whichever comes first). An output of one element (document/literal with one
    part: WS-I Basic Profile R2201) is that element alone: a second answer beside it is not the
    partner's one yes. An output of several parts, or an rpc one (multiRef siblings), holds
    several elements side by side: zeep reads them."""
    opened = reading.opened
    if opened is None or len(opened.body) < 2:  # comments and PIs were dropped by the parser
        return None
    fault = opened.version.fault
    if not any(el.tag == fault for el in opened.body) and not (
        op.output is not None and op.output.tag
    ):
        return None  # the parts of a multi-part or rpc output
    names = [etree.QName(el).localname for el in opened.body[:3]]
    more = ", …" if len(opened.body) > 3 else ""
    return f"{len(opened.body)} elements in the SOAP Body ({', '.join(names)}{more})"


def crowded_refusal(
    several: str,
    pid: str,
    op: Operation,
    transcript: Transcript,
    status: int,
    retry_after: float | None,
) -> UnrecognisedReply | TransientError | PermanentError:
    """The error for a reply whose Body holds more than one element (:func:`crowded`). With a
    success status: never a yes, and not retried by itself (the partner would answer the same),
    as a REST reply naming a key twice; the attempt's outcome unknown. With any other status,
    the status decides, as for a body that is no SOAP envelope."""
    if 200 <= status < 300:
        return UnrecognisedReply(
            f"{pid} answered HTTP {status} with {several}, where one answer or one Fault belongs: "
            "whether it took the request is unknown; see the reply in the attempt, then replay "
            "it or settle it with the partner",
            partner=pid,
            operation=op.name,
            transcript=transcript,
            status=status,
        )
    return status_refusal(
        transient=transient_status(status),
        said=None,
        note=f" with {several}",
        partner=pid,
        operation=op.name,
        transcript=transcript,
        status=status,
        retry_after=retry_after,
    )


def fault_refusal(
    pid: str,
    op: Operation,
    fault: Fault,
    sent: dict[str, Any],
    got: dict[str, Any],
    status: int,
    retry_after: float | None,
    rules: ReplyRules | None = None,
) -> TransientError | PermanentError:
    """The error for a SOAP fault, whatever the HTTP status: the rules' ``faults:`` patterns
    decide first; else Server/Receiver faults are transient and all others permanent."""
    got["fault"] = {
        "code": fault.written or fault.code,
        "subcodes": list(fault.subcodes),
        "reason": fault.reason,
        "detail": fault.detail,
    }
    shown = fault.written or fault.code
    subs = f" ({', '.join(fault.subcodes)})" if fault.subcodes else ""
    # the reason is the partner's words (partner_message), never folded into ours
    what = f"SOAP fault {shown}{subs}" + ("" if fault.reason else ": (no reason given)")
    by_rules = fault_is_transient(rules, fault.written or fault.code, fault.subcodes)
    transient = fault.code in TRANSIENT_FAULTS if by_rules is None else by_rules
    return refusal(
        transient=transient,
        message=f"{pid} answered with {what}"
        if transient
        else f"{pid} refused the request with {what}",
        partner=pid,
        operation=op.name,
        transcript=Transcript(request=sent, response=got),
        status=status,
        retry_after=retry_after,
        partner_code=shown,
        partner_message=fault.reason or None,
    )


def transient_status(status: int) -> bool:
    """Whether an HTTP error without a SOAP fault is worth retrying (408, 425, 429, any 5xx)."""
    return status >= 500 or status in TRANSIENT_STATUS


def read_body(
    pid: str, op: Operation, reading: Reading, status: int, transcript: Transcript
) -> Reply:
    """A 2xx reply's output values; a body that cannot be trusted is an unknown outcome."""
    if reading.refused is not None:
        raise UnknownOutcomeError(
            f"{pid} answered HTTP {status} but the reply cannot be trusted: {reading.refused}; "
            "it may have processed the request",
            partner=pid,
            operation=op.name,
            transcript=transcript,
            status=status,
        )
    opened = reading.opened
    if opened is None or op.output is None:
        problem = None if op.output is None else f"HTTP {status} without a SOAP reply"
        return Reply(status=status, body=None, transcript=transcript, problem=problem)
    try:
        body = op.output.read(opened.body, opened.first)
        return Reply(status=status, body=body, transcript=transcript)
    except BodyInvalid as exc:
        problem = f"the reply does not match the WSDL output of {op.name}: {exc}"
        return Reply(status=status, body=None, transcript=transcript, problem=problem)


def unanswered(op: Operation, reading: Reading) -> str | None:
    """What a readable 2xx reply holds instead of the operation's answer; None if it holds it.

    The answer is a SOAP envelope of the port's version whose Body starts with the operation's
    output element (an operation without output is answered by any 2xx). Whether that element's
    content matches the WSDL is :func:`read_body`'s question: a mismatch there is still the
    partner's answer, kept as a receipt problem.
    """
    if op.output is None:
        return None
    opened = reading.opened
    if opened is None:
        return "an empty body"
    if opened.version is not op.version:
        return f"a SOAP {opened.version.name} envelope on a SOAP {op.version.name} port"
    expected = op.output.tag
    first = opened.first
    if first is None:
        return "an empty SOAP Body"
    if expected and first.tag != expected:
        return f"{etree.QName(first).localname} in the SOAP Body"
    return None


def _summary(raw: bytes) -> str | None:
    """The start of a reply body that is no SOAP fault, on one line: the partner's words."""
    text = " ".join(raw[:300].decode("utf-8", errors="replace").split())
    return text[:200] or None
