"""Secrets a partner echoes back, replaced before anything of an attempt is kept.

A partner may quote a credential it was sent: a SOAP fault ``AppSecret 'xyz' 错误``, a validator
that repeats the value it refused, a gateway's 401 page naming the token. Whatever comes back is
the partner's text, so the adapter cannot keep it out of the reply; it can only make sure that
nothing the attempt returns or raises carries the secrets that attempt read. An adapter collects
them in a :class:`Scrubber` and runs its exchange and classification inside :meth:`Scrubber.errors`,
then passes the reply through :meth:`Scrubber.reply`: the transcript (request and response, the
response body text included), the reply's body, and an error's message, partner code and message
come out with every written form of a secret replaced by :data:`adapters.auth.REDACTED`.

Written forms, character by character and mixed freely: the character
itself; an XML character reference, decimal or hexadecimal, any case, leading zeros (``&#65;``,
``&#x41;``); XML's named entity of ``& < > " '``; a JSON string's escape (``\\u0041``, a surrogate
pair, ``\\"``, ``\\/``, ``\\n``…); percent-encoding of its UTF-8 bytes (``%41``, and ``+`` for a
space). So a secret quoted as a parsed value, as XML text or attribute, as JSON (plain, ASCII-only,
with ``\\/``: encoders differ) or in a URL is found, however long it is (a key, a PEM block). A
text is searched for a secret as it is (plain string search); one that holds a mark of the
secret's encoded forms (``&#``, ``\\u``, ``%``; ``&`` or ``\\`` if the secret has a character
written with a named entity or a short JSON escape; ``+`` if it has a space), or ends in the start
of an escape, is read through its escapes as well (:mod:`adapters.auth.written`) and searched so:
time linear in the text, whatever the secret. Every place that holds a secret is redacted,
places that overlap included (``aaaa`` in ``aaaaaaa``, two secrets sharing characters): what one
secret's places and every other's cover goes as one (:mod:`adapters.auth.occurs`). An attempt that
read no secret prepares and searches nothing.

Sent in other shapes, too: what an attempt read comes with the shapes it was sent in
(:mod:`adapters.auth.forms`): a secret's base64, and an HTTP Basic header's ``user:password`` in
base64, each in either alphabet, padded or not; the cores of the secret's base64 at each of the
three offsets modulo 3 (so base64 of any text that holds it, a JSON body, is found); and its hex,
either case. Each such string is searched for like a secret (in every written form above), so
a partner's ``invalid credential: c2VjcmV0…`` or the Basic header it echoes is found. And
rewritten (:mod:`adapters.auth.rewrite`): a text that holds an HTML5 named reference of a
secret's character (``&sol;``, ``&plus;``) or a line break inside base64 (PEM, MIME) is searched
rewritten as well (names as numeric references, those breaks removed), and what is found there
is redacted where it stands in the text.

Written twice over, too: a value encoded again by the next layer that carries it (a URL in a
URL's parameter, ``%2526``; JSON escaped as XML text; a reference whose ``&`` became ``&amp;``;
a form value a proxy percent-encodes again). A text that holds an escape is read through its
escapes (each way its secrets' searches read it), and that reading, if it holds an escape or
ends in the start of one, is searched as a text of its own, all of the above included; what is
found there is redacted where it stands in the text. The readings stop at a fixed point (one that
reads no escape: the next would read the same) and after :data:`ROUNDS` (two). Two, because the
layers that quote a partner's words to us are two at most: the partner's own encoder and the
transport's (XML in a SOAP body, JSON in an HTTP error page, a query string in a logged URL); a
third layer is a text built to hide a secret, not one quoting it by mistake, and each further
round multiplies what is read by the ways a text is read (up to four each round), in every text
that holds an escape.

Most short texts with escapes hold no secret (a JSON body's values: ``a%20b&amp;``), and reading
each through its escapes twice over costs far more than a look: a text of up to 512 characters
that holds an escape is first checked for the characters it can read as, however its escapes
are read, and searched only for the secrets of which it can read four characters in a row
(:mod:`adapters.auth.reach`: a check that may let a text through for nothing, never one that
holds a secret past; what it lets through is searched as above). A scrubber remembers what it
decided for the characters a text's first reading reads as, so a body of like strings costs a
look-up each. A short text without escapes is searched only for the secrets whose first
:data:`~federation.config.secrets.MIN_SECRET` characters it holds as they are (or that have a
space, if it holds a ``+``): it can hold no other, whole or cut off.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from adapters.auth import REDACTED, ends, forms, occurs, places, reach, rewrite, written
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

    _bare: frozenset[str] = frozenset()  # searched for only as they are (forms.bare)
    _bare_heads: tuple[tuple[str, str], ...] = ()  # and their starts
    _least: Mapping[str, int] = {}  # how much of a shape's start a cut-off end loses (forms.heads)

    quick = True
    """Whether a short text is first checked for what it can read as (:mod:`adapters.auth.reach`)
    and passed over, or searched only for the secrets it may hold. Off: every text is searched
    for every secret (the reference the quick check is measured and tested against)."""

    def __init__(self, secrets: Iterable[forms.Secret] = ()) -> None:
        self.secrets: tuple[str, ...] = ()  # longest first: one that contains another goes whole
        self._kinds: tuple[str, ...] = ()  # how the secrets' searches read a text, together
        # a short text's characters: the secrets it may hold, whether it may be rewritten
        self._may: dict[frozenset[str], tuple[tuple[str, ...], bool]] = {}
        self._ready = _EMPTY
        if secrets:  # most attempts read none: nothing to prepare (the request path)
            self.learn(secrets)

    def learn(self, secrets: Iterable[forms.Secret]) -> None:
        """Add secrets the attempt read or sent, each with the shapes it was sent in
        (:func:`adapters.auth.forms.of`: its base64, a :class:`~adapters.auth.forms.Basic`
        header's; bytes that are not UTF-8 cannot appear in text, their base64 can)."""
        known, bare, least = set(self.secrets), set(self._bare), dict(self._least)
        for secret in secrets:
            known.update(forms.of(secret))
            bare.update(forms.bare(secret))
            for shape, n in forms.heads(secret):  # the secret as written wins, then base64
                least[shape] = min(n, least.get(shape) or n) or least.get(shape, 0)
        self._least = least
        self._bare = frozenset(bare - {s for s in secrets if isinstance(s, str)})
        self._bare_heads = tuple((s[:MIN_SECRET], s) for s in self._bare)
        self.secrets = tuple(sorted(known, key=len, reverse=True))
        self._ready = _prepare(self.secrets)
        self._kinds = self._ready.kinds
        self._may.clear()

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, text: str) -> str:
        """``text`` with every written form of a secret replaced; a text that ends in the start
        of one (a body or summary cut off there, even inside an escape) loses that start too.
        A text without the marks of a secret's encoded forms (nor the start of an escape at its
        end) can hold it only as it is: plain string search; else it is read through its escapes
        too. What every secret's search finds, in the text as it came, is redacted at once (the
        union of the places, and the text's end from the earliest cut-off start)."""
        if not self.secrets or len(text) < MIN_SECRET:
            return text  # too short to hold what is searched for, even its cut-off start
        found, again = self._search(text)
        other = rewrite.rewrite(text, self._ready.named) if again else None
        size = len(text)
        if other is None:
            if found is None:
                return text
            spans, cut, plain = found
            marked = "&" in text or "\\" in text or "%" in text  # else no escape in it (but +)
            if not spans and cut == size and places.alone(plain, marked):
                # found only as it is, touching no escape: the common case; one secret that
                # does not overlap itself, so the places str.replace sees are all it is at
                return text.replace(plain[0], REDACTED) if plain else text
        spans, cut = _places(text, found)
        more = None if other is None else self._search(other.text, other.named)[0]
        if other is not None and more is not None:
            moved, at = _places(other.text, more)  # the text rewritten: where it stands here
            spans += [(other.begin(begin), other.end(end)) for begin, end in moved]
            cut = min(cut, other.begin(at))
        if cut < size:
            spans.append((cut, size))
        return places.redact(text, spans) if spans else text

    def _search(
        self, text: str, every: bool = True
    ) -> tuple[tuple[list[tuple[int, int]], int, list[str]] | None, bool]:
        """What :func:`_found` finds in ``text`` of the secrets it may hold (None if none), and
        whether the text may be rewritten (:mod:`adapters.auth.rewrite`) for more; ``every``
        false: a text whose line breaks were removed, searched for what a break could cut."""
        secrets = self.secrets if every else self._ready.wraps
        if self.quick and len(text) <= _QUICK:
            if "%" in text or "&" in text or "\\" in text:
                secrets, again = self._may_hold(text)  # what cannot hold one is not searched
            else:
                secrets, again = self._starting(text), "\n" in text or "\r" in text
        else:
            again = rewrite.hinted(text, rewrite.hint(self._ready.named))
        if not every:
            secrets = tuple(s for s in secrets if s in self._ready.wraps)
        if not secrets:
            return None, again
        kinds = self._kinds if every else self._ready.wrap_kinds  # a wrapped text read as they read
        sought = _Sought(secrets, kinds, len(self.secrets[0]), self._bare, self._least)
        return _found(text, sought, ROUNDS), again

    def _starting(self, text: str) -> tuple[str, ...]:
        """The secrets a short text without escapes (no ``&``, ``\\`` nor ``%``) may hold: those
        whose first :data:`MIN_SECRET` characters it holds, and those with a space if it holds
        a ``+``; whole or cut off, it holds none of the others (most of a JSON body's strings,
        and the shapes a secret was sent in that a text does not quote)."""
        ready = self._ready
        held = {head for head in ready.starts if head in text}  # shapes share their starts
        if "+" in text:
            return tuple([s for head, spaced, s in ready.heads if spaced or head in held])
        return tuple([s for head, _, s in ready.heads if head in held])

    def _may_hold(self, text: str) -> tuple[tuple[str, ...], bool]:
        """The secrets a short text may hold, written in any form or cut off, by what it can
        read as, and whether it may be rewritten: what its first reading reads as decides, so
        a text that reads as the same characters as one before costs a look-up after that
        reading."""
        read = reach.first(text)
        found = self._may.get(read)
        if found is None:
            syntax = reach.syntax(read, ROUNDS)
            bare = self._bare
            found = (
                tuple(s for s in self.secrets if s not in bare and reach.may_hold(read, syntax, s)),
                rewrite.may_need(read, self._ready.named),
            )
            if len(self._may) >= _KEPT:
                self._may.clear()
            self._may[read] = found
        if self._bare_heads:  # as they are, or not at all: by the text, not what it reads as
            held = [s for head, s in self._bare_heads if head in text]
            return (found[0] + tuple(held), found[1]) if held else found
        return found

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


