"""The one seam between the broker and partner protocols.

An adapter delivers one mapped request to one partner and returns the partner's reply, or raises a
:class:`~federation.domain.errors.TransientError` / :class:`~federation.domain.errors.PermanentError`
that carries what went over the wire. A :class:`ProtocolSpec` validates the protocol's own keys in
partners.yaml and builds adapters; the registry maps the ``protocol:`` value to a spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from federation.config import Partner, ProtocolKeys
from federation.domain.errors import Transcript

# Bodies kept in the journal are bounded; the full mapped request is journalled separately.
TRANSCRIPT_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class OutboundRequest:
    """One attempt to deliver a mapped request."""

    exchange_id: str
    idempotency_key: str
    service: str
    payload: Mapping[str, Any]
    attempt: int
    kind: str = "application"  # or "supplement": a correction round's follow-up message
    traceparent: str | None = None  # W3C trace context, sent as the ``traceparent`` HTTP header


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A partner's acceptance: the parsed body (for the response mapping) and the transcript."""

    status: int
    body: Any
    transcript: Transcript
    problem: str | None = None  # set when the partner accepted but its reply could not be read


class Adapter(Protocol):
    """Delivers requests to one partner."""

    async def start(self) -> None:
        """Open connections or sessions; called once before the first send."""

    async def close(self) -> None:
        """Release everything :meth:`start` opened."""

    async def send(self, request: OutboundRequest) -> Reply:
        """Deliver one request; raise TransientError or PermanentError on failure."""


class ProtocolSpec(ProtocolKeys, Protocol):
    """What a protocol brings: its partners.yaml keys (``ProtocolKeys``) and its adapter."""

    def create(self, partner: Partner) -> Adapter:
        """Build the adapter for one partner."""

    def target_tree(
        self, partner: Partner, service: str, kind: str = "application"
    ) -> tuple[str, set[str], set[str]] | None:
        """For a request kind (application, status, supplement): the operation's name, its
        element paths and the required ones, if the protocol describes them (SOAP, from the
        WSDL); ``tongban check`` verifies the mapping's section for that kind against them."""
