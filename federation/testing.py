"""Test helpers shipped with the package, as httpx ships ``MockTransport``.

``InMemoryJournal`` honours the Journal contract without a file (the contract suite proves it the
same as SQLite and PostgreSQL); unit tests of the worker and the intake use it. ``MockAdapter``
stands in for a partner: give it to the broker (``Broker(adapters={"hk": MockAdapter(handler)})``)
and delivery decisions are tested without sockets. ``FakeClock`` is a clock whose sleeps return at
once and move it on, so retries and breakers are tested without waiting.

::

    partner = MockAdapter(sequence(transient(), reply({"ref_no": "R1"})))
    clock = FakeClock()
    broker = Broker(root=root, journal=InMemoryJournal(clock=clock), adapters={"hk": partner},
                    clock=clock, sleep=clock.sleep)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.base import OutboundRequest, Reply
from federation.domain.errors import (
    AdapterError,
    PermanentError,
    Transcript,
    TransientError,
    UnknownOutcomeError,
)
from replay.memory import InMemoryJournal

__all__ = [
    "FakeClock",
    "Handler",
    "InMemoryJournal",
    "MockAdapter",
    "permanent",
    "reply",
    "sequence",
    "transient",
]

# Answers one request: a Reply, or raises TransientError / PermanentError (maybe after awaiting).
Handler = Callable[[OutboundRequest], Reply | Awaitable[Reply]]


class MockAdapter:
    """An adapter that answers with ``handler`` instead of a partner; keeps every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[OutboundRequest] = []
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def send(self, request: OutboundRequest) -> Reply:
        """Record the request and answer it with the handler."""
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            return await answer
        return answer


def reply(body: Any = None, *, status: int = 200) -> Reply:
    """A partner's acceptance with ``body`` (what the mapping's response: section reads)."""
    return Reply(status=status, body=body, transcript=Transcript(response={"status": status}))


def transient(
    status: int | None = 503, *, retry_after: float | None = None, unknown: bool = False
) -> TransientError:
    """A failure worth retrying (``unknown``: the request may have reached the partner)."""
    kind = UnknownOutcomeError if unknown else TransientError
    message = "timed out after sending" if unknown else f"partner answered {status}"
    return kind(message, partner="mock", operation="send", status=status, retry_after=retry_after)


def permanent(status: int = 422) -> PermanentError:
    """The partner's refusal: retrying the same request cannot succeed."""
    return PermanentError(
        f"partner refused with {status}", partner="mock", operation="send", status=status
    )


def sequence(*answers: Reply | AdapterError) -> Handler:
    """A handler giving ``answers`` in turn (an error is raised), the last one from then on."""
    if not answers:
        raise ValueError("sequence() needs at least one answer")
    given = 0

    def handle(_: OutboundRequest) -> Reply:
        nonlocal given
        answer = answers[min(given, len(answers) - 1)]
        given += 1
        if isinstance(answer, AdapterError):
            raise answer
        return answer

    return handle


class FakeClock:
    """A clock the test owns: ``sleep`` returns at once and moves the clock on by as much."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []  # every sleep asked for, in order

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # still a point where other tasks run