ROUNDS = 2
"""How many times a text is read through its escapes: a secret encoded up to twice is found."""
_QUICK = 512  # characters: a longer text costs more to take apart than to search
_KEPT = 1024  # sets of characters a scrubber remembers what they may hold

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
_WIDEST = 12  # characters of text one character of a secret takes at most (no "&#" in the text)


class _Ready(NamedTuple):
    """What a scrubber derives from its secrets (the same for every attempt that reads them)."""

    kinds: tuple[str, ...]  # how the secrets' searches read a text, together
    heads: tuple[tuple[str, bool, str], ...]  # each secret's start, whether it has a space
    starts: tuple[str, ...]  # the starts, each once
    named: tuple[str, ...]  # the HTML5 names of the secrets' characters
    wraps: tuple[str, ...]  # the secrets a line break of base64 may cut
    wrap_kinds: tuple[str, ...]  # how their searches read a text


@functools.lru_cache(maxsize=64)  # as the other caches of secrets
def _prepare(secrets: tuple[str, ...]) -> _Ready:
    """What a scrubber of ``secrets`` (longest first) derives from them."""
    heads = tuple((s[:MIN_SECRET], " " in s, s) for s in secrets)
    wraps = tuple(s for s in secrets if rewrite.wraps(s))
    return _Ready(
        kinds=tuple({kind: None for s in secrets for kind in written.kinds(s)}),
        heads=heads,
        starts=tuple({head: None for head, _, _ in heads}),
        named=rewrite.names(secrets),
        wraps=wraps,
        wrap_kinds=tuple({kind: None for s in wraps for kind in written.kinds(s)}),
    )


