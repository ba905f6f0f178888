"""Starting aiohttp servers on a given or free loopback port, knowing the bound URL."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from federation.api.edge import REFUSED, bounded, without_server
from federation.api.problems import problem_response
from federation.api.unparsed import (
    SLUGS,
    WINDOW_KEPT,
    EdgeRefusals,
    failing_head,
    request_line,
    unparsed_detail,
    unparsed_refusal,
    unparsed_status,
)

# aiohttp answers requests it cannot parse itself, before any route or middleware: as problem
# details here, by status (a request line too long is aiohttp's 400; a header line too long, or
# too many headers, after a whole request line is 431: federation.api.unparsed), and journalled.
LIMITS = ("max_line_size", "max_field_size", "max_headers")  # the server's, for its parser


class EdgeRequestHandler(RequestHandler):
    """aiohttp's connection handler, whose own error answers are problem details, unbannered,
    and kept in the journal's refusals (by ``refusals``, when the server was given one).

    To name the request the parser refuses (its method and path, never more), the connection
    keeps the bytes read from the first of a request it has not read whole (WINDOW_KEPT at
    most), never a body being read by its Content-Length: the window begins anew where such a
    body ends (by its length, in the read that ends it), or once a read ends with a request
    read whole. A chunked body's reads are held (no copy) within WINDOW_KEPT, for the parser
    that reads the window again to find where the body ends. Where the window's start cannot
    be told, it is ``_lost`` until it begins anew, and a refusal meanwhile names nothing."""

    refusals: EdgeRefusals | None = None
    limits: Mapping[str, int] = MappingProxyType({})  # the parser's limits, as the server's
    _window = b""
    _cut = False  # the window lost bytes past WINDOW_KEPT
    _lost = False  # where the window begins is not known: nothing kept, a refusal names nothing
    _body: StreamReader | None = None  # the body still to come of the last request read
    _length = -1  # that body's Content-Length; -1 for a chunked one
    _held: list[bytes]  # the reads of a chunked body, after the window (set with the body)
    _held_size = 0  # the window's bytes and those held
    _refused = b""  # the start of the request the parser refused

    def data_received(self, data: bytes) -> None:
        count, chunked = self._request_count, self._body is not None and self._length < 0
        after = self._before(data)
        super().data_received(data)
        if chunked and self._body is not None and self._body.is_eof():
            after = self._chunked_read(data, count)
        if self._request_count > count:
            self._read(after, list(self._messages)[count - self._request_count :])

    def _before(self, data: bytes) -> bytes:
        """Before the parser reads ``data``: the bytes of it that may begin requests (kept in
        the window); none while a body is read, those past its end in the read that ends it."""
        body = self._body
        if body is None:
            if not self._lost:
                kept = self._window + data
                self._window, self._cut = kept[:WINDOW_KEPT], self._cut or len(kept) > WINDOW_KEPT
            return data
        if self._length < 0:  # chunked: the parser tells where it ends
            if self._held_size < WINDOW_KEPT and not self._lost:
                self._held.append(data)
                self._held_size += len(data)
            elif data:
                self._cut = True
            return data
        rest = self._length - body.total_bytes
        if rest > len(data):
            return b""
        # rest 0: its last bytes were read before but the parser, paused, holds what followed
        after = data[rest:] if rest > 0 else b""
        self._body, self._lost = None, rest <= 0
        self._window, self._cut = after[:WINDOW_KEPT], len(after) > WINDOW_KEPT
        return after

    def _chunked_read(self, data: bytes, count: int) -> bytes:
        """The chunked body being read ended in ``data``: the window begins anew when ``data``
        ends with it (nothing read after it, and nothing held back), else it takes the held
        reads, where the body's end is found when a request after it is refused."""
        pieces, size = [self._window, *self._held], self._held_size
        self._body, self._held, self._held_size = None, [], 0
        whole = self._request_count == count and not self._buffer_paused
        if whole and data.endswith((b"\r\n\r\n", b"\n\n")):
            self._window, self._cut, self._lost = b"", False, False
        elif not self._lost:
            self._window = b"".join(pieces)[:WINDOW_KEPT]
            self._cut = self._cut or size > WINDOW_KEPT
        return data

    def _read(self, data: bytes, messages: Sequence[tuple[object, StreamReader]]) -> None:
        """What ``data`` gave: a refusal (the refused request's start kept, as read now), or the
        head of a request whose body is still to come (kept no more), or requests read whole,
        ``data`` ending with the last (the window begins anew)."""
        message, body = messages[-1]
        if not isinstance(message, RawRequestMessage):  # the parser refused a request
            if not self._lost:
                self._refused = self._refused or failing_head(
                    self._window, cut=self._cut, limits=self.limits, loop=self._loop
                )
        elif not body.is_eof():
            length = message.headers.get("Content-Length", "")
            self._body, self._length = body, int(length) if length.isdigit() else -1
            self._held, self._held_size = [], len(self._window)
        else:
            length = message.headers.get("Content-Length", "")
            size = int(length) if length.isdigit() else 0
            ended = size <= len(data) and data[: len(data) - size].endswith((b"\r\n\r\n", b"\n\n"))
            if ended and not self._buffer_paused:  # the parser holds none of it back
                self._window, self._cut, self._lost = b"", False, False

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        default = super().handle_error(request, status, exc, message)  # logs; refuses if sent
        unparsed = isinstance(exc, HttpProcessingError)  # else a handler's failure (500, 504)
        method, path, complete = request_line(self._refused if unparsed else b"")
        status = unparsed_status(status, exc, complete) if unparsed else status
        slug = SLUGS.get(status, "internal-error" if status >= 500 else "bad-request")
        if status == 431:  # aiohttp's message quotes the header line
            detail = unparsed_detail(status, exc)
        else:
            detail = (message or "").splitlines()[0] if status < 500 and message else ""
        detail = detail or default.reason or "the request could not be handled"
        response = problem_response(status, slug, detail)
        response.force_close()
        without_server(response)
        if self.refusals is not None and not request.get(REFUSED):  # one request, one row
            if unparsed:  # the row never keeps aiohttp's message: it quotes the line
                line = (method, path, unparsed_detail(status, exc))
            else:
                line = (request.method, bounded(request.path), detail)
            self._journal(self.refusals, request, status, slug, line)
        return response

    @staticmethod
    def _journal(
        refusals: EdgeRefusals,
        request: BaseRequest,
        status: int,
        slug: str,
        line: tuple[str, str, str],
    ) -> None:
        """Queue the refusal of ``request`` (``line``: its method, path and detail as kept)."""
        method, path, detail = line
        refusals.keep(
            unparsed_refusal(
                remote=request.remote or "",
                method=method,
                path=path,
                status=status,
                slug=slug,
                detail=detail,
            )
        )


