"""Whose words an error holds: ours, which everyone may read, and the partner's, which may not.

A partner's refusal can quote the application (``证件号码 A123456(3) 陳大文 不合法``), so what it
said is personal data as far as tongban can tell. An adapter error keeps the two apart: its
``message`` is tongban's own account (``gd refused the request with HTTP 400``), and the partner's
text (a reply body's ``detail`` or ``msg``, a SOAP fault's reason, the message its reply rules read)
is ``partner_message``. The journal keeps them apart too, and each edge (API, console, CLI,
callbacks) composes the text a reader sees with :func:`shown_error`, the partner's words in clear
only for a reader who may reveal.

Errors journalled before carry no ``form``: their ``message`` has the partner's words folded in.
Those of a partner that answered (a ``status`` or a ``partner_message``) are split where every
such message put them, after the first ``": "`` (``gd refused the request with HTTP 400: …``,
``… with SOAP fault soap:Client: …``, ``… with code E102: …``); the rest is theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORM = 2  # an error's ``form``: the partner's words apart from ours (none: written before)
SEPARATOR = ": "


def recorded(error: Mapping[str, Any]) -> dict[str, Any]:
    """``error`` as the journal keeps it: marked as holding the partner's words apart."""
    return {**error, "form": FORM}


def parts(error: Mapping[str, Any]) -> tuple[str, str | None]:
    """Our words and the partner's (None when it said nothing we keep) of a journalled error."""
    message = str(error.get("message", ""))
    said = error.get("partner_message")
    theirs = str(said) if said not in (None, "") else None
    if error.get("form") == FORM:
        return message, theirs
    if error.get("status") is None and theirs is None:
        return message, None  # the partner never answered: a connection, a mapping, a timeout
    ours, found, rest = message.partition(SEPARATOR)
    return ours, (rest if found else theirs)


def searchable(error: Mapping[str, Any]) -> str:
    """What a search by error looks in: the kind and our words, never the partner's."""
    return f"{error.get('kind') or ''} {parts(error)[0]}"


def shown_error(
    error: Mapping[str, Any] | None, *, clear: bool, mask: str
) -> dict[str, Any] | None:
    """The error as a reader sees it: ``message`` our words, then the partner's (``mask`` in their
    place unless ``clear``), and ``partner_message`` alike; the messages of its ``problems``
    masked unless ``clear`` (:func:`masked_problems`); the rest as journalled."""
    if error is None:
        return None
    ours, theirs = parts(error)
    view = {k: v for k, v in error.items() if k != "form"}
    if not clear and isinstance(view.get("problems"), list):
        view["problems"] = masked_problems(view["problems"], mask)
    if theirs is None:
        view["message"] = ours
        return view
    said = theirs if clear else mask
    view["message"] = f"{ours}{SEPARATOR}{said}"
    if "partner_message" in error:
        view["partner_message"] = said
    return view


def masked_problems(problems: list[Any], mask: str) -> list[Any]:
    """An error's problems (a mapping's, of the application or of the partner's reply) with
    their messages masked: a message can quote the value it is about (``'陳大文 A123456(3)' is not
    in code table status``); where each one is (path, file, line) stays."""
    return [
        {**p, "message": mask} if isinstance(p, Mapping) and "message" in p else p for p in problems
    ]


def shown_in(data: Mapping[str, Any], *, clear: bool, mask: str) -> dict[str, Any]:
    """An event's data with its ``error`` (if any) as :func:`shown_error` shows it, and a
    lifecycle step's ``note`` (the handling side's free text about the application, ``请补充住址
    证明``) masked unless ``clear``; a resubmission's note, ours, kept."""
    out = dict(data)
    error = data.get("error")
    if isinstance(error, Mapping):
        out["error"] = shown_error(error, clear=clear, mask=mask)
    if not clear and "lifecycle" in data and "note" in data and "supplement" not in data:
        out["note"] = mask
    return out
