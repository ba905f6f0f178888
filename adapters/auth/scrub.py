"""Secrets a partner echoes back, replaced before anything of an attempt is kept.

A partner may quote a credential it was sent: a SOAP fault ``AppSecret 'xyz' 错误``, a validator
that repeats the value it refused, a gateway's 401 page naming the token. Whatever comes back is
the partner's text, so the adapter cannot keep it out of the reply; it can only make sure that
nothing the attempt returns or raises carries the secrets that attempt read. An adapter collects
them in a :class:`Scrubber` and runs its exchange and classification inside :meth:`Scrubber.errors`,
then passes the reply through :meth:`Scrubber.reply`: the transcript (request and response, the
response body text included), the reply's body, and an error's message, partner code and message
come out with every written form of a secret replaced by :data:`adapters.auth.REDACTED`.

Written forms, character by character and mixed freely (one level of encoding): the character
itself; an XML character reference, decimal or hexadecimal, any case, leading zeros (``&#65;``,
``&#x41;``); XML's named entity of ``& < > " '``; a JSON string's escape (``\\u0041``, a surrogate
pair, ``\\"``, ``\\/``, ``\\n``…); percent-encoding of its UTF-8 bytes (``%41``, and ``+`` for a
space). So a secret quoted as a parsed value, as XML text or attribute, as JSON (plain, ASCII-only,
with ``\\/``: encoders differ) or in a URL is found, however long it is (a key, a PEM block). A
text is searched for a secret as it is (plain string search); one that holds a mark of the
secret's encoded forms (``&#``, ``\\u``, ``%``; ``&`` or ``\\`` if the secret has a character
written with a named entity or a short JSON escape; ``+`` if it has a space), or ends in the start
of an escape, is read through its escapes as well (:mod:`adapters.auth.written`) and searched so:
time linear in the text, whatever the secret. An attempt that read no secret prepares and searches
nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.auth import REDACTED, written
from adapters.base import Reply
from federation.config.secrets import MIN_SECRET
from federation.domain.errors import AdapterError, Transcript

# MIN_SECRET: secrets shorter than this are refused where they are read (federation.config.secrets:
# an error at their line in partners.yaml, or the attempt held), so none reaches a reply to be
# scrubbed; a shorter value learned anyway (a token) is not searched for: masking every ``abc``
# would garble the partner's words an operator needs. The same bound limits what a cut-off reply
# can leak: a text that ends in the first MIN_SECRET or more characters of a secret loses them.


class Scrubber:
    """The secrets one attempt read, and how to remove them from what it keeps."""

    def __init__(self, secrets: Iterable[str | bytes | None] = ()) -> None:
        self.secrets: tuple[str, ...] = ()  # longest first: one that contains another goes whole
        if secrets:  # most attempts read none: nothing to prepare (the request path)
            self.learn(secrets)

    def learn(self, secrets: Iterable[str | bytes | None]) -> None:
        """Add secrets the attempt read (bytes that are not UTF-8 cannot appear in text)."""
        known = set(self.secrets)
        for secret in secrets:
            if isinstance(secret, bytes):
                try:
                    secret = secret.decode("utf-8")
                except UnicodeDecodeError:
                    continue
            if secret is not None and len(secret) >= MIN_SECRET:
                known.add(secret)
        self.secrets = tuple(sorted(known, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, text: str) -> str:
        """``text`` with every written form of a secret replaced; a text that ends in the start
        of one (a body or summary cut off there, even inside an escape) loses that start too.
        A text without the marks of a secret's encoded forms (nor the start of an escape at its
        end) can hold it only as it is: plain string search; else the secret's pattern."""
        if not self.secrets:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
            cut = any(mark in text[-_ESCAPE:] for mark in _STARTS)
            if cut or any(rare in text and mark in text for rare, mark in _marks(secret)):
                text = _encoded(text, secret)  # its end first: the longest cut-off start
            text = _cut(text, secret)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value (mappings, sequences, strings) with its strings scrubbed."""
        if not self.secrets:
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
        if not self.secrets:
            return transcript
        response = transcript.response
        return Transcript(
            request=self.value(transcript.request),
            response=None if response is None else self.value(response),
        )

    def reply(self, reply: Reply) -> Reply:
        """A reply whose transcript, body and problem quote no secret."""
        if not self.secrets:
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
        if not self.secrets:
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


_STARTS = ("&", "\\", "%")  # every escape starts with one of them
_ESCAPE = 16  # characters: the longest escape of one character (or a surrogate pair) is 12
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_JSON = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# the end of a text cut inside an escape: "&#6", "&#x", "&am", "\\u00", "\\ud83d\\u", "%E8%A"
_CUT = re.compile(
    r"(?:&#?[0-9A-Za-z]*"  # a reference or an entity
    r"|\\(?:u[0-9A-Fa-f]{0,4}(?:\\u?[0-9A-Fa-f]{0,3})?)?"  # a JSON escape, a surrogate pair
    r"|(?:%[0-9A-Fa-f]{0,2})+)?\Z"  # percent-encoded bytes
)
_WIDEST = 12  # characters of text one character of a secret takes at most (leading zeros aside)


def _encoded(text: str, secret: str) -> str:
    """``text`` without ``secret`` written in any of its encoded forms, nor an end that is the
    first :data:`MIN_SECRET` or more of its characters so written (cut off, even inside an
    escape), in each view of :func:`adapters.auth.written.kinds`."""
    opens = written.openers(secret)
    for kind in written.kinds(secret):
        view = written.View(text, kind)
        if secret in view.chars or (opens and secret[max(opens) :] in view.chars):
            text = _replace(text, secret, view, opens)
        text = _encoded_cut(text, secret, kind, opens)
    return text


def _replace(text: str, secret: str, view: written.View, opens: tuple[int, ...]) -> str:
    """``text`` with each place where ``view`` reads ``secret`` replaced (the leftmost first)."""
    chars, size, spans = view.chars, len(secret), []
    at = chars.find(secret)
    while at != -1:
        spans.append((view.start(at), view.start(at + size)))
        at = chars.find(secret, at + size)
    for after, begin, a in view.opened(secret, opens):
        if chars.startswith(secret[a:], after):
            spans.append((begin, view.start(after + size - a)))
    out, last = [], 0
    for begin, end in sorted(spans):
        if begin >= last:
            out += [text[last:begin], REDACTED]
            last = end
    return "".join([*out, text[last:]])


def _encoded_cut(text: str, secret: str, kind: str, opens: tuple[int, ...]) -> str:
    """``text`` without its end if that is the start of ``secret`` written in encoded forms,
    then perhaps the start of one more escape (the longest such end). Only the text's last
    characters are read through their escapes: as many as the secret could take."""
    tail = text[-_ESCAPE:]
    escape = len(text) - len(tail) + _CUT.search(tail).start()  # type: ignore[union-attr]
    origin = max(0, escape - _WIDEST * len(secret) - 64)
    view = written.View(text[origin:], kind)
    chars, head = view.chars, secret[:MIN_SECRET]
    end = view.index(escape - origin)  # the secret's start runs to here at least
    starts = []
    for after, begin, a in view.opened(secret, opens):
        upto = max(end, after + MIN_SECRET - a)
        if a + upto - after < len(secret) and secret.startswith(chars[after:upto], a):
            starts.append(begin)
    at = chars.find(head, max(0, end - len(secret) + 1))
    while at != -1:
        upto = max(end, at + MIN_SECRET)
        if upto - at < len(secret) and secret.startswith(chars[at:upto]):
            starts.append(view.start(at))
            break
        at = chars.find(head, at + 1)
    return text[: origin + min(starts)] + REDACTED if starts else text


@functools.lru_cache(maxsize=64)
def _marks(secret: str) -> tuple[tuple[str, str], ...]:
    """What a text holds if it holds ``secret`` written in any form but as it is: each mark with
    its rarest character, looked for first (one character is found much faster than two)."""
    marks = [("#", "&#"), ("\\", "\\u"), ("%", "%")]
    if any(c in _NAMED for c in secret):
        marks.append(("&", "&"))
    if any(c in _JSON for c in secret):
        marks.append(("\\", "\\"))
    if " " in secret:
        marks.append(("+", "+"))
    return tuple(marks)


def _cut(text: str, secret: str) -> str:
    """``text`` without its end if that is the first :data:`MIN_SECRET` or more characters of
    ``secret`` (the longest such end)."""
    head = secret[:MIN_SECRET]
    at = text.find(head, max(0, len(text) - len(secret) + 1))
    while at != -1:
        if secret.startswith(text[at:]):
            return text[:at] + REDACTED
        at = text.find(head, at + 1)
    return text