class EdgeServer(web.Server):
    """aiohttp's low-level server, making :class:`EdgeRequestHandler` connections."""

    refusals: EdgeRefusals | None = None

    def __call__(self) -> RequestHandler:
        handler = EdgeRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.refusals = self.refusals
        handler.limits = {k: v for k, v in self._kwargs.items() if k in LIMITS}
        return handler


async def start_site(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    edge: bool = False,
    sock: socket.socket | None = None,
    refusals: EdgeRefusals | None = None,
    **runner_kwargs: object,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0 = a free port), over TLS when given a context; returns the
    runner and the base URL. With ``edge``, aiohttp's own error answers are problem details.
    With ``sock``, serve on that bound socket instead (one a parent passed down to its workers).
    With ``edge``, request bodies are also left compressed, for the edge to decompress or refuse,
    and with ``refusals`` too, what aiohttp refuses before the app is journalled through it
    (the caller drains it once the runner is cleaned up)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if sock is None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
    sock.setblocking(False)
    if edge:
        # The edge reads content codings itself (federation.api.coding): aiohttp's own decoding
        # answers some before any route (a bare 400) and reads unknown ones as none.
        runner_kwargs = {**runner_kwargs, "auto_decompress": False}
    runner = web.AppRunner(app, **runner_kwargs)  # type: ignore[arg-type]
    await runner.setup()
    if edge and runner.server is not None:
        # aiohttp builds its Server in the runner with no way to choose the connection class.
        runner.server.__class__ = EdgeServer
        cast(EdgeServer, runner.server).refusals = refusals
    await web.SockSite(runner, sock, backlog=1024, ssl_context=ssl_context).start()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    scheme = "https" if ssl_context is not None else "http"
    return runner, f"{scheme}://{shown}:{bound}"


def server_tls(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS for the broker's port; with ``client_ca``, partners may present client certificates
    (mutual TLS), checked against partners.yaml's ``inbound.client_certs_sha256``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        # Optional: local systems and key-holding partners connect without a certificate.
        context.verify_mode = ssl.CERT_OPTIONAL
    return context
