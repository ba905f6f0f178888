"""structlog, configured in one place: JSON lines when not on a terminal, and no personal data.

Events are snake_case verbs (``exchange_delivered``) bound with exchange_id, partner, service and
attempt. Applications are never logged; as a second line of defence :func:`redact` masks values under
personal-data keys and anything shaped like an ID number, HKID, permit, phone or bank account number
in any string, including rendered tracebacks.

Libraries log through the standard library, where nothing redacts, and their messages quote what
they were given: zeep a reply value it cannot convert (``invalid literal for int() with base 10:
'…'``), aiohttp.server a handler's exception with its traceback, asyncio a task's exception and a
callback with its arguments, aiohttp.access a path with its query. The project itself never logs
through the standard library (:func:`get_logger` writes by structlog alone), so every standard-
library record is a library's, and :func:`configure` makes each one without its data: the record
factory drops the message, arguments, exception and stack when the record is made, so no handler
anywhere (a library's own, a test's, Python's last resort) can write them. A handler on the root
logger turns warnings and errors into one event, ``library_log_withheld``, naming the logger, the
level and the exception's type; debug and info records (aiohttp's access log among them: the
broker writes its own, with route templates) are dropped. Python's last-resort handler is off.
Warnings (``warnings.showwarning``) become the same event with their category; an exception no one
handled, in a thread, a finaliser or the main thread, becomes ``exception_unhandled`` with its
traceback by frame and type; :func:`loop_exception_handler` does the same for the event loop.

:func:`get_logger` returns structlog's lazy proxy: the configuration is read each time it logs, not
when it is made, so a module-level ``_log = get_logger(...)`` created at import, before
:func:`configure` runs, still logs through redaction, JSON and the level chosen at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TextIO

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


# The one message a standard-library record carries once configure() has run (see _withholding).
WITHHELD = "library_log_withheld"


def _withholding(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A log record factory that makes each record through ``make`` without its message, its
    arguments, its exception or its stack: every record a library makes says :data:`WITHHELD`,
    and keeps the exception's type (``withheld_error_type``) so that an operator sees what broke.
    Fields a library passes as ``extra=`` are set after the factory; no handler here writes them."""

    def record(
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: object,
        exc_info: object,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: object,
    ) -> logging.LogRecord:
        made = make(name, level, fn, lno, WITHHELD, (), None, func, None, **kwargs)
        exc_type = exc_info[0] if isinstance(exc_info, tuple) and exc_info else None
        made.withheld_error_type = exc_type.__name__ if isinstance(exc_type, type) else None
        return made

    record.withholds = True  # type: ignore[attr-defined]
    return record


class _Withheld(logging.Handler):
    """On the root logger: a library's warning or error as the event ``library_log_withheld``,
    naming the logger, its level and the exception's type (the record holds nothing more)."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger(component="library").warning(
            WITHHELD,
            source=record.name,
            library_level=record.levelname.lower(),
            error_type=getattr(record, "withheld_error_type", None),
        )

    def handleError(self, record: logging.LogRecord) -> None:
        """A failure to write the event says so on stderr with its type; the standard one would
        print the record's message and arguments."""
        failed = sys.exc_info()[0]
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{WITHHELD} not written: {getattr(failed, '__name__', None)}\n")


_WITHHELD = _Withheld(logging.WARNING)


def contain_libraries() -> None:
    """Make every standard-library record without message, arguments or exception text
    (:func:`_withholding`), send warnings and errors to the broker's log as
    ``library_log_withheld`` (a handler on the root logger), turn Python's last-resort handler
    off, and report unhandled exceptions and warnings without their messages."""
    if not getattr(logging.getLogRecordFactory(), "withholds", False):
        logging.setLogRecordFactory(_withholding(logging.getLogRecordFactory()))
    root = logging.getLogger()
    if _WITHHELD not in root.handlers:
        root.addHandler(_WITHHELD)
    logging.lastResort = None
    _hook_unhandled()


def _hook_unhandled() -> None:
    """Report unhandled exceptions and warnings by :func:`_unhandled` and
    :func:`_warning_withheld`. A thread's, a finaliser's or the process's hook is replaced only
    where it is the interpreter's own: one that someone installed (a debugger, a test runner)
    was put there to see these. Warnings' filters still decide whether a warning shows."""
    if threading.excepthook in (threading.__excepthook__, _thread_failed):
        threading.excepthook = _thread_failed
    if sys.unraisablehook in (sys.__unraisablehook__, _unraisable):
        sys.unraisablehook = _unraisable
    if sys.excepthook in (sys.__excepthook__, _process_failed):
        sys.excepthook = _process_failed
    warnings.showwarning = _warning_withheld


def _unhandled(origin: str, exc: BaseException | None, **context: object) -> None:
    """``exception_unhandled``: where (``origin``), the exception's type and its traceback by
    frame and type (:func:`bare_traceback`), never its message or the objects involved."""
    get_logger(component="runtime").error(
        "exception_unhandled",
        origin=origin,
        error_type=type(exc).__name__ if exc is not None else None,
        exception=bare_traceback(exc) if exc is not None else None,
        **context,
    )


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as the standard hook: a thread's sys.exit() is no error
        return
    _unhandled("thread", args.exc_value, thread=args.thread.name if args.thread else None)


def _unraisable(args: sys.UnraisableHookArgs) -> None:
    _unhandled("unraisable", args.exc_value)  # err_msg and object: free text and a repr


def _process_failed(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _unhandled("main", exc)


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """For ``loop.set_exception_handler``: an error the event loop caught (a task's exception
    never retrieved, an exception in a callback) as ``exception_unhandled`` with its frames and
    the names of the context's parts (``future``, ``handle``…); asyncio's message quotes the
    callback's arguments and the exception's message, and is not written."""
    parts = sorted(set(context) - {"message", "exception"})
    _unhandled("event_loop", context.get("exception"), context=parts)


def _warning_withheld(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """For ``warnings.showwarning``: a warning as ``library_log_withheld`` with its category,
    not its text (which may quote a value) or the source line."""
    get_logger(component="library").warning(
        WITHHELD, source="py.warnings", library_level="warning", error_type=category.__name__
    )


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
    configured, before = structlog.is_configured(), structlog.get_config()
    structlog.configure(
        processors=[*processors(), captured],
        wrapper_class=_filtering(level),
        cache_logger_on_first_use=False,
    )
    try:
        yield captured.entries
    finally:
        if configured:
            structlog.configure(**before)
        else:  # configure() would leave it "configured": a CLI command would then not set it up
            structlog.reset_defaults()


def _filtering(level: str) -> type[FilteringBoundLogger]:
    return structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()])
