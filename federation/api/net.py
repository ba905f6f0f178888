"""Starting aiohttp servers on a given or free loopback port, knowing the bound URL."""

from __future__ import annotations

import socket
import ssl

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from federation.api.edge import without_server
from federation.api.problems import problem_response

# aiohttp answers requests it cannot parse itself, before any route or middleware: as problem
# details here, by status (a request line or header too long is aiohttp's 400, or 431 behind us).
_EDGE_SLUGS = {400: "bad-request", 413: "body-too-large", 431: "headers-too-large"}


class EdgeRequestHandler(RequestHandler):
    """aiohttp's connection handler, whose own error answers are problem details, unbannered."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        default = super().handle_error(request, status, exc, message)  # logs; refuses if sent
        slug = _EDGE_SLUGS.get(status, "internal-error" if status >= 500 else "bad-request")
        detail = (message or "").splitlines()[0] if status < 500 and message else ""
        response = problem_response(
            status, slug, detail or default.reason or "the request could not be handled"
        )
        response.force_close()
        without_server(response)
        return response


class EdgeServer(web.Server):
    """aiohttp's low-level server, making :class:`EdgeRequestHandler` connections."""

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


async def start_site(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    edge: bool = False,
    sock: socket.socket | None = None,
    **runner_kwargs: object,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0 = a free port), over TLS when given a context; returns the
    runner and the base URL. With ``edge``, aiohttp's own error answers are problem details.
    With ``sock``, serve on that bound socket instead (one a parent passed down to its workers).
    With ``edge``, request bodies are also left compressed, for the edge to decompress or refuse."""
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
