"""Starting aiohttp servers on a given or free loopback port, knowing the bound URL."""

from __future__ import annotations

import socket
import ssl

from aiohttp import web


async def start_site(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    **runner_kwargs: object,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0 = a free port), over TLS when given a context; returns the
    runner and the base URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    runner = web.AppRunner(app, **runner_kwargs)  # type: ignore[arg-type]
    await runner.setup()
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
