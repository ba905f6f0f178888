"""What a mapping's ``headers:`` section hands the SOAP adapter, inside the mapped request.

A mapping maps an application once, before the first attempt; a SOAP header may need values that
exist only per attempt (the attempt number, its time, a fresh message id). So the mapped request
carries two reserved keys besides the body's elements, and the adapter fills the rest per message:

* ``@headers``: the header values taken from the application and constants, as a tree keyed by
  the header parts' element names (``{"Cabecalho": {"Remetente": "TONGBAN"}}``);
* ``@exchange``: header paths filled per message from the exchange, ``{"Cabecalho.Enviado":
  "attempt_time"}``; the names are :data:`EXCHANGE_VALUES`.

No element name starts with ``@``, so neither key can be a body element. Both the mapping compiler
and the adapters import this module (they may not import each other).
"""

from __future__ import annotations

HEADERS_KEY = "@headers"
EXCHANGE_KEY = "@exchange"
# What ``from: exchange.<name>`` reads in a headers: section, and what each is:
EXCHANGE_VALUES = {
    "id": "the exchange id (the same on every attempt)",
    "idempotency_key": "the idempotency key (the same on every attempt)",
    "attempt": "the attempt number, 1 for the first",
    "attempt_time": "when the attempt is sent, as xs:dateTime in UTC",
    "message_id": "a new UUID for every message sent (each retry is a new message)",
    "traceparent": "the attempt's W3C trace context (empty when there is none)",
}
