"""Outbound credentials: what each attempt carries to prove who we are.

``digests`` (SHA-256, SM3, their HMACs), ``signing`` (declarative request signatures), ``oauth``
(client-credentials tokens, cached until they expire), ``tls`` (client certificates), ``wssig``
(WS-Security X.509 signatures with a Timestamp) and ``credentials``, which an adapter asks once per
attempt for the headers to add. Secrets are read when used (``federation.config.secrets``) and
never reach the transcript: what it keeps is :data:`REDACTED`.
"""

from __future__ import annotations

REDACTED = "<redacted>"
