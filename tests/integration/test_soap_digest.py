"""The transcript's digest of a SOAP envelope whose header carries secrets given by reference: of
the envelope without the header blocks that carry them, never of one holding the secret in any
written form (an attribute escapes quotes; xs:int writes 0042 as 42)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from adapters.base import OutboundRequest
from adapters.registry import protocols
from adapters.soap import SoapAdapter
from federation.api.net import start_site
from federation.config import load_config

NS = "urn:tb:digest"
TOKEN = 'a"b&c<d>-7f'  # as an attribute: a&quot;b&amp;c&lt;d&gt;-7f
PIN = "0042"  # as an xs:int: 42
WSDL = f"""\
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="{NS}" targetNamespace="{NS}">
  <types>
    <xs:schema targetNamespace="{NS}" elementFormDefault="qualified">
      <xs:element name="Auth"><xs:complexType>
        <xs:sequence><xs:element name="Pin" type="xs:int"/></xs:sequence>
        <xs:attribute name="token" type="xs:string" use="required"/>
      </xs:complexType></xs:element>
      <xs:element name="Trace"><xs:complexType>
        <xs:sequence><xs:element name="Key" type="xs:string"/></xs:sequence>
      </xs:complexType></xs:element>
      <xs:element name="Submit"><xs:complexType>
        <xs:sequence><xs:element name="name" type="xs:string"/></xs:sequence>
      </xs:complexType></xs:element>
      <xs:element name="SubmitResponse"><xs:complexType>
        <xs:sequence><xs:element name="ok" type="xs:string"/></xs:sequence>
      </xs:complexType></xs:element>
    </xs:schema>
  </types>
  <message name="SubmitIn">
    <part name="body" element="t:Submit"/><part name="auth" element="t:Auth"/>
    <part name="trace" element="t:Trace"/>
  </message>
  <message name="SubmitOut"><part name="body" element="t:SubmitResponse"/></message>
  <portType name="P"><operation name="Submit">
    <input message="t:SubmitIn"/><output message="t:SubmitOut"/>
  </operation></portType>
  <binding name="B" type="t:P">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Submit"><soap:operation soapAction="urn:submit"/>
      <input><soap:body use="literal" parts="body"/>
        <soap:header message="t:SubmitIn" part="auth" use="literal"/>
        <soap:header message="t:SubmitIn" part="trace" use="literal"/>
      </input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="S"><port name="Port" binding="t:B"><soap:address location="http://x/"/></port></service>
</definitions>
"""
PARTNERS = f"""\
version: 1
partners:
  - id: dg
    name: {{zh: 测试, en: Digest test}}
    region: {{code: "44", iso: CN-GD}}
    protocol: soap
    endpoint: https://dg.example.gov.cn/soap
    soap:
      wsdl: dg.wsdl
      idempotency: {{header: "{{{NS}}}Trace/Key"}}
      headers:
        "{{{NS}}}Auth/@token": "{{env:TB_DIGEST_TOKEN}}"
        "{{{NS}}}Auth/Pin": "{{env:TB_DIGEST_PIN}}"
    services:
      DG-1: {{mapping: mappings/dg.yaml, operation: Submit}}
"""
REPLY = (
    f'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
    f'<SubmitResponse xmlns="{NS}"><ok>yes</ok></SubmitResponse></e:Body></e:Envelope>'
).encode()


async def test_the_digest_is_of_the_envelope_without_the_blocks_that_carry_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest differs from that of the envelope sent (the old one: replacing the secret's
    escaped text found neither the attribute's form nor the 42); it equals the digest of the
    envelope sent with its Auth block taken out. Before, it was that of the envelope sent."""
    monkeypatch.setenv("TB_DIGEST_TOKEN", TOKEN)
    monkeypatch.setenv("TB_DIGEST_PIN", PIN)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "dg.yaml").write_text("mapping: 1\n", encoding="utf-8")
    (tmp_path / "dg.wsdl").write_text(WSDL, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(PARTNERS, encoding="utf-8")
    wire: list[bytes] = []

    async def partner(req: web.Request) -> web.Response:
        wire.append(await req.read())
        return web.Response(body=REPLY, content_type="text/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner)
    runner, url = await start_site(app)
    config = load_config(tmp_path, protocols())
    adapter = SoapAdapter(replace(config.partners["dg"], endpoint=url))
    await adapter.start()
    try:
        reply = await adapter.send(
            OutboundRequest(
                exchange_id="x-1",
                idempotency_key="k-1",
                service="DG-1",
                payload={"name": "n"},
                attempt=1,
            )
        )
    finally:
        await adapter.close()
        await runner.cleanup()
    [sent] = wire
    text = sent.decode()
    assert 'token="a&quot;b&amp;c&lt;d&gt;-7f"' in text and "Pin>42</" in text  # as written
    digest = reply.transcript.request["body_sha256"]
    assert reply.transcript.request["body_sha256_of"] == (
        "envelope without its header blocks that carry secrets"
    )
    # the old digest replaced the secret's text form, which neither written form is: it was this
    assert digest != hashlib.sha256(sent).hexdigest()
    without = re.sub(rb"<(\w+):Auth [^>]*>.*?</\1:Auth>", b"", sent, count=1)
    assert without != sent and b"Trace" in without and b"42" not in without
    assert digest == hashlib.sha256(without).hexdigest()
