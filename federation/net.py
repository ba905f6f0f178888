"""Starting aiohttp servers on a given or free loopback port, knowing the bound URL."""

from __future__ import annotations

import socket

from aiohttp import web


async def start_site(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, **runner_kwargs: object
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0 = a free port); returns the runner and the base URL."""
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
    await web.SockSite(runner, sock, backlog=1024).start()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return runner, f"http://{shown}:{bound}"
