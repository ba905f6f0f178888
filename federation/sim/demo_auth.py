"""Partner credentials in the demo: gateways in front of the partners whose ``auth:`` asks for them.

A partner that signs its requests (``auth.signing``) gets a :class:`~federation.sim.gateway.Gateway`
checking the signature before its simulator sees the request; one that presents a client
certificate (``auth.client_cert``) gets a TLS gateway that refuses connections without one. The
demo makes what a deployment would be handed: a random signing secret in the environment variable
partners.yaml names (when it is not set), and a throwaway CA, server certificate and client
certificate and key (0600) at the paths partners.yaml names, in a copy of the configuration
directory (hidden entries left out), so the real one is never written to.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import ssl
from collections.abc import MutableMapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.config import Config, Partner
from federation.config.auth import Signing
from federation.sim.gateway import AppKey, Gateway

_HASH = {"hmac-sha256": "sha256", "hmac-sm3": "sm3"}


def needs_gateway(partner: Partner) -> bool:
    """Whether the demo puts a gateway in front of ``partner``."""
    auth = partner.auth
    return auth is not None and (
        (isinstance(auth.scheme, Signing) and auth.scheme.algorithm in _HASH)
        or auth.client_cert is not None
    )


def prepare(config: Config, tmp: Path) -> Path:
    """A configuration directory for the demo's broker: a copy of the real one with the
    certificates partners.yaml names written; signing secrets set in the environment."""
    root = tmp / "config"
    root.mkdir()
    skip = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info")
    for entry in config.root.iterdir():
        if entry.name.startswith(".") or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, root / entry.name, ignore=skip, symlinks=True)
        else:
            shutil.copy2(entry, root / entry.name)
    for partner in config.partners.values():
        auth = partner.auth
        if (
            auth is not None
            and isinstance(auth.scheme, Signing)
            and auth.scheme.secret.kind == "env"
        ):
            os.environ.setdefault(auth.scheme.secret.name, secrets.token_hex(24))
        if auth is not None and auth.client_cert is not None:
            cc = auth.client_cert
            relative = {
                "cert": cc.cert.relative_to(config.root.resolve()),
                "key": cc.key.path.relative_to(config.root.resolve()),
                "ca": (cc.ca or cc.cert).relative_to(config.root.resolve()),
            }
            _write_pki(root, relative, tmp / f"server-{partner.id}")
    return root


async def start_gateways(
    config: Config, endpoints: MutableMapping[str, str], tmp: Path
) -> tuple[Path, list[Gateway]]:
    """The demo broker's configuration directory (:func:`prepare`) and a started gateway before
    each partner that needs one; ``endpoints`` then point at the gateways."""
    root = prepare(config, tmp)
    started: list[Gateway] = []
    for pid, partner in config.partners.items():
        if pid not in endpoints or not needs_gateway(partner):
            continue
        auth = partner.auth
        assert auth is not None
        context: ssl.SSLContext | None = None
        if isinstance(auth.scheme, Signing):
            key = AppKey(secret=auth.scheme.secret.read_bytes(), hash=_HASH[auth.scheme.algorithm])
            gw = Gateway(
                app_keys={auth.scheme.app_key: key}, guard="signed", upstream=endpoints[pid]
            )
        else:
            gw = Gateway(guard="open", upstream=endpoints[pid])
            context = _server_context(tmp / f"server-{pid}")
        gw.label = pid
        endpoints[pid] = await gw.start(ssl_context=context)
        started.append(gw)
    return root, started


async def stop_all(gateways: list[Gateway]) -> None:
    """Stop every gateway :func:`start_gateways` started."""
    for gw in gateways:
        await gw.stop()


def describe(gateways: list[Gateway]) -> list[str]:
    """One line per gateway: what it checked and what it let through, for the demo's output."""
    lines = []
    for gw in gateways:
        passed = sum(1 for a in gw.log if a.verdict == "ok")
        if gw.guard == "signed":
            what = f"{passed} of {len(gw.log)} signed requests verified by the partner's gateway"
        else:
            peers = sorted({a.peer or "" for a in gw.log})
            what = f"{passed} requests over mutual TLS, client certificate {', '.join(peers)}"
        lines.append(f"{gw.label}: {what}")
    return lines


def _server_context(folder: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(folder / "ca.pem"))
    context.load_cert_chain(str(folder / "server.pem"), str(folder / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _write_pki(root: Path, relative: dict[str, Path], server: Path) -> None:
    """A CA, a client certificate and key (at partners.yaml's paths under ``root``) and a server
    certificate for 127.0.0.1 (under ``server``)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tongban demo CA")])
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tongban demo client")])
    client = _certificate(client_name, ca_name, client_key.public_key(), ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    alt = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server_cert = _certificate(server_name, ca_name, server_key.public_key(), ca_key, alt=alt)
    server.mkdir()
    files = {
        root / relative["ca"]: _pem(ca),
        root / relative["cert"]: _pem(client),
        root / relative["key"]: _key(client_key),
        server / "ca.pem": _pem(ca),
        server / "server.pem": _pem(server_cert),
        server / "server.key": _key(server_key),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o600)


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    alt: x509.SubjectAlternativeName | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if alt is not None:
        builder = builder.add_extension(alt, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
