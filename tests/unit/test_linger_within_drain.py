"""A stop's linger for idle keep-alive connections is part of the drain: at most a quarter of
``--drain-timeout``, so a short drain (the CLI takes one second and up) still has its time for
the attempts in flight, the leases and the journal instead of overrunning (exit 70) whenever a
load balancer or a scraper holds an idle connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from federation.api import server


@pytest.mark.parametrize(("drain", "linger"), [(30.0, 5.0), (20.0, 5.0), (3.0, 0.75), (1.0, 0.25)])
def test_the_linger_is_a_share_of_the_drain(drain: float, linger: float) -> None:
    assert server.linger_for(drain) == linger


class Started(Exception):
    """Raised by the stand-in broker once serve_forever has asked for it."""


async def test_serve_forever_lingers_within_its_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def running_broker(**kwargs: Any) -> AsyncIterator[None]:
        asked.update(kwargs)
        raise Started
        yield  # pragma: no cover (a generator: what makes it a context manager)

    monkeypatch.setattr(server, "running_broker", running_broker)
    with pytest.raises(Started):
        await server.serve_forever(drain=3.0)
    assert asked["linger"] == 0.75