_EMPTY = _prepare(())


class _Sought(NamedTuple):
    """The secrets a text is searched for, and how it is read for them: as for all of the
    scrubber's (a text that cannot hold some is searched for the others alone, read the same)."""

    secrets: tuple[str, ...]
    kinds: tuple[str, ...]  # each secret's written.kinds, of all the scrubber's secrets
    longest: int
    bare: frozenset[str]  # those searched for only as they are (forms.bare)
    least: Mapping[str, int]  # the start of each a cut-off end loses (forms.heads; 0: none)


def _places(
    text: str, found: tuple[list[tuple[int, int]], int, list[str]] | None
) -> tuple[list[tuple[int, int]], int]:
    """The places :func:`_found` found in ``text`` (None: nothing searched), those of the
    secrets it holds as it is included, and where a cut-off start begins (or its length)."""
    if found is None:
        return [], len(text)
    spans, cut, plain = found
    for secret in plain:
        spans += places.plain(text, secret)
    return spans, cut


def _found(text: str, sought: _Sought, rounds: int) -> tuple[list[tuple[int, int]], int, list[str]]:
    """What ``rounds`` readings of ``text`` find of the secrets ``sought``: the places of their
    encoded forms, where the end a cut-off start takes begins (or ``len(text)``), and the
    secrets the text holds as it is (whose places are left to :func:`adapters.auth.places.plain`)."""
    spans: list[tuple[int, int]] = []
    cut = size = len(text)
    if size < MIN_SECRET:
        return spans, cut, []
    escape = ends.escape_at_end(text)
    views: dict[tuple[str, ...], written.View] = {}
    plain = []
    backslash, percent = "\\" in text, "%" in text
    # "#" first: one character is found much faster than two ("&" is common)
    common = percent or ("#" in text and "&#" in text) or (backslash and "\\u" in text)
    for secret in sought.secrets:
        if secret in text:
            plain.append(secret)
        least = sought.least.get(secret, MIN_SECRET)
        if least:
            cut = min(cut, ends.cut(text, secret, least))
        if secret in sought.bare:
            continue
        extra = _marks(secret)
        search = common or bool(extra and any(mark in text for mark in extra))
        if search or (least and escape < size):
            found, start = _encoded(text, secret, views, (escape, least), search)
            spans += found
            cut = min(cut, start)
    if rounds > 1 and (escape < size or written.holds(text)):
        deeper = sought._replace(secrets=tuple(s for s in sought.secrets if s not in sought.bare))
        found, start = _deeper(text, deeper, views, rounds - 1, escape)
        spans += found
        cut = min(cut, start)
    return spans, cut, plain


