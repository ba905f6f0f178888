"""The ``report:`` section: our word on what a partner filed, written in the partner's own format.

When an application a partner filed with us moves on (delivered to the local system, then
accepted, 补正, approved, 办结 …), the partner hears it as a *notice*. The ``report:`` section of the
inbound mapping maps one notice document into the body of the partner's notice call (its REST JSON,
or the input of a SOAP operation of its WSDL); partners.yaml's ``report:`` of the service item
says how it travels (config/notices.py). The section reads::

    step          our word: a lifecycle step (submitted, accepted, not_accepted,
                  correction_required, review, approved, refused, completed, served), or how the
                  delivery to the local system ended when it did not arrive (rejected, failed,
                  unconfirmed)
    at            when that was said (ISO 8601, UTC)
    note          the local system's note with the step, if any (what 补正 asks for, a reason)
    case_number   the local case number given with the step, if any
    steps         every step so far: [{state, at, note?}]
    original      exchange_id, idempotency_key (the partner's own key) and receipt (the
                  local system's receipt, e.g. receipt_number)
    application   the application as the partner filed it, in its own format (its reference)

For example (Hong Kong)::

    report:
      reference_no: {from: application.reference_no, required: true}
      notice_type:
        switch: step
        cases: {submitted: RECEIVED, accepted: ACCEPTED, correction_required: SUPPLEMENT_REQUIRED}
        required: true
      remarks: note
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federation.domain.errors import Problem
from federation.mapping.engine import CompiledMapping, Section

# The words a notice may carry in ``step`` besides the lifecycle steps: an application that never
# reached the local system.
UNDELIVERED = ("rejected", "failed", "unconfirmed")


def report_of(mapping: CompiledMapping | None) -> Section | None:
    """The mapping's ``report:`` section, if it has one."""
    return mapping.report if mapping is not None else None


def notice_document(
    *,
    step: str,
    at: str,
    original: Mapping[str, Any],
    application: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]] = (),
    note: str | None = None,
    case_number: str | None = None,
) -> dict[str, Any]:
    """What the ``report:`` section reads (absent values are left out, so ``required`` tells)."""
    doc: dict[str, Any] = {
        "step": step,
        "at": at,
        "steps": [dict(s) for s in steps],
        "original": dict(original),
        "application": dict(application),
    }
    if note is not None:
        doc["note"] = note
    if case_number is not None:
        doc["case_number"] = case_number
    return doc


def map_notice(
    section: Section, document: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """The partner's notice body and the warnings raised; MappingError names every failing field."""
    return section.apply_checked(document)
