"""Request bodies as the simulators read them: as a partner's server would, a body that cannot be
read (a ``Content-Encoding`` it does not decompress as, broken framing) or decoded (JSON that is
not, a form that is not UTF-8 ``application/x-www-form-urlencoded``) is the client's mistake,
answered 4xx in the partner's own terms, never a 500. :class:`Unreadable` says why, never with
the body's content."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError

FORM = "application/x-www-form-urlencoded"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_T = TypeVar("_T")
# The behaviours' annotations (strings, under postponed evaluation) → the JSON values they take.
_KINDS: dict[str, tuple[type, ...]] = {
    "float": (int, float),
    "int": (int,),
    "str": (str,),
    "None": (type(None),),
    "list[str]": (list,),
    "bool": (bool,),
}


class Unreadable(Exception):
    """A request body that cannot be read or decoded; the message says why (never its content)."""


def closing(response: web.Response) -> web.Response:
    """``response`` to a body the simulator could not read, closing the connection after it: what
    is left of that body on the connection is not read (a server that keeps the connection open
    after a broken payload drops the client's next request on it)."""
    response.force_close()
    return response


async def body_of(request: web.Request) -> bytes:
    """The request's body; Unreadable if it cannot be read (decompressed, de-chunked)."""
    try:
        return await request.read()
    except RequestPayloadError as exc:
        if isinstance(exc.__cause__, ContentEncodingError):
            raise Unreadable("the body does not decompress as its Content-Encoding says") from None
        raise Unreadable("the body could not be read") from None


async def json_of(request: web.Request) -> Any:
    """The request's body as JSON; Unreadable if it cannot be read or is not JSON (UTF-8)."""
    raw = await body_of(request)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Unreadable("malformed JSON") from None


async def form_of(request: web.Request) -> dict[str, str]:
    """The request's ``application/x-www-form-urlencoded`` body (UTF-8, RFC 6749 §4.4.2), each
    parameter once (§3.2); Unreadable for another media type or charset, bytes or percent-escapes
    that are not UTF-8, a ``%`` not followed by two hex digits, or a parameter given twice."""
    if request.content_type != FORM:
        raise Unreadable(f"the body must be {FORM}")
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise Unreadable(f"the body must be {FORM} in UTF-8")
    raw = await body_of(request)
    try:
        text = raw.decode("utf-8")
        if _BAD_PERCENT.search(text):
            raise Unreadable("a '%' in the body is not followed by two hex digits")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Unreadable("the body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise Unreadable(f"parameter {name!r} is given more than once")
        form[name] = value
    return form


def behaviour_of(cls: type[_T], data: Any) -> _T:
    """A simulator's behaviour (a dataclass of JSON values) from a ``/_sim/behaviour`` body: its
    fields that ``data`` names (others ignored), each of its declared type; ValueError naming
    the first field that is not, or when ``data`` is no object."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    given: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        kinds = [k for part in str(f.type).split("|") for k in _KINDS.get(part.strip(), ())]
        # a bool is an int to isinstance: only a field of type bool takes one
        flag = isinstance(value, bool)
        if (flag and bool not in kinds) or not isinstance(value, tuple(kinds)):
            raise ValueError(f"{f.name}: expected {f.type}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ValueError(f"{f.name}: expected {f.type}")
        if f.name == "fail_status" and isinstance(value, int) and not 200 <= value <= 599:
            raise ValueError("fail_status: expected an HTTP status from 200 to 599")
        given[f.name] = value
    return cls(**given)


async def behaviour_from(request: web.Request, cls: type[_T]) -> _T | web.Response:
    """The behaviour a ``/_sim/behaviour`` request sets (see :func:`behaviour_of`), or the
    answer that refuses it: 400 (closing) for a body that cannot be read or is not JSON, 422
    for one that is no behaviour of ``cls``."""
    try:
        data = await json_of(request)
    except Unreadable as exc:
        return closing(web.json_response({"detail": str(exc)}, status=400))
    try:
        return behaviour_of(cls, data)
    except ValueError as exc:
        return web.json_response({"detail": str(exc)}, status=422)
