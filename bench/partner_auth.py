"""What signing every attempt costs: the request signature and the WS-Security X.509 signature.

In one run, on the same request: the baseline prepares an unsigned attempt (the body's canonical
JSON and its SHA-256, as the REST adapter does for the transcript); the signed variants add a
fresh timestamp, nonce and HMAC-SHA256 or HMAC-SM3 signature (``adapters.auth.signing.sign``).
For SOAP, the baseline parses and writes the envelope back (lxml), the signed variant adds the
Timestamp and the RSA-SHA256 signature over Body and Timestamp (``adapters.auth.wssig``).
The rounds alternate; the median round counts.

    .venv/bin/python bench/partner_auth.py [--n 3000] [--rounds 5]

Last line: ``RESULT name=partner_auth sign_sha256_us=… sign_sm3_us=… plain_us=… wss_ms=…
xml_ms=…`` (microseconds or milliseconds per attempt).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from adapters.auth.signing import sign
from adapters.auth.wssig import sign_envelope
from adapters.envelope import SOAP11
from federation.config.auth import Signing, WsSignature
from federation.config.secrets import SecretRef
from federation.domain.models import canonical_json

PAYLOAD = {
    "sqrxm": "余丽萍",
    "sfzhm": "510104199307070153",
    "tqje": "12800.00",
    "items": [{"n": i, "v": "x" * 40} for i in range(20)],
}
URL = "https://gateway.example/kstb/api/v1/hjqr/sq?channel=gba"
ENVELOPE = (
    f'<soap-env:Envelope xmlns:soap-env="{SOAP11.ns}"><soap-env:Header/><soap-env:Body>'
    '<a xmlns="urn:x"><name>陳大文</name><id>K802133</id></a></soap-env:Body></soap-env:Envelope>'
).encode()


def per_call(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def wss_spec(folder: Path) -> WsSignature:
    """A self-signed RSA certificate and its owner-only key file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now.replace(year=now.year + 1))
        .sign(key, hashes.SHA256())
    )
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k = folder / "k.pem"
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    k.chmod(0o600)
    return WsSignature(cert=folder / "c.pem", key=SecretRef(kind="file", name="k.pem", base=folder))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ref = SecretRef(kind="env", name="UNUSED")
    sha = Signing(app_key="ak", secret=ref)
    sm3 = Signing(app_key="ak", secret=ref, algorithm="hmac-sm3", body_digest="sm3")
    secret = b"bench-secret-0123456789"

    def plain() -> object:
        body = canonical_json(PAYLOAD)
        return hashlib.sha256(body).hexdigest(), {"Content-Type": "application/json"}

    def signed(spec: Signing) -> Callable[[], object]:
        def run() -> object:
            body = canonical_json(PAYLOAD)
            hashlib.sha256(body).hexdigest()
            return sign(
                spec, secret, method="POST", url=URL, headers={}, body=body, now=time.time()
            )

        return run

    rounds: dict[str, list[float]] = {k: [] for k in ("plain", "sha256", "sm3", "xml", "wss")}
    with tempfile.TemporaryDirectory() as tmp:
        spec = wss_spec(Path(tmp))
        small = max(1, args.n // 20)
        for _ in range(args.rounds):
            rounds["plain"].append(per_call(plain, args.n))
            rounds["sha256"].append(per_call(signed(sha), args.n))
            rounds["sm3"].append(per_call(signed(sm3), args.n))
            rounds["xml"].append(
                per_call(lambda: etree.tostring(etree.fromstring(ENVELOPE)), small)
            )
            rounds["wss"].append(
                per_call(lambda: sign_envelope(ENVELOPE, spec, SOAP11, datetime.now(UTC)), small)
            )
    m = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"unsigned attempt  {m['plain'] * 1e6:8.1f} us")
    print(f"HMAC-SHA256       {m['sha256'] * 1e6:8.1f} us")
    print(f"HMAC-SM3          {m['sm3'] * 1e6:8.1f} us")
    print(f"SOAP parse+write  {m['xml'] * 1e3:8.3f} ms")
    print(f"WS-Security X.509 {m['wss'] * 1e3:8.3f} ms")
    print(
        f"RESULT name=partner_auth sign_sha256_us={m['sha256'] * 1e6:.1f} "
        f"sign_sm3_us={m['sm3'] * 1e6:.1f} plain_us={m['plain'] * 1e6:.1f} "
        f"wss_ms={m['wss'] * 1e3:.3f} xml_ms={m['xml'] * 1e3:.3f}"
    )


if __name__ == "__main__":
    main()
