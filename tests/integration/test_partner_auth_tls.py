"""Certificates on outbound calls: a SOAP partner verifying our WS-Security X.509 signature with
signxml (a verifier we did not write), and a TLS partner that requires our client certificate."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidSignature

from adapters.auth.wssig import WSU, sign_envelope, sign_or_hold
from adapters.envelope import SOAP11 as V11
from adapters.registry import protocols
from adapters.rest import RestAdapter
from adapters.soap import username_token
from adapters.soapoptions import WSSE_NS
from federation.api.net import start_site
from federation.config import load_config
from federation.config.auth import WsSignature
from federation.config.secrets import SecretRef
from federation.domain.errors import TransientError
from federation.sim.gateway import Gateway
from tests.integration.test_partner_auth import hk, request, send, with_auth
from tests.integration.test_soap_adapter import request as soap_request
from tests.integration.test_soap_adapter import running, soap_root  # noqa: F401  (fixture)

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def write_key(path: Path, blob: trustme.Blob, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob.write_to_path(str(path))
    path.chmod(mode)
    return path


class VerifyingPartner:
    """A SOAP endpoint that checks each envelope's signature with signxml, then answers as the
    partner's simulator would."""

    def __init__(self, cert_pem: str, forward: str) -> None:
        self.cert_pem = cert_pem
        self.forward = forward
        self.verdicts: list[str] = []
        self.timestamps: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            results = XMLVerifier().verify(
                body, x509_cert=self.cert_pem, expect_references=2, id_attribute="Id"
            )
        except InvalidSignature as exc:
            self.verdicts.append(f"invalid: {exc}")
            return web.Response(status=500, text="signature")
        signed = sorted(etree.QName(r.signed_xml).localname for r in results)
        self.verdicts.append("+".join(signed))
        root = etree.fromstring(body)
        self.timestamps.append(root.findtext(f".//{{{WSU}}}Timestamp/{{{WSU}}}Created"))
        headers = {k: v for k, v in request.headers.items() if k in ("Content-Type", "SOAPAction")}
        async with (
            aiohttp.ClientSession() as s,
            s.post(self.forward, data=body, headers=headers) as resp,
        ):
            return web.Response(
                status=resp.status, body=await resp.read(), content_type="text/xml", charset="utf-8"
            )


async def test_ws_security_signature_verifies_with_signxml(soap_root, tmp_path: Path) -> None:  # noqa: F811
    """Each attempt carries a signature over Body and Timestamp that signxml accepts; a tampered
    envelope does not verify; the transcript holds no signature value."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ours = ca.issue_cert("tongban.example", key_type=trustme.KeyType.RSA)
    root = soap_root(
        hk_extra="    auth:\n      ws_signature: {cert: certs/ours.pem, key: '{file:certs/ours.key}'}"
    )
    (root / "certs").mkdir()
    ours.cert_chain_pems[0].write_to_path(str(root / "certs" / "ours.pem"))
    write_key(root / "certs" / "ours.key", ours.private_key_pem)
    cert_pem = ours.cert_chain_pems[0].bytes().decode()
    async with running(root) as probe:  # the plain simulator, to forward verified envelopes to
        partner = VerifyingPartner(cert_pem, probe.sims["hk"].url)
        app = web.Application()
        app.router.add_post("/{tail:.*}", partner.handle)
        runner, url = await start_site(app, "127.0.0.1", 0, access_log=None)
        try:
            async with running(root, endpoints={"hk": url}) as rig:
                first = await rig.adapters["hk"].send(soap_request("hk"))
                second = await rig.adapters["hk"].send(soap_request("hk", attempt=2))
        finally:
            await runner.cleanup()
    assert partner.verdicts == ["Body+Timestamp", "Body+Timestamp"]
    assert all(partner.timestamps)  # each attempt stamped when it was signed
    assert first.status == 200 and second.status == 200
    assert "SignatureValue" not in repr(first.transcript)
    assert "ws_signature" in first.transcript.request


def test_a_tampered_signed_envelope_fails_signxml(tmp_path: Path) -> None:
    """Changing the signed Body after signing is caught by the independent verifier."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ours = ca.issue_cert("tongban.example", key_type=trustme.KeyType.RSA)
    cert = tmp_path / "c.pem"
    ours.cert_chain_pems[0].write_to_path(str(cert))
    write_key(tmp_path / "k.pem", ours.private_key_pem)
    spec = WsSignature(cert=cert, key=SecretRef(kind="file", name="k.pem", base=tmp_path))
    envelope = (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP11}"><soap-env:Header/>'
        '<soap-env:Body><a xmlns="urn:x">陳大文</a></soap-env:Body></soap-env:Envelope>'
    ).encode()
    signed = sign_envelope(envelope, spec, V11, datetime.now(UTC))
    pem = ours.cert_chain_pems[0].bytes().decode()
    XMLVerifier().verify(signed, x509_cert=pem, expect_references=2, id_attribute="Id")
    tampered = signed.replace("陳大文".encode(), "陈大文".encode())
    assert tampered != signed
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(tampered, x509_cert=pem, expect_references=2, id_attribute="Id")


