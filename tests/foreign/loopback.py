"""Serving a partner written elsewhere on a free loopback port, in a thread of the test process:
the plumbing the spyne services and the X-Road stub share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from socketserver import BaseServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


def wsgi_server(app: Callable[..., Any]) -> WSGIServer:
    """A WSGI server for ``app`` on a free loopback port, not logging requests."""
    return make_server("127.0.0.1", 0, app, handler_class=Quiet)


class Loopback:
    """One server served by a daemon thread until :meth:`stop` (which closes its socket)."""

    def __init__(self) -> None:
        self.server: BaseServer | None = None
        self.thread: threading.Thread | None = None

    def serve(self, server: Any) -> int:
        """Serve ``server`` (bound on loopback) in a thread; its port."""
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return int(server.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
