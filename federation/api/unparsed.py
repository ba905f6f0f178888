"""Requests the server refuses before any app sees them: a request line or a header aiohttp cannot
parse (400 ``bad-request``), headers past its limits (431 ``headers-too-large``). They are kept in
the journal's refusals like every other refusal, by :class:`EdgeRefusals`.

aiohttp answers them from a synchronous hook (``RequestHandler.handle_error``, see
:mod:`federation.api.net`), outside every app and middleware, so the row is written by a task
the writer owns and drains when the server stops, one row at a time. A flood of garbage must not
grow what waits for the journal without bound: at most :data:`PENDING` refusals wait, and past
that one is dropped, counted, and the count logged (at most every :data:`DROP_LOG_EVERY`
seconds, and at the stop).

What a row keeps: when, the client's address, the status, the problem type, a detail naming the
parser's error type only, and the method and path of the refused request's first line when it
reads as a request line (the path without its query string, bounded as every refusal's): the
refused request, not the connection's first, on a connection kept alive or sent several
requests at once (:func:`failing_head`). Never a header or the body, nor aiohttp's message,
which quotes the line it could not read: headers carry keys and cookies, and both can carry
personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self
from urllib.parse import unquote_to_bytes

from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.http_parser import HttpRequestParser
from aiohttp.streams import StreamReader

from federation.api.budget import RefusalBudget, budget_of
from federation.api.edge import PATH_KEPT, bounded, storable
from federation.logging import get_logger
from replay.journal import Journal, Refusal

_log = get_logger(component="api")

HEAD_KEPT = 2048  # bytes of a refused request's first line read for its method and path
WINDOW_KEPT = 65536  # bytes of requests' heads a connection keeps while it reads them
PENDING = 256  # refusals waiting for the journal; past that, dropped and counted
DRAIN = 2.0  # seconds the stop waits for the waiting refusals to be written
DROP_LOG_EVERY = 10.0  # seconds between two log lines about dropped refusals

_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
SLUGS = {400: "bad-request", 413: "body-too-large", 431: "headers-too-large"}


def request_line(head: bytes) -> tuple[str, str, bool]:
    """The method and path (no query string) of the first line of ``head`` when it reads as a
    request line (a method token, then a path from ``/``), else ``("", "")``; and whether the
    line was complete (a line cut at :data:`HEAD_KEPT` bytes is a request line too long)."""
    line, newline, _ = head.partition(b"\n")
    parts = line.rstrip(b"\r").split(b" ")
    if len(parts) < 2 or not _METHOD.fullmatch(parts[0]) or not parts[1].startswith(b"/"):
        return "", "", bool(newline)
    target = parts[1].split(b"?", 1)[0].split(b"#", 1)[0]
    path = storable(unquote_to_bytes(target).decode("utf-8", "surrogateescape"))
    if not newline and len(parts) == 2 and b"?" not in parts[1]:  # cut: its length not known
        return parts[0].decode("ascii"), f"{path[:PATH_KEPT]}…(cut)", False
    return parts[0].decode("ascii"), bounded(path), bool(newline)


def failing_head(
    window: bytes, *, cut: bool, limits: Mapping[str, int], loop: asyncio.AbstractEventLoop
) -> bytes:
    """The first bytes (:data:`HEAD_KEPT` at most) of the request the parser refused in
    ``window``: a connection's bytes from the first of a request it had not yet read whole,
    perhaps followed by more sent at once (the parser drops the requests it read before one it
    refuses in the same bytes). A fresh parser with the server's ``limits`` reads ``window``
    again, a line at a time, up to the head it refuses; a request begins where the last one's
    body ends (by its Content-Length, or the line where a chunked body ends). Empty when that
    cannot be told: the parser refuses nothing in a ``window`` that was ``cut``."""
    parser = HttpRequestParser(
        BaseProtocol(loop),
        loop,
        2 * WINDOW_KEPT,  # a body's buffer never past it: the reader never asks to pause
        max_line_size=limits.get("max_line_size", 8190),  # aiohttp's server defaults
        max_field_size=limits.get("max_field_size", 8190),
        max_headers=limits.get("max_headers", 128),
        auto_decompress=False,
    )
    start = read = 0
    body: StreamReader | None = None  # a chunked body being read: its end is a line's
    while read < len(window):
        end = window.find(b"\n", read) + 1 or len(window)
        try:
            messages, _, _ = parser.feed_data(window[read:end])
        except HttpProcessingError:
            return _first(window, start)
        read = end
        if body is not None and body.is_eof():
            start, body = read, None
        for message, payload in messages:
            length = message.headers.get("Content-Length", "")
            if payload.is_eof() or length.isdigit():
                start = read + (int(length) if length.isdigit() else 0)
            else:
                body = payload
    return b"" if cut else _first(window, start)


def _first(window: bytes, start: int) -> bytes:
    """The request's first bytes from ``start``, past the empty lines a parser skips there."""
    while window.startswith((b"\r\n", b"\n"), start):
        start += 1 if window[start] == 0x0A else 2
    return window[start : start + HEAD_KEPT]


