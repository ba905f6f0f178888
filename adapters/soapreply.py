"""What a SOAP reply means: delivered, a fault (permanent or transient), or an HTTP error.

Read bounded first (:func:`read_bounded`), then classified whole (:func:`classify`); see
:mod:`adapters.soap` for the rules and why an untrustworthy 2xx reply is an unknown outcome.
"""

from __future__ import annotations

from typing import Any

from adapters import xmlsafe
from adapters.base import Reply
from adapters.body import BodyInvalid
from adapters.envelope import Fault, NotSoap, Opened, find_fault, open_envelope
from adapters.wsdl import Operation
from federation.domain.errors import PermanentError, Transcript, TransientError, UnknownOutcomeError

TRANSIENT_STATUS = frozenset({408, 425, 429})
TRANSIENT_FAULTS = frozenset({"Server", "Receiver"})


def classify(
    pid: str,
    op: Operation,
    sent: dict[str, Any],
    got: dict[str, Any],
    raw: bytes,
    status: int,
    retry_after: float | None,
) -> Reply:
    """Classify a reply that arrived whole: fault, delivered, or an HTTP error."""
    refused: str | None = None
    attack = False  # refused for what the XML tried, not merely for being something else
    opened: Opened | None = None
    fault: Fault | None = None
    if raw.strip():
        try:
            opened = open_envelope(xmlsafe.parse(raw, xmlsafe.REPLY_LIMITS))
            fault = find_fault(opened.version, opened.first)
        except xmlsafe.XmlRefused as exc:
            refused = f"refused by the XML parser ({exc.kind}): {exc}"
            attack = exc.kind != "malformed"
        except NotSoap as exc:
            refused = str(exc)
    if fault is not None:
        got["fault"] = {
            "code": fault.written or fault.code,
            "subcodes": list(fault.subcodes),
            "reason": fault.reason,
            "detail": fault.detail,
        }
        transcript = Transcript(request=sent, response=got)
        shown = fault.written or fault.code
        subs = f" ({', '.join(fault.subcodes)})" if fault.subcodes else ""
        what = f"SOAP fault {shown}{subs}: {fault.reason or '(no reason given)'}"
        if fault.code in TRANSIENT_FAULTS:
            raise TransientError(
                f"{pid} answered with {what}",
                partner=pid,
                operation=op.name,
                transcript=transcript,
                status=status,
                retry_after=retry_after,
            )
        raise PermanentError(
            f"{pid} refused the request with {what}",
            partner=pid,
            operation=op.name,
            transcript=transcript,
            status=status,
        )
    transcript = Transcript(request=sent, response=got)
    if 200 <= status < 300:
        if refused is not None:
            raise UnknownOutcomeError(
                f"{pid} answered HTTP {status} but the reply cannot be trusted: {refused}; "
                "it may have processed the request",
                partner=pid,
                operation=op.name,
                transcript=transcript,
                status=status,
            )
        if opened is None or op.output is None:
            problem = None if op.output is None else f"HTTP {status} without a SOAP reply"
            return Reply(status=status, body=None, transcript=transcript, problem=problem)
        try:
            body = op.output.read(opened.body, opened.first)
            return Reply(status=status, body=body, transcript=transcript)
        except BodyInvalid as exc:
            problem = f"the reply does not match the WSDL output of {op.name}: {exc}"
            return Reply(status=status, body=None, transcript=transcript, problem=problem)
    hint = f" ({refused})" if attack else _summary(raw)
    if status >= 500 or status in TRANSIENT_STATUS:
        raise TransientError(
            f"{pid} answered HTTP {status}{hint}",
            partner=pid,
            operation=op.name,
            transcript=transcript,
            status=status,
            retry_after=retry_after,
        )
    raise PermanentError(
        f"{pid} refused the request with HTTP {status}{hint}",
        partner=pid,
        operation=op.name,
        transcript=transcript,
        status=status,
    )


def _summary(raw: bytes) -> str:
    text = " ".join(raw[:300].decode("utf-8", errors="replace").split())
    return f": {text[:200]}" if text else ""
