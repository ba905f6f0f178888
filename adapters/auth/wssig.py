"""WS-Security X.509 signatures (OASIS WSS 1.1 X.509 token profile) with a Timestamp.

Each attempt adds, in the envelope's ``wsse:Security`` header, a ``BinarySecurityToken`` holding our
certificate, a ``wsu:Timestamp`` (Created now, Expires after ``ttl``) and a detached XML signature
(exclusive C14N, SHA-256, RSA or ECDSA by the key) over the Body and the Timestamp, its KeyInfo a
``SecurityTokenReference`` to the token. signxml does the signing; a partner verifies with any
WS-Security stack. The key is read from its owner-only file at every attempt.
"""

from __future__ import annotations

import base64
import functools
import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree  # type: ignore[import-untyped]
from signxml import methods
from signxml.signer import XMLSigner

from adapters.envelope import SoapVersion
from federation.config.auth import WsSignature
from federation.config.secrets import SecretError
from federation.domain.errors import NotSent, Transcript

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class SigningFailed(Exception):
    """The key or certificate cannot sign (wrong format, a key that does not match)."""


def sign_envelope(data: bytes, spec: WsSignature, version: SoapVersion, now: datetime) -> bytes:
    """``data`` (a rendered envelope) with a Timestamp and an X.509 signature over it and the Body."""
    key_pem = spec.key.read_bytes()  # read each time: a rotated key applies to the next attempt
    try:
        cert = x509.load_pem_x509_certificate(spec.cert.read_bytes())
        key = _private_key(key_pem)
    except (ValueError, TypeError, OSError) as exc:
        raise SigningFailed(f"cannot load the WS-Security key or certificate: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "rsa-sha256"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = "ecdsa-sha256"
    else:
        raise SigningFailed("the WS-Security key is neither RSA nor EC")
    root = etree.fromstring(data, _PARSER)
    ids = {name: f"{name}-{secrets.token_hex(8)}" for name in ("Body", "TS", "X509")}
    security = _security(root, version)
    token = etree.SubElement(
        security,
        f"{{{WSSE}}}BinarySecurityToken",
        {"EncodingType": BASE64, "ValueType": X509V3, f"{{{WSU}}}Id": ids["X509"]},
    )
    token.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    stamp = etree.SubElement(security, f"{{{WSU}}}Timestamp", {f"{{{WSU}}}Id": ids["TS"]})
    etree.SubElement(stamp, f"{{{WSU}}}Created").text = _iso(now)
    etree.SubElement(stamp, f"{{{WSU}}}Expires").text = _iso(now + timedelta(seconds=spec.ttl))
    root.find(version.body).set(f"{{{WSU}}}Id", ids["Body"])
    signer = XMLSigner(
        method=methods.detached,
        signature_algorithm=algorithm,
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    try:
        signature = signer.sign(
            root,
            key=key,
            reference_uri=[f"#{ids['Body']}", f"#{ids['TS']}"],
            id_attribute="Id",
            key_info=_key_info(ids["X509"]),
        )
    except Exception as exc:  # signxml raises several types for one cause: the key cannot sign
        raise SigningFailed(f"cannot sign: {type(exc).__name__}: {exc}") from None
    security.append(signature)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return out


def sign_or_hold(
    data: bytes, spec: WsSignature, version: SoapVersion, partner: str, operation: str
) -> bytes:
    """:func:`sign_envelope` now; a key that cannot be read or cannot sign holds the exchange
    (:class:`NotSent`, naming why): nothing is sent unsigned. Blocking (it reads the key and
    certificate files, and signs): the adapter runs it in a thread."""
    try:
        return sign_envelope(data, spec, version, datetime.now(UTC))
    except (SecretError, SigningFailed) as exc:
        raise NotSent(
            f"not sent: WS-Security signature: {exc}",
            partner=partner,
            operation=operation,
            transcript=Transcript(request={"operation": operation, "sent": False}),
        ) from None


@functools.lru_cache(maxsize=8)
def _private_key(pem: bytes) -> PrivateKeyTypes:
    """The parsed key, kept while its file is unchanged: parsing an RSA key checks it, and that
    costs hundreds of milliseconds with recent OpenSSL."""
    return serialization.load_pem_private_key(pem, password=None)


def _security(root: etree._Element, version: SoapVersion) -> etree._Element:
    """The envelope's wsse:Security header block (made, with its Header, if there is none)."""
    header = root.find(version.header)
    if header is None:
        header = etree.Element(version.header)
        root.insert(0, header)
    security = header.find(f"{{{WSSE}}}Security")
    if security is None:
        must = "1" if version.name == "1.1" else "true"
        security = etree.SubElement(
            header, f"{{{WSSE}}}Security", {f"{{{version.ns}}}mustUnderstand": must}
        )
    return security


def _key_info(token_id: str) -> etree._Element:
    info = etree.Element(f"{{{DS}}}KeyInfo")
    ref = etree.SubElement(info, f"{{{WSSE}}}SecurityTokenReference")
    etree.SubElement(ref, f"{{{WSSE}}}Reference", {"URI": f"#{token_id}", "ValueType": X509V3})
    return info


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