def unparsed_status(status: int, exc: BaseException | None, line_complete: bool) -> int:
    """The status a request aiohttp could not parse is answered with: 431 for a header line too
    long or too many headers after a whole request line (aiohttp says 400 for both), else
    aiohttp's own."""
    if status != 400 or not line_complete or not isinstance(exc, HttpProcessingError):
        return status
    if isinstance(exc, LineTooLong) or exc.message == "Too many headers received":
        return 431
    return status


def unparsed_detail(status: int, exc: BaseException | None) -> str:
    """The detail kept with such a refusal: the parser's error type, never its message."""
    if status == 431:
        return "a header line is longer, or the headers more, than the limit allows; none are kept"
    return f"the request is not well-formed HTTP ({type(exc).__name__}); nothing of it is kept"


class EdgeRefusals:
    """Writes refusals the server answered outside the app into ``journal``, one at a time, by
    one task started with the first: :meth:`keep` never blocks and never raises; past
    :data:`PENDING` waiting, a refusal is dropped and counted. ``async with`` (or :meth:`close`)
    drains the queue at its end."""

    def __init__(
        self,
        journal: Journal,
        *,
        pending: int = PENDING,
        drain: float = DRAIN,
        budget: RefusalBudget | None = None,
        configure: Callable[[RefusalBudget], None] | None = None,
    ) -> None:
        self._journal = journal
        # shared with the app's refusals; ``configure`` gives it the settings in force (a reload's
        # too) before each refusal, else it keeps those the app's refusals last gave it
        self._budget = budget_of(journal) if budget is None else budget
        self._configure = configure
        self._queue: asyncio.Queue[Refusal] = asyncio.Queue(maxsize=pending)
        self._drain = drain
        self._writer: asyncio.Task[None] | None = None
        self._writing = False
        self._closed = False
        self.dropped = 0  # refusals not journalled for want of room (or cut at the stop)
        self._reported = 0
        self._logged_at = -DROP_LOG_EVERY

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def keep(self, refusal: Refusal) -> None:
        """Queue ``refusal`` for the journal within the refusal budget (past it, counted for its
        address's summary row, which is queued once its window ends: federation/api/budget.py);
        dropped and counted when :data:`PENDING` wait already or the writer has closed."""
        if self._closed:
            self.dropped += 1
            self._report(force=False)
            return
        if self._configure is not None:
            self._configure(self._budget)
        kept = self._budget.admit(refusal)
        for row in ([] if kept is None else [kept]) + self._budget.due():
            self._queued(row)
        self._budget.watch(self._journal)

    def _queued(self, refusal: Refusal) -> None:
        if self._queue.full():
            self.dropped += 1
            self._report(force=False)
            return
        self._queue.put_nowait(refusal)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        _log.info("intake_refused", status=refusal.status, problem=refusal.problem)

    async def _write_all(self) -> None:
        while True:
            refusal = await self._queue.get()
            self._writing = True
            try:
                await self._journal.refuse(refusal)
            except Exception as exc:  # the journal unavailable: logged, never raised into aiohttp
                _log.error(
                    "refusal_not_journalled", error=type(exc).__name__, problem=refusal.problem
                )
            finally:
                self._writing = False
                self._queue.task_done()

    async def close(self) -> None:
        """Take no more; wait up to the drain for the queue to be written, then for the refusal
        budget's summaries (after the rows they follow); then stop the writer and count what it
        had not written; log what was dropped since the last report."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self._drain)
        await self._budget.close(self._journal, self._drain)
        if self._writer is not None:
            self.dropped += self._queue.qsize() + self._writing
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        self._report(force=True)

    def _report(self, *, force: bool) -> None:
        now = time.monotonic()
        if self.dropped == self._reported:
            return
        if force or now - self._logged_at >= DROP_LOG_EVERY:
            _log.warning(
                "edge_refusals_dropped",
                dropped=self.dropped - self._reported,
                total=self.dropped,
                pending_limit=self._queue.maxsize,
            )
            self._reported, self._logged_at = self.dropped, now


def unparsed_refusal(
    *, remote: str, method: str, path: str, status: int, slug: str, detail: str
) -> Refusal:
    """The row of a refusal answered outside the app: no key, no body (nothing was read)."""
    return Refusal(
        at=time.time(),
        remote=storable(remote),
        method=storable(method),
        path=storable(path),
        status=status,
        problem=slug,
        detail=storable(detail),
        idempotency_key=None,
        body=b"",
        body_bytes=0,
    )