def _deeper(
    text: str,
    sought: _Sought,
    views: dict[tuple[str, ...], written.View],
    rounds: int,
    escape: int,
) -> tuple[list[tuple[int, int]], int]:
    """What the further readings find: ``text`` read through its escapes, in each way a
    secret's search reads it, searched as a text of its own (``rounds`` more readings), what is
    found mapped back to where it stands in ``text``. A reading that reads no escape is where
    they stop: the next would read the same (one that reads only ``+`` as a space makes no
    escape: the search of this round has read it so). A text that ends in the start of an
    escape (at ``escape``) is read without what it holds of a character as well, for a cut-off
    start: that character may end an escape begun before it (``%5C%`` of ``\\"`` in a URL)."""
    spans: list[tuple[int, int]] = []
    cut = len(text)
    ways = {written.families(text, kind): None for kind in sought.kinds}
    head = ends.complete(text, escape)
    for marks in ways:
        if not marks:
            continue
        view = views.get(marks) or views.setdefault(marks, written.View(text, marks))
        found, start = _inner(view, sought, rounds)
        spans += found
        cut = min(cut, start)
        if head < len(text):  # a cut-off start found there ends before the escape
            cut = min(cut, _head_cut(view, head, marks, sought, rounds))
    return spans, cut


def _head_cut(
    view: written.View, head: int, marks: tuple[str, ...], sought: _Sought, rounds: int
) -> int:
    """Where a cut-off start ends ``text[:head]`` (``view``: the text read through the escapes
    ``marks``), or ``len(text)``. With escapes read, ``text[:head]`` is read as ``view`` reads
    it, taken from it (:meth:`adapters.auth.written.View.upto`: not read again). Without,
    what ends in one lies in its last characters, as many as the longest secret's and an
    escape's."""
    text = view.text
    if view.read:
        origin, before = 0, view.upto(head)
    else:
        origin = max(0, head - sought.longest - _ESCAPE)
        before = written.View(text[origin:head], marks)
    start = _inner(before, sought, rounds, True)[1]
    return origin + start if origin + start < head else len(text)