async def test_soap_partner_gets_the_api_key_header_never_the_transcript(
    soap_root,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SOAP partner's api_key travels as its header on each attempt and is redacted in the
    transcript; without the variable nothing is sent."""
    monkeypatch.setenv("TB_SOAP_KEY", "soap-api-key-0c4e")
    root = soap_root(
        hk_extra='    auth:\n      api_key: {header: X-Gw-Key, key: "{env:TB_SOAP_KEY}"}'
    )
    seen: list[str | None] = []
    async with running(root) as probe:
        target = probe.sims["hk"].url

        async def handle(request: web.Request) -> web.Response:
            seen.append(request.headers.get("X-Gw-Key"))
            body = await request.read()
            headers = {k: request.headers[k] for k in ("Content-Type", "SOAPAction")}
            async with (
                aiohttp.ClientSession() as s,
                s.post(target, data=body, headers=headers) as resp,
            ):
                return web.Response(
                    status=resp.status,
                    body=await resp.read(),
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                )

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner, url = await start_site(app, "127.0.0.1", 0, access_log=None)
        try:
            async with running(root, endpoints={"hk": url}) as rig:
                reply = await rig.adapters["hk"].send(soap_request("hk"))
                monkeypatch.delenv("TB_SOAP_KEY")
                with pytest.raises(TransientError, match="TB_SOAP_KEY is not set"):
                    await rig.adapters["hk"].send(soap_request("hk", attempt=2))
        finally:
            await runner.cleanup()
    assert seen == ["soap-api-key-0c4e"]
    assert reply.status == 200
    assert reply.transcript.request["headers"]["X-Gw-Key"] == "<redacted>"
    assert "soap-api-key-0c4e" not in repr(reply.transcript)


@pytest.fixture
async def tls_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, trustme.CA]]:
    """A gateway on TLS that requires a client certificate from the same throwaway CA."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    gw = Gateway()
    await gw.start(ssl_context=context)
    yield gw, ca
    await gw.stop()


CLIENT_CERT = """
client_cert:
  cert: certs/client.pem
  key: "{file:certs/client.key}"
  ca: certs/ca.pem
"""


async def test_client_certificate_is_presented_to_a_tls_partner(make_config, tls_gateway) -> None:
    """With auth.client_cert the partner sees our certificate; without it the handshake fails."""
    gw, ca = tls_gateway
    client = ca.issue_cert("tongban-client.example", common_name="tongban-client")
    root = with_auth(make_config, CLIENT_CERT)
    (root / "certs").mkdir()
    client.cert_chain_pems[0].write_to_path(str(root / "certs" / "client.pem"))
    ca.cert_pem.write_to_path(str(root / "certs" / "ca.pem"))
    write_key(root / "certs" / "client.key", client.private_key_pem)
    (reply,) = await send(hk(root, gw.url + "/open"), request())
    assert reply.status == 200
    assert [a.peer for a in gw.log] == ["tongban-client"]
    bare = load_config(make_config(), protocols()).partners["hk"]
    adapter = RestAdapter(replace(bare, endpoint=gw.url + "/open"))
    await adapter.start()
    try:
        with pytest.raises(TransientError):
            await adapter.send(request())
    finally:
        await adapter.close()
    assert len(gw.log) == 1  # the connection without a certificate never got through


async def test_a_client_key_others_may_read_holds_every_attempt(make_config, tls_gateway) -> None:
    """A private key file with mode 0644: each attempt is held naming the file, nothing is sent."""
    gw, ca = tls_gateway
    client = ca.issue_cert("tongban-client.example")
    root = with_auth(make_config, CLIENT_CERT)
    (root / "certs").mkdir()
    client.cert_chain_pems[0].write_to_path(str(root / "certs" / "client.pem"))
    ca.cert_pem.write_to_path(str(root / "certs" / "ca.pem"))
    write_key(root / "certs" / "client.key", client.private_key_pem, mode=0o644)
    (err,) = await send(hk(root, gw.url + "/open"), request())
    assert isinstance(err, TransientError)
    assert "not sent: client certificate: secret {file:certs/client.key}" in str(err)
    assert "may be read by group or others" in str(err)
    assert gw.log == []


def test_the_signature_joins_a_username_token_in_one_security_header(tmp_path: Path) -> None:
    """With a UsernameToken already in the header, the signature goes in the same wsse:Security
    block (one block, as WS-Security requires) and still verifies."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ours = ca.issue_cert("tongban.example", key_type=trustme.KeyType.RSA)
    cert = tmp_path / "c.pem"
    ours.cert_chain_pems[0].write_to_path(str(cert))
    write_key(tmp_path / "k.pem", ours.private_key_pem)
    spec = WsSignature(cert=cert, key=SecretRef(kind="file", name="k.pem", base=tmp_path))
    token = username_token("tongban-gba", "pw", V11)
    envelope = (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP11}"><soap-env:Header>{token}</soap-env:Header>'
        '<soap-env:Body><a xmlns="urn:x">1</a></soap-env:Body></soap-env:Envelope>'
    ).encode()
    signed = sign_envelope(envelope, spec, V11, datetime.now(UTC))
    root = etree.fromstring(signed)
    blocks = root.findall(f"{{{SOAP11}}}Header/{{{WSSE_NS}}}Security")
    assert len(blocks) == 1
    names = [etree.QName(child).localname for child in blocks[0]]
    assert names == ["UsernameToken", "BinarySecurityToken", "Timestamp", "Signature"]
    pem = ours.cert_chain_pems[0].bytes().decode()
    XMLVerifier().verify(signed, x509_cert=pem, expect_references=2, id_attribute="Id")


def test_a_signing_key_others_may_read_holds_the_envelope(tmp_path: Path) -> None:
    """A WS-Security key file with mode 0644 is refused: the attempt is held, naming the file."""
    ca = trustme.CA()
    ours = ca.issue_cert("tongban.example")
    cert = tmp_path / "c.pem"
    ours.cert_chain_pems[0].write_to_path(str(cert))
    write_key(tmp_path / "k.pem", ours.private_key_pem, mode=0o644)
    spec = WsSignature(cert=cert, key=SecretRef(kind="file", name="k.pem", base=tmp_path))
    envelope = f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/></e:Envelope>'.encode()
    with pytest.raises(TransientError) as caught:
        sign_or_hold(envelope, spec, V11, "mo", "PedirCertificado")
    assert "not sent: WS-Security signature: secret {file:k.pem}" in str(caught.value)
    assert "group or others" in str(caught.value)
