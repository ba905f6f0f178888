"""Checks at the door: the local application format (JSON Schema) and the validate-only intake.

A non-conforming application is refused with 422 problem details whose ``errors`` point at each
field with a JSON Pointer into the request body. ``?dry_run=true`` (on ``POST /v1/exchanges`` and
on a partner's ``POST /v1/partners/{partner}/applications``) answers with the mapped request, or with
every error of the format and of the mapping at once; it journals nothing and sends nothing (the
query itself is read by :mod:`federation.api.intent`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation import contracts
from federation.api.problems import ProblemError, problem_response
from federation.domain.models import canonical_json
from federation.runtime.catalogue import Catalogue
from federation.runtime.mapping import MappingFailed, map_application


def format_errors(
    application: Any, prefix: tuple[str, ...] = ("application",)
) -> list[dict[str, Any]]:
    """Every way ``application`` breaks the local application format, each with a JSON Pointer
    (into the request body: under ``prefix``) and the dotted path a mapping would name."""
    validator = contracts.application_validator()
    errors = sorted(validator.iter_errors(application), key=lambda e: list(map(str, e.path)))
    out = []
    for err in errors:
        where = [*prefix, *err.absolute_path]
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = _missing_property(err.message)
            if missing is not None:
                where.append(missing)
        out.append(
            {
                "pointer": contracts.pointer(where),
                "path": ".".join(str(p) for p in where[len(prefix) :]),
                "message": _message(str(err.validator), err.validator_value),
            }
        )
    return out


def _missing_property(message: str) -> str | None:
    # jsonschema words it "'currency' is a required property"
    head, _, rest = message.partition(" is a required property")
    return head.strip("'") if rest == "" and head.startswith("'") else None


def _message(validator: str, expected: Any) -> str:
    """What the field must be, in the schema's words; never the value sent (it may be personal)."""
    if validator == "required":
        return "required"
    if validator == "enum":
        return f"must be one of {', '.join(map(str, expected))}"
    if validator == "const":
        return f"must be {expected!r}"
    if validator == "pattern":
        return f"must match {expected}"
    if validator == "type":
        return f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}"
    if validator in ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"):
        return f"{validator} is {expected}"
    return f"does not satisfy {validator}"


def conform(application: Any) -> None:
    """Refuse (422 ``invalid-application``) an application that breaks the local format."""
    errors = format_errors(application)
    if errors:
        raise invalid(errors)


def invalid(errors: list[dict[str, Any]]) -> ProblemError:
    """The 422 answer to an application that breaks the local application format."""
    shown = "; ".join(f"{e['pointer']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return ProblemError(
        422,
        "invalid-application",
        f"{len(errors)} field(s) break the local application format: {shown}{more}",
        errors=errors,
    )


def answer(
    catalogue: Catalogue,
    partner: str,
    service: str,
    application: Mapping[str, Any],
    *,
    errors: list[dict[str, Any]] | None = None,
) -> web.Response:
    """The dry run's answer: 200 with the request the mapping makes, or 422 with every error
    (``errors`` found before, then the mapping's own, each with a pointer where it has a path)."""
    found = list(errors or [])
    mapped = map_application(catalogue, partner, service, application)
    if isinstance(mapped, MappingFailed):
        for p in mapped.problems:
            entry = p.to_dict()
            if p.path and mapped.kind == "mapping":
                entry["pointer"] = contracts.pointer(["application", *_segments(p.path)])
            found.append(entry)
    if found:
        kind = "invalid-application" if not isinstance(mapped, MappingFailed) else "mapping-failed"
        return problem_response(
            422,
            kind,
            f"{len(found)} error(s); dry run: nothing was journalled or sent",
            errors=found,
            dry_run=True,
        )
    assert not isinstance(mapped, MappingFailed)
    body = {
        "dry_run": True,
        "mapped": mapped.request,
        "warnings": [w.to_dict() for w in mapped.warnings],
        "versions": mapped.versions,
    }
    return web.Response(body=canonical_json(body), content_type="application/json")


def _segments(path: str) -> list[str]:
    """``household.members[1].birth_date`` → ``["household", "members", "1", "birth_date"]``."""
    return [part for part in re.split(r"[.\[\]]+", path) if part]
