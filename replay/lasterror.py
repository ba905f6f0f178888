"""An exchange's ``last_error`` as its row keeps it: our words in clear, the partner's and the
problems sealed.

A partner's refusal can quote the application (``federation/domain/words.py``), so its words are
sealed in the row as its events are (``replay/seal.py``, no context: a row is read without its
events in a search), bound to the exchange's id, so that a value moved to another row does not
open. The rest stays clear JSON: a search by error reads the kind and our words in SQL
(``replay/search.py``), which never look at the partner's words anyway::

    {"kind": …, "message": "<ours>", "status": 400, "partner_sealed": "~tb3.<id>.<…>", "form": 2}

``partner_sealed`` takes ``partner_message``'s place among the keys, so an opened error is the
one written, keys in the same order. Only errors that hold the partner's words apart (``form``)
are sealed: an older one has them folded into its ``message``, and a search reads it as it was
written. Rows written before (``partner_message`` in clear) read as they are; a rekey seals them.
An unkeyed journal keeps them in clear, as it keeps its events.

A mapping's ``problems`` (an application that does not map, a partner's reply that does not) are
sealed the same way (``problems_sealed``, bound to being the problems): their messages can quote
the value they are about (``'陳大文' is not a whole number``, a code a partner wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from federation.domain.errors import JournalDamaged
from federation.domain.models import json_default
from federation.domain.words import FORM
from replay.seal import PREFIXES, Seal, as_text, error_aad, from_text

CLEAR = "partner_message"
SEALED = "partner_sealed"
PROBLEMS = "problems"  # a mapping's problems (the application's, or the partner's reply's)
PROBLEMS_SEALED = "problems_sealed"
# Each clear key, where it goes sealed, and what its value is bound to besides the exchange.
_PAIRS = ((CLEAR, SEALED, b""), (PROBLEMS, PROBLEMS_SEALED, b"problems"))
_WHAT = {SEALED: "the partner's words", PROBLEMS_SEALED: "the problems"}


def column(seal: Seal, exchange_id: str, error: Mapping[str, Any] | None) -> bytes | None:
    """``error`` as the ``last_error`` column stores it (None stays None: the column is kept)."""
    return None if error is None else _dumps(sealed(seal, exchange_id, error))


def sealed(seal: Seal, exchange_id: str, error: Mapping[str, Any]) -> dict[str, Any]:
    """``error`` with the partner's words and the problems sealed in their places (when keyed)."""
    out: dict[str, Any] = {}
    for key, value in error.items():
        pair = next((p for p in _PAIRS if p[0] == key and _sealable(seal, error, key)), None)
        if pair is None:
            out[key] = value
        else:
            out[pair[1]] = as_text(seal.seal(_dumps(value), _aad(exchange_id, pair[2])))
    return out


def holds_sealed(error: Mapping[str, Any]) -> bool:
    """Whether ``error`` (as :func:`sealed` gives it) holds a sealed value."""
    return any(closed in error for _, closed, _ in _PAIRS)


def opened(seal: Seal, exchange_id: str, error: Any) -> Any:
    """The error a ``last_error`` column holds (its JSON read), what is sealed in it opened."""
    if not isinstance(error, dict) or not holds_sealed(error):
        return error
    out: dict[str, Any] = {}
    for key, value in error.items():
        pair = next((p for p in _PAIRS if p[1] == key), None)
        if pair is None:
            out[key] = value
        else:
            what = f"{_WHAT[key]} in the last error of exchange {exchange_id}"
            out[pair[0]] = _open(seal, value, _aad(exchange_id, pair[2]), what)
    return out


def resealed(old: Seal, new: Seal, exchange_id: str, error: Any) -> bytes | None:
    """A ``last_error`` column (its JSON read) as ``new`` seals it, for a rekey: what is sealed
    sealed again, or for the first time where a row written before keeps it in clear; None when
    the column has nothing to seal."""
    if not isinstance(error, dict):
        return None
    if not holds_sealed(error) and not any(_sealable(new, error, k) for k, _, _ in _PAIRS):
        return None
    return column(new, exchange_id, opened(old, exchange_id, error))


def _open(seal: Seal, value: Any, aad: bytes, what: str) -> Any:
    try:
        raw = from_text(str(value))
    except ValueError:
        raise JournalDamaged(f"{what} are not a well-formed sealed value (altered?)") from None
    if not raw.startswith(PREFIXES):  # only a keyed journal writes the key: never clear words
        raise JournalDamaged(f"{what} are not sealed (altered?)")
    try:
        return orjson.loads(seal.open(raw, aad, what))
    except orjson.JSONDecodeError:
        raise JournalDamaged(f"{what} do not parse (altered?)") from None


def _aad(exchange_id: str, part: bytes) -> bytes:
    """The partner's words are bound to the row (as first written); the problems to the row and
    to being the problems, so that neither opens in the other's place."""
    return error_aad(exchange_id) + (b"\0" + part if part else b"")


def _sealable(seal: Seal, error: Mapping[str, Any], key: str) -> bool:
    """Whether ``error`` holds ``key`` in clear for a keyed ``seal`` to seal: the partner's words
    when kept apart from ours (``form``); problems whenever there are any."""
    if not seal.keyed:
        return False
    if key == CLEAR:
        return error.get("form") == FORM and error.get(CLEAR) not in (None, "")
    return key == PROBLEMS and isinstance(error.get(PROBLEMS), list) and bool(error[PROBLEMS])


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=json_default)  # as ``replay.rows.dumps``
