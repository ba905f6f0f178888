"""An inbound service item's ``report:``: where the partner hears our word on what it filed.

The mapping's ``report:`` section writes the notice in the partner's own format; this says how it
travels, over the partner's own protocol::

    inbound:
      callback: https://gateway.gba-exchange.gov.hk/tongban/notices
      services:
        GD-GA-RP-HK:
          mapping: mappings/hk/inbound-talent-residence-permit.yaml
          report:
            path: /residence-permits          # REST: POSTed as JSON under inbound.callback
            reply: {code: result_code, success: {code: ["0000"]}}

    inbound:
      services:
        GD-HQ-BR-MO:
          report: {operation: NotificarDecisao}   # SOAP: an operation of the partner's WSDL

``reply:`` reads the partner's answer to a notice as for any delivery (docs/delivery.md).
"""

from __future__ import annotations

import re
from typing import Any

from federation.config.model import NoticeRoute
from federation.config.reader import Reader
from federation.config.replies import parse_reply
from federation.config.yamlsrc import PathKey
from federation.domain.texts import said

URL_PATH_RE = re.compile(r"/[^\s?#]*")
OPERATION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def parse_report(
    r: Reader, path: PathKey, raw: Any, *, protocol: str | None, callback: str | None
) -> NoticeRoute | None:
    """The ``report:`` of an inbound service item of a partner speaking ``protocol``."""
    m = r.mapping(path, raw, optional=("path", "operation", "reply"))
    if m is None:
        return None
    if ("path" in m) == ("operation" in m):
        r.error(path, said("give either path (REST, under inbound.callback) or operation (SOAP)"))
        return None
    soap = "operation" in m
    reply = parse_reply(r, (*path, "reply"), m.get("reply"), None, soap=soap)
    if soap:
        if protocol != "soap":
            r.error(
                (*path, "operation"),
                said(
                    "a SOAP operation needs a SOAP partner (this one speaks %(protocol)s): "
                    "give a REST path instead",
                    protocol=protocol,
                ),
            )
            return None
        name = r.text((*path, "operation"), m["operation"], pattern=OPERATION_RE)
        return NoticeRoute(operation=name, reply=reply) if name else None
    url_path = r.text((*path, "path"), m["path"], pattern=URL_PATH_RE, what=said("a URL path"))
    if callback is None:
        r.error(
            (*path, "path"),
            said("a REST notice is POSTed under the partner's inbound.callback: give that URL"),
        )
        return None
    return NoticeRoute(path=url_path, reply=reply) if url_path else None
