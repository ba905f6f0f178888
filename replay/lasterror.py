"""An exchange's ``last_error`` as its row keeps it: our words in clear, the partner's sealed.

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


def column(seal: Seal, exchange_id: str, error: Mapping[str, Any] | None) -> bytes | None:
    """``error`` as the ``last_error`` column stores it (None stays None: the column is kept)."""
    return None if error is None else _dumps(sealed(seal, exchange_id, error))


def sealed(seal: Seal, exchange_id: str, error: Mapping[str, Any]) -> dict[str, Any]:
    """``error`` with the partner's words sealed in ``partner_message``'s place (when keyed)."""
    if not _sealable(seal, error):
        return dict(error)
    value = as_text(seal.seal(_dumps(error[CLEAR]), error_aad(exchange_id)))
    return {(SEALED if k == CLEAR else k): (value if k == CLEAR else v) for k, v in error.items()}


def opened(seal: Seal, exchange_id: str, error: Any) -> Any:
    """The error a ``last_error`` column holds (its JSON read), the partner's words opened."""
    if not isinstance(error, dict) or SEALED not in error:
        return error
    what = f"the partner's words in the last error of exchange {exchange_id}"
    try:
        raw = from_text(str(error[SEALED]))
    except ValueError:
        raise JournalDamaged(f"{what} are not a well-formed sealed value (altered?)") from None
    if not raw.startswith(PREFIXES):  # only a keyed journal writes the key: never clear words
        raise JournalDamaged(f"{what} are not sealed (altered?)")
    try:
        said = orjson.loads(seal.open(raw, error_aad(exchange_id), what))
    except orjson.JSONDecodeError:
        raise JournalDamaged(f"{what} do not parse (altered?)") from None
    return {(CLEAR if k == SEALED else k): (said if k == SEALED else v) for k, v in error.items()}


def resealed(old: Seal, new: Seal, exchange_id: str, error: Any) -> bytes | None:
    """A ``last_error`` column (its JSON read) as ``new`` seals it, for a rekey: the partner's
    words sealed again, or for the first time where a row written before keeps them in clear;
    None when the column has nothing to seal."""
    if not isinstance(error, dict) or (SEALED not in error and not _sealable(new, error)):
        return None
    return column(new, exchange_id, opened(old, exchange_id, error))


def _sealable(seal: Seal, error: Mapping[str, Any]) -> bool:
    """Whether ``error`` holds the partner's words apart, in clear, for a keyed ``seal``."""
    return seal.keyed and error.get("form") == FORM and error.get(CLEAR) not in (None, "")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=json_default)  # as ``replay.rows.dumps``
