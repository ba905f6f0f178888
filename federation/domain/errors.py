"""The exception tree of tongban.

Everything tongban raises on purpose derives from :class:`FederationError`::

    FederationError
    ├── ConfigError                 partners.yaml or a mapping file is wrong (carries every Problem)
    ├── MappingError                one application could not be mapped (carries every field Problem)
    ├── RequestRefused              the runtime will not do what was asked (kind, code, detail):
    │                               the HTTP edge answers it as problem details, SOAP as a fault
    ├── AdapterError                a delivery to a partner failed (carries partner and operation)
    │   ├── TransientError          worth retrying: connection refused, timeout, 5xx, 429
    │   │   ├── UnknownOutcomeError the request may have reached the partner (timeout after sending)
    │   │   └── NotSent             held on our side (a secret or key that cannot be used): nothing
    │   │                           went out, and it says nothing of the partner's health
    │   ├── PermanentError          retrying cannot help: 4xx, a reply the partner marks as refused
    │   │   └── NotSendable         refused on our side before sending: the request breaks the
    │   │                           partner's WSDL; it says nothing of the partner's health
    │   └── UnrecognisedReply       the partner answered, but its reply rules call it neither yes
    │                               nor no: the exchange ends unconfirmed, never delivered
    └── JournalError                the journal cannot be read or written
        ├── JournalUnavailable      disk full, file locked or missing, database down
        ├── IdempotencyConflict     same idempotency key, different request
        ├── LeaseLost               another worker holds the exchange now
        ├── LifecycleMoved          the partner's latest word changed since it was read
        └── CallbackPending         a callback or notice was armed since it was read

Errors of aiohttp, lxml, sqlite3 and friends never cross a package boundary: adapters and journal
backends translate them with ``raise … from exc``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.domain.texts import Gettext, Text


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a file or a value, located as precisely as we can.

    ``message`` is English, for logs, the journal and JSON. ``text``, when given, is the same
    message as a template and its values, for the CLI to say in the reader's language; a Problem
    made with a ``text`` alone takes its message from it.
    """

    message: str = ""
    path: str = ""
    file: str | None = None
    line: int | None = None
    severity: str = "error"  # or "warning"
    text: Text | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.text is not None and not self.message:
            object.__setattr__(self, "message", str(self.text))

    def __str__(self) -> str:
        return self.shown()

    def shown(self, gettext: Gettext | None = None, *, warning: str = "warning: ") -> str:
        """``file:line: key.path: message``, the message through ``gettext`` when its template
        still says what ``message`` says (English otherwise); file, line and path as they are."""
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        what = f"{self.path}: " if self.path else ""
        tag = warning if self.severity == "warning" else ""
        message = self.message
        if gettext is not None and self.text is not None and str(self.text) == message:
            message = self.text.render(gettext)
        return f"{where}{tag}{what}{message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the journal and problem details."""
        out: dict[str, Any] = {"message": self.message}
        if self.path:
            out["path"] = self.path
        if self.file is not None:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        if self.severity != "error":
            out["severity"] = self.severity
        return out


class FederationError(Exception):
    """Root of every error tongban raises on purpose."""


class ConfigError(FederationError):
    """A configuration or mapping file is invalid; ``problems`` lists every mistake found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class MappingError(FederationError):
    """An application failed its mapping; ``problems`` names every failing field path."""

    def __init__(self, problems: Iterable[Problem], *, mapping: str = "") -> None:
        self.problems = tuple(problems)
        self.mapping = mapping
        super().__init__("; ".join(str(p) for p in self.problems))


class RefusalKind(enum.StrEnum):
    """Why a request is refused, in words the edges translate (HTTP status, SOAP fault code)."""

    INVALID = "invalid"  # malformed or missing what is required
    UNAUTHENTICATED = "unauthenticated"  # no credentials, or none that are known
    FORBIDDEN = "forbidden"  # known credentials that may not do this
    NOT_FOUND = "not_found"  # no such partner, service, exchange or application
    CONFLICT = "conflict"  # the request contradicts what the journal holds now
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"  # a media type or dialect that is not spoken here
    UNPROCESSABLE = "unprocessable"  # well formed, but its content cannot be taken (mapping)
    UNAVAILABLE = "unavailable"  # not now: the journal or a dependency is down


class RequestRefused(FederationError):
    """A request the runtime refuses: ``kind`` says why in general, ``code`` exactly (a stable
    slug such as ``lifecycle-out-of-order``), ``detail`` for the caller, ``extra`` for machines."""

    def __init__(self, kind: RefusalKind, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.code = code
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True, kw_only=True)
class Transcript:
    """What went over the wire in one attempt, for the journal (bodies bounded by the adapter)."""

    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] | None = None


class AdapterError(FederationError):
    """A delivery failed; ``transcript`` holds what was sent and received, if anything."""

    def __init__(
        self,
        message: str,
        *,
        partner: str,
        operation: str,
        transcript: Transcript | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        partner_code: str | int | None = None,
        partner_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partner = partner
        self.operation = operation
        self.transcript = transcript or Transcript()
        self.status = status
        self.retry_after = retry_after
        # the partner's own business code and message, when its reply rules read them
        self.partner_code = partner_code
        self.partner_message = partner_message


class TransientError(AdapterError):
    """Retrying later may succeed."""


class UnknownOutcomeError(TransientError):
    """The request may have been processed: retry only with the same idempotency key."""


class NotSent(TransientError):
    """Nothing was sent, for a reason of ours: a secret that cannot be read, a client certificate
    or signing key that cannot be used. Held and retried like any transient error, but never
    counted against the partner's circuit breaker: the partner was not asked."""


class PermanentError(AdapterError):
    """The partner refused the request; retrying the same request cannot succeed."""


class NotSendable(PermanentError):
    """Refused before anything was sent: the request as mapped breaks the partner's contract (its
    WSDL's input, an operation it does not have). Permanent, but the partner was not asked, so its
    circuit breaker hears nothing of it."""


class UnrecognisedReply(AdapterError):
    """The partner answered, but in no way its reply rules recognise: whether it took the request
    is unknown, so it is neither retried nor counted as delivered."""


class JournalError(FederationError):
    """The journal failed."""


class JournalDamaged(JournalError):
    """A stored record that does not read as it was written: altered, or sealed with a key this
    instance does not hold. Nothing is changed; ``tongban journal verify`` says where."""


class JournalUnavailable(JournalError):
    """The journal cannot be written right now; nothing was half-written."""


class IdempotencyConflict(JournalError):
    """An idempotency key was reused for a different request."""

    def __init__(self, exchange_id: str) -> None:
        super().__init__(
            f"idempotency key already used for exchange {exchange_id} with another body"
        )
        self.exchange_id = exchange_id


class LeaseLost(JournalError):
    """The worker's lease on an exchange expired and was taken over."""


class LifecycleMoved(JournalError):
    """A lifecycle step was checked against a latest word that another update has changed."""


class CallbackPending(JournalError):
    """A write that expected no callback or notice pending (``StateChange.expect_quiet``) found
    one armed meanwhile: a step the partner reported, or another resend."""