def _inner(
    view: written.View, sought: _Sought, rounds: int, head: bool = False
) -> tuple[list[tuple[int, int]], int]:
    """What ``rounds`` readings of ``view`` find, where it stands in the view's text: the
    places, and where a cut-off start begins (else the text's length). A ``head`` (a text
    without the character its end holds part of) is searched even if no escape was read: no
    search read it without that end (``\\&`` of ``\\&quot;``)."""
    inner = view.chars
    # a + an escape wrote, read as a space next (a + written as it is, this round read so)
    spaced = "all+" in sought.kinds and inner.count("+") > view.text.count("+")
    if not (view.read or head) or not (spaced or ends.escaped(inner)):
        return [], len(view.text)  # as this round's search read it: the next reads the same
    found, start, plain = _found(inner, sought, rounds)
    spans = [(view.start(begin), view.start(end)) for begin, end in found]
    for secret in plain:  # not widened: an escape it touches there is none in the text
        for begin, end in occurs.runs(inner, secret):
            at, to = view.start(begin), view.start(end)
            if to - at != end - begin:  # else the text holds it so: a plain place
                spans.append((at, to))
    return spans, view.start(start) if start < len(inner) else len(view.text)


def _encoded(
    text: str,
    secret: str,
    views: dict[tuple[str, ...], written.View],
    ending: tuple[int, int],
    search: bool,
) -> tuple[list[tuple[int, int]], int]:
    """Where ``text`` holds ``secret`` written in any of its encoded forms (if ``search``), in
    each view of :func:`adapters.auth.written.kinds` (built once a text, shared by the secrets),
    and where an end begins that is the first ``least`` or more of its characters so written
    (cut off, even inside an escape; ``ending``: where the escape at the end begins, and
    ``least``, 0 for a shape never cut off), or ``len(text)``."""
    escape, least = ending
    opens = written.openers(secret)
    spans: list[tuple[int, int]] = []
    cut = len(text)
    # where the text holds the secret as it is, each view reads it as itself (no escape nor +
    # in it, none it could begin inside): as many found in a view are those, found already
    known = -1 if places.straddles(secret) or "+" in secret else occurs.count(text, secret)
    done: set[tuple[str, ...]] = set()
    for marks in {written.families(text, kind): None for kind in written.kinds(secret)}:
        if not marks or (marks[-1] == "+" and marks[:-1] in done and _within(text, spans, "+")):
            continue  # as it is: plain search; or read already, but for + found in the secret
        done.add(marks)
        if search or len(text) <= 4 * _ESCAPE * len(secret):
            view = views.get(marks) or views.setdefault(marks, written.View(text, marks))
            if search and (secret in view.chars or (opens and secret[max(opens) :] in view.chars)):
                spans += _spans(secret, view, opens, occurs.count(view.chars, secret) != known)
            if least:
                cut = min(cut, _encoded_cut(view, secret, (escape, least), opens))
        elif least:  # only its end to read, and no "&#" in it (no reference padded with zeros)
            origin = max(0, escape - _WIDEST * len(secret) - 64)
            tail = written.View(text[origin:], marks)
            at = _encoded_cut(tail, secret, (escape - origin, least), opens)
            cut = min(cut, origin + at)
    return spans, cut


