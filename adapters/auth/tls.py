"""TLS client certificates: the SSL context a partner's session connects with."""

from __future__ import annotations

import ssl

from federation.config.auth import ClientCert


def client_context(cert: ClientCert) -> ssl.SSLContext:
    """A verifying client context presenting ``cert``; the key file is checked like any secret
    (owner-only) before OpenSSL reads it. Raises SecretError or ssl.SSLError."""
    cert.key.read_bytes()  # refuses a key file group or others may read, naming it
    context = ssl.create_default_context(cafile=str(cert.ca) if cert.ca else None)
    context.load_cert_chain(certfile=str(cert.cert), keyfile=str(cert.key.path))
    return context
