"""Mutual TLS: a partner files with its client certificate instead of a key."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme

from federation.api.net import server_tls
from federation.api.server import running_broker
from tests.integration.test_inbound import APPLICATION, LOCAL, MAPPING


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    """A throwaway CA, the broker's certificate for 127.0.0.1 and two partner certificates."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    hk = ca.issue_cert("hk.partner.example")
    stranger = ca.issue_cert("someone-else.example")
    files = {}
    for name, blob in (
        ("cert", server.cert_chain_pems[0]),
        ("key", server.private_key_pem),
        ("ca", ca.cert_pem),
    ):
        files[name] = tmp_path / f"{name}.pem"
        blob.write_to_path(str(files[name]))
    return {"ca": ca, "hk": hk, "stranger": stranger, "files": files}


def client_context(pki: dict[str, object], who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)  # type: ignore[attr-defined]
    if who is not None:
        pki[who].configure_cert(context)  # type: ignore[attr-defined]
    return context


def fingerprint(cert: trustme.LeafCert) -> str:
    return hashlib.sha256(
        ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    ).hexdigest()


@pytest.mark.parametrize(
    ("who", "status"),
    [("hk", 202), ("stranger", 403), (None, 401)],
    ids=["partner-certificate", "unknown-certificate", "no-certificate-no-key"],
)
async def test_client_certificate_authenticates_the_partner(
    make_config, simulators, tmp_path: Path, pki: dict[str, object], who: str | None, status: int
) -> None:
    """hk's certificate files without a key; another certificate of the same CA does not."""
    root: Path = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    inbound = (
        "    inbound:\n"
        f'      client_certs_sha256: ["{fingerprint(pki["hk"])}"]\n'  # type: ignore[arg-type]
        "      services:\n        GD-GA-RP-HK:\n          mapping: mappings/inbound-rp.yaml\n"
    )
    text = text.replace("partners:\n", LOCAL + "partners:\n", 1)
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + inbound, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING, encoding="utf-8")
    sims = await simulators(root)
    files: dict[str, Path] = pki["files"]  # type: ignore[assignment]
    tls = server_tls(str(files["cert"]), str(files["key"]), str(files["ca"]))
    async with running_broker(
        root=root,
        journal_path=tmp_path / "j.sqlite",
        port=0,
        endpoints={pid: s.url for pid, s in sims.items()},
        ssl_context=tls,
    ) as (_, url):
        assert url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=client_context(pki, who))
        async with aiohttp.ClientSession(base_url=url, connector=connector) as http:
            async with http.post(
                "/v1/partners/hk/applications",
                json={"service": "GD-GA-RP-HK", "application": APPLICATION},
                headers={"Idempotency-Key": "tls-1"},
            ) as r:
                assert r.status == status
