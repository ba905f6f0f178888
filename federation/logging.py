"""structlog, configured in one place: JSON lines when not on a terminal, and no personal data.

Events are snake_case verbs (``exchange_delivered``) bound with exchange_id, partner, service and
attempt. Applications are never logged; as a second line of defence :func:`redact` masks values under
personal-data keys and anything shaped like an ID number, HKID, permit, phone or bank account number
in any string, including rendered tracebacks.

Libraries log through the standard library, where nothing redacts. zeep's reader logs a reply
value it cannot convert with the exception that quotes it (``invalid literal for int() with base
10: '…'``), and with no handler configured Python's last-resort handler prints that to stderr, the
log. :func:`configure` contains such libraries (:data:`CONTAINED`): their records never propagate,
never reach a handler that formats them, and warnings and errors become one event,
``library_log_withheld``, naming the logger, the level and the exception's type only.

:func:`get_logger` returns structlog's lazy proxy: the configuration is read each time it logs, not
when it is made, so a module-level ``_log = get_logger(...)`` created at import, before
:func:`configure` runs, still logs through redaction, JSON and the level chosen at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from typing import TextIO

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

PERSONAL_KEYS = re.compile(
    r"(^|_)(name|names|id_?number|idno|hkid|bir|permit|passport|phone|mobile|tel|email|address|"
    r"birth|dob|applicant|application|payload|mapped|body|bank|account|card|iban)($|_)",
    re.IGNORECASE,
)
_PATTERNS = (
    r"\b\d{17}[\dXx]\b",  # mainland ID / residence permit
    r"\b[HM]\d{8}(?:\d{2})?\b",  # 回鄉證; before HKID: H1234567 would otherwise match as one
    r"\b[157]\d{6}\(\d\)",  # Macau BIR
    r"\b[A-Z]{1,2}\d{6}\s?\(?[\dA]\)?",  # HKID with or without brackets
    r"\b\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?\b",  # bank card in groups of four
    r"\b\d{3}-\d{3,6}-\d{3,9}(?:-\d{1,3})?\b",  # HK / Macau bank account (bank-branch-account)
    r"\b\d{12,19}\b",  # any other long run of digits: a card or account number
    r"\+?\b(?:86[\s-]?)?1\d{2}[\s-]\d{4}[\s-]\d{4}\b",  # mainland mobile as 138 0013 8000
    r"\+?\b(?:852|853)[\s-]?\d{4}[\s-]?\d{4}\b",  # HK / Macau number with code, 9123 4567
    r"\b[569]\d{3}[\s-]\d{4}\b",  # HK / Macau mobile without code, 9123 4567
    r"\+?\b(?:(?:86|852|853)[\s-]?)?1?\d{7,10}\b",  # a separator only after a country code
)
PERSONAL_PATTERNS = re.compile("|".join(_PATTERNS))
MASK = "‹redacted›"
# Ours, from the configuration and the journal, never the applicant's: a mainland service code
# (115101000000000000-HF-WITHDRAW) looks like an ID number but must stay readable.
_ROUTING_KEYS = frozenset({"exchange_id", "partner", "service"})
# component names the module (get_logger(component=…)), route a route template of our router
# (/v1/exchanges/{id}, never a path): both ours, and on every access log line, so not scanned.
_KEPT_KEYS = _ROUTING_KEYS | {"level", "timestamp", "logger", "component", "route"}


def _scrub(key: str, value: object) -> object:
    """``value`` with personal data masked: whole under a personal key, else string by string."""
    if PERSONAL_KEYS.search(key):
        return MASK
    if isinstance(value, str):
        return PERSONAL_PATTERNS.sub(MASK, value)
    if isinstance(value, dict):
        return {k: _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub("", v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: mask personal data in values (tracebacks included) before rendering."""
    for key, value in list(event.items()):
        if key in _KEPT_KEYS:
            continue
        if key == "event":  # never masked by its key; a number in it is masked all the same
            event[key] = PERSONAL_PATTERNS.sub(MASK, value) if isinstance(value, str) else value
        else:
            event[key] = _scrub(key, value)
    return event


def processors() -> list[Processor]:
    """The chain up to the renderer: stacks and exceptions become plain text (no locals) first,
    so that :func:`redact` sees everything that will be written."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,  # the standard library's traceback: no locals
        redact,  # last before rendering: after every processor that turns objects into text
    ]


# Loggers of libraries that may put the data they were given in a record's message or exception.
CONTAINED = ("zeep",)


class _Withheld(logging.Handler):
    """A contained library's warning or error as ``library_log_withheld``: which logger, its
    level and the exception's type; the record's message, arguments and exception text are never
    formatted (they may quote a reply's values)."""

    def emit(self, record: logging.LogRecord) -> None:
        exc_type = record.exc_info[0] if record.exc_info else None
        get_logger(component="library").warning(
            "library_log_withheld",
            source=record.name,
            library_level=record.levelname.lower(),
            error_type=exc_type.__name__ if exc_type is not None else None,
        )


_WITHHELD = _Withheld(logging.WARNING)


def contain_libraries() -> None:
    """Route the :data:`CONTAINED` libraries' records to :class:`_Withheld` alone: no
    propagation to the root logger (or Python's last-resort handler), debug and info dropped."""
    for name in CONTAINED:
        library = logging.getLogger(name)
        library.handlers[:] = [_WITHHELD]
        library.propagate = False
        library.setLevel(logging.WARNING)


def configure(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Set up structlog for the process (call once, at start-up; loggers made earlier follow),
    and contain the libraries that log through the standard library."""
    contain_libraries()
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if as_json
        # plain_traceback: the default (rich) one would print every frame's local variables
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*processors(), renderer],
        wrapper_class=_filtering(level),
        # WriteLogger: each line and its newline in one write. print() writes them apart, and the
        # workers of `serve --workers N` share one stderr: their lines ran into each other.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def _json(event: object, **_: object) -> str:
    """One log line's JSON, by orjson (faster than the standard library's json); what
    it cannot write is written as its ``str``, as structlog's own renderer does with ``repr``."""
    return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def get_logger(**bound: object) -> FilteringBoundLogger:
    """A logger with ``bound`` context that reads the configuration when it logs (lazy), so it
    may be made at import time. ``.bind()`` on it makes a logger of the configuration then."""
    logger: FilteringBoundLogger = structlog.get_logger("tongban", **bound)
    return logger


def bare_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and the errors it came from, by frame and type only: the message
    of an unexpected error may quote the data that caused it (``int('陳大文')``), which no pattern
    of :func:`redact` can recognise. Log it as ``exception=`` (where renderers put tracebacks)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        cause = current.__cause__
        current = (
            cause if cause is not None or current.__suppress_context__ else current.__context__
        )
    parts = [
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(e.__traceback__))
        + f"{type(e).__module__}.{type(e).__qualname__}: (message withheld)\n"
        for e in reversed(chain)
    ]
    return (
        "\nThe above exception was the cause of (or raised while handling) the following:\n\n".join(
            parts
        )
    )


@contextlib.contextmanager
def capture_logs(level: str = "debug") -> Iterator[list[EventDict]]:
    """For tests: collect the events logged in the block as the renderer would get them (after
    redaction), instead of writing them; the configuration in force before is restored after."""
    captured = structlog.testing.LogCapture()
    before = structlog.get_config()
    structlog.configure(
        processors=[*processors(), captured],
        wrapper_class=_filtering(level),
        cache_logger_on_first_use=False,
    )
    try:
        yield captured.entries
    finally:
        structlog.configure(**before)


def _filtering(level: str) -> type[FilteringBoundLogger]:
    return structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()])
