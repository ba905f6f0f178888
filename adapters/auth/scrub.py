"""Secrets a partner echoes back, replaced before anything of an attempt is kept.

A partner may quote a credential it was sent: a SOAP fault ``AppSecret 'xyz' 错误``, a validator
that repeats the value it refused, a gateway's 401 page naming the token. Whatever comes back is
the partner's text, so the adapter cannot keep it out of the reply; it can only make sure that
nothing the attempt returns or raises carries the secrets that attempt read. An adapter collects
them in a :class:`Scrubber` and runs its exchange and classification inside :meth:`Scrubber.errors`,
then passes the reply through :meth:`Scrubber.reply`: the transcript (request and response, the
response body text included), the reply's body, and an error's message, partner code and message
come out with every written form of a secret replaced by :data:`adapters.auth.REDACTED`.

Written forms: the value itself (a parsed fault reason, JSON string, header), as XML character
data and as an XML attribute value (a body kept as text), and as a JSON string's contents (plain,
ASCII-only, with ``\\/``: encoders differ).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.auth import REDACTED
from adapters.base import Reply
from federation.domain.errors import AdapterError, Transcript

MIN_SECRET = 4
"""Secrets shorter than this are not searched for. Masking every ``123`` or ``abc`` in a reply
would garble ordinary text (and the partner's own words an operator needs) while protecting
nothing: a secret of three characters or fewer is guessed in at most a few million tries, which
no transcript makes easier. The same bound limits what a cut-off reply can leak (see
:meth:`Scrubber.text`)."""


class Scrubber:
    """The secrets one attempt read, and how to remove them from what it keeps."""

    def __init__(self, secrets: Iterable[str | bytes | None] = ()) -> None:
        self.forms: tuple[str, ...] = ()
        if secrets:  # most attempts read none: nothing to prepare (the request path)
            self.learn(secrets)

    def learn(self, secrets: Iterable[str | bytes | None]) -> None:
        """Add secrets the attempt read (bytes that are not UTF-8 cannot appear in text)."""
        forms = set(self.forms)
        for secret in secrets:
            if isinstance(secret, bytes):
                try:
                    secret = secret.decode("utf-8")
                except UnicodeDecodeError:
                    continue
            if secret is None or len(secret) < MIN_SECRET:
                continue
            forms.update(form for form in _forms(secret) if len(form) >= MIN_SECRET)
        # longest first: a form that contains another is replaced whole
        self.forms = tuple(sorted(forms, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        """``text`` with every written form of a secret replaced; a text that ends in the start
        of one (a body or summary cut off there) loses that start too."""
        if not self.forms:
            return text
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        for form in self.forms:
            for n in range(len(form) - 1, MIN_SECRET - 1, -1):
                if text.endswith(form[:n]):
                    return text[:-n] + REDACTED
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value (mappings, sequences, strings) with its strings scrubbed."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value

    def transcript(self, transcript: Transcript) -> Transcript:
        """A transcript with its request and response scrubbed."""
        if not self.forms:
            return transcript
        response = transcript.response
        return Transcript(
            request=self.value(transcript.request),
            response=None if response is None else self.value(response),
        )

    def reply(self, reply: Reply) -> Reply:
        """A reply whose transcript, body and problem quote no secret."""
        if not self.forms:
            return reply
        problem = None if reply.problem is None else self.text(reply.problem)
        return dataclasses.replace(
            reply,
            body=self.value(reply.body),
            transcript=self.transcript(reply.transcript),
            problem=problem,
        )

    def error(self, exc: AdapterError) -> AdapterError:
        """``exc`` scrubbed in place: message, partner code and message, transcript."""
        if not self.forms:
            return exc
        exc.message = self.text(exc.message)
        exc.args = (exc.message, *exc.args[1:])
        if isinstance(exc.partner_code, str):
            exc.partner_code = self.text(exc.partner_code)
        if exc.partner_message is not None:
            exc.partner_message = self.text(exc.partner_message)
        exc.transcript = self.transcript(exc.transcript)
        return exc

    def errors(self) -> Scrubber:
        """A context in which an adapter error raised is scrubbed, then let go on (the
        scrubber itself: a class's ``__exit__`` costs less than a generator's context on
        every attempt)."""
        return self

    def __enter__(self) -> Scrubber:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, AdapterError):
            self.error(exc)  # in place: the error goes on, scrubbed


def _forms(secret: str) -> set[str]:
    """How ``secret`` may be written in a reply (see the module docstring)."""
    xml = secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    xml = xml.replace("\r", "&#13;")
    attr = xml.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    return {
        secret,
        xml,
        attr,
        attr.replace("&quot;", "&#34;"),
        xml.replace("'", "&apos;"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode escapes the slash
    }
