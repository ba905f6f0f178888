"""Reading a request body at the edge: a body that has wholly arrived is read without a stall
timer, and keeps every refusal (over the limit, a connection lost)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import streams

from federation.api import edge
from federation.api.problems import ProblemError


class _Protocol:
    _reading_paused = False
    connected = True

    def pause_reading(self, **_: Any) -> None:
        pass

    def resume_reading(self, **_: Any) -> None:
        pass


class _Request:
    def __init__(self, parts: list[bytes], *, length: bool, eof: bool = True) -> None:
        self.content = streams.StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())
        for part in parts:
            self.content.feed_data(part)
        if eof:
            self.content.feed_eof()
        self.content_length = sum(map(len, parts)) if length else None
        self.headers = {"Content-Type": "application/json"}
        self.app: dict[Any, Any] = {}


def _no_timer(_: float) -> Any:
    raise AssertionError("a stall timer was set for a body that had arrived")


async def test_an_arrived_body_is_read_whole_without_a_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sent in three parts and ended: the body comes back whole and no timer is set."""
    monkeypatch.setattr(edge.asyncio, "timeout", _no_timer)
    request = _Request([b'{"a":', b" 1", b"}"], length=True)
    assert await edge.read_body(request, 100) == (b'{"a": 1}', 8)  # type: ignore[arg-type]


async def test_an_arrived_chunked_body_over_the_limit_is_413() -> None:
    """Without a Content-Length, a body over the limit is refused even when it arrived at once."""
    request = _Request([b"x" * 80, b"y" * 80], length=False)
    with pytest.raises(ProblemError) as caught:
        await edge.read_body(request, 100)  # type: ignore[arg-type]
    assert caught.value.status == 413 and caught.value.code == "body-too-large"


async def test_a_connection_lost_after_the_body_is_an_incomplete_body() -> None:
    """A stream that ended with a connection error is refused as incomplete, body kept."""
    request = _Request([b"{}"], length=True)
    request.content.set_exception(ConnectionResetError("gone"))
    with pytest.raises(edge.Refused) as caught:
        await edge.read_body(request, 100)  # type: ignore[arg-type]
    assert caught.value.problem.code == "incomplete-body"


async def test_a_body_still_arriving_is_waited_for_with_the_timer() -> None:
    """A body whose end has not arrived is read through the timed wait, then whole."""
    request = _Request([b'{"a":'], length=False, eof=False)

    async def rest() -> None:
        await asyncio.sleep(0.01)
        request.content.feed_data(b"1}")
        request.content.feed_eof()

    task = asyncio.create_task(rest())
    assert (await edge.read_body(request, 100))[0] == b'{"a":1}'  # type: ignore[arg-type]
    await task
