"""structlog, configured in one place: JSON lines when not on a terminal, and no personal data.

Events are snake_case verbs (``exchange_delivered``) bound with exchange_id, partner, service and
attempt. Applications are never logged; as a second line of defence :func:`redact` masks values under
personal-data keys and anything shaped like an ID number, HKID, permit or phone number in any string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

PERSONAL_KEYS = re.compile(
    r"(^|_)(name|names|id_?number|idno|hkid|bir|permit|passport|phone|mobile|tel|email|address|"
    r"birth|dob|applicant|application|payload|mapped|body)($|_)",
    re.IGNORECASE,
)
# Mainland ID / residence permit, HKID with or without brackets, Macau BIR, 回鄉證, phone numbers.
PERSONAL_PATTERNS = re.compile(
    r"\b\d{17}[\dXx]\b"
    r"|\b[HM]\d{8}(?:\d{2})?\b"  # before HKID: H1234567 would otherwise match as an HKID
    r"|\b[157]\d{6}\(\d\)"
    r"|\b[A-Z]{1,2}\d{6}\s?\(?[\dA]\)?"
    r"|\+?\b(?:(?:86|852|853)[\s-]?)?1?\d{7,10}\b"  # a separator only after a country code
)
MASK = "‹redacted›"


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in values before anything is rendered."""
    for key, value in list(event.items()):
        if key in ("event", "level", "timestamp", "logger"):
            continue
        if PERSONAL_KEYS.search(key) and key not in ("exchange_id", "partner", "service"):
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = PERSONAL_PATTERNS.sub(MASK, value)
    return event


def configure(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Set up structlog for the process (call once, at start-up)."""
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context."""
    return structlog.get_logger("tongban").bind(**bound)