def _within(text: str, spans: list[tuple[int, int]], mark: str) -> bool:
    """Whether every ``mark`` in ``text`` lies in one of ``spans`` (some found)."""
    if not spans:
        return False
    last = 0
    for begin, end in sorted(spans):
        if mark in text[last:begin]:
            return False
        last = max(last, end)
    return mark not in text[last:]


def _spans(
    secret: str, view: written.View, opens: tuple[int, ...], direct: bool
) -> list[tuple[int, int]]:
    """Each place where ``view`` reads ``secret`` (if ``direct``), and where it reads the
    secret's start as the end of an escape then the rest, in its text."""
    chars, size = view.chars, len(secret)
    spans = (
        [(view.start(a), view.start(b)) for a, b in occurs.runs(chars, secret)] if direct else []
    )
    for after, begin, a in view.opened(secret, opens):
        if chars.startswith(secret[a:], after):
            spans.append((begin, view.start(after + size - a)))
    return spans


def _encoded_cut(
    view: written.View, secret: str, ending: tuple[int, int], opens: tuple[int, ...]
) -> int:
    """Where the text of ``view`` begins to end in the start of ``secret`` written in encoded
    forms, then perhaps the start of one more escape (``ending``: where it begins, and
    ``least``): at least ``least`` of its characters read, the earliest such start; or the
    text's length."""
    escape, least = ending
    chars, head = view.chars, secret[:least]
    if len(chars) < least:
        return len(view.text)  # fewer characters read than a cut-off start must hold
    end = view.index(escape)  # the secret's start runs to here at least
    starts = [len(view.text)]
    for after, begin, a in view.opened(secret, opens, max(0, end - len(secret))):
        upto = max(end, after + least - a)
        if upto > len(chars) or a + upto - after >= len(secret):
            continue  # fewer than MIN_SECRET characters read, or the whole secret
        if secret.startswith(chars[after:upto], a):
            starts.append(begin)
    at = chars.find(head, max(0, end - len(secret) + 1))
    while at != -1:
        upto = max(end, at + least)
        if upto - at < len(secret) and secret.startswith(chars[at:upto]):
            starts.append(view.start(at))
            break
        at = chars.find(head, at + 1)
    return min(starts)


@functools.lru_cache(maxsize=64)
def _marks(secret: str) -> tuple[str, ...]:
    """What a text holds if it holds ``secret`` written in any form but as it is, besides the
    ``&#``, ``\\u`` or ``%`` any secret's encoded forms may hold: ``&`` if it has a character
    written with a named entity, ``\\`` if one with a short JSON escape, ``+`` if a space."""
    marks = []
    if any(c in _NAMED for c in secret):
        marks.append("&")
    if any(c in _JSON for c in secret):
        marks.append("\\")
    if " " in secret:
        marks.append("+")
    return tuple(marks)
