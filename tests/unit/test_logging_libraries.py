"""Libraries that log through the standard library (federation.logging.contain_libraries): a reply
read by zeep's fallback reader, whose values zeep cannot convert, leaves those values in no log
record, handler or line, even with every logger at DEBUG."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog
from lxml import etree

from adapters.envelope import SOAP11
from adapters.wsdl import ZeepBody, compile_operation, find_port, load_document
from federation.logging import CONTAINED, configure

HKID, NAME, MAINLAND_ID = "A1234567(8)", "余丽萍", "510104199307070153"
WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:t="urn:t" targetNamespace="urn:t">
  <wsdl:types><xs:schema targetNamespace="urn:t" elementFormDefault="qualified">
    <xs:element name="Apply"><xs:complexType><xs:sequence>
      <xs:element name="reference" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="Applied"><xs:complexType><xs:sequence>
      <xs:element name="ref_no" type="xs:string"/>
      <xs:choice><xs:element name="age" type="xs:int"/><xs:element name="born" type="xs:date"/>
      </xs:choice>
      <xs:element name="checked" type="xs:dateTime" minOccurs="0"/>
      <xs:element name="count" type="xs:int" minOccurs="0"/>
      <xs:any processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence><xs:attribute name="n" type="xs:int"/></xs:complexType></xs:element>
  </xs:schema></wsdl:types>
  <wsdl:message name="In"><wsdl:part name="p" element="t:Apply"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="p" element="t:Applied"/></wsdl:message>
  <wsdl:portType name="PT"><wsdl:operation name="Apply">
    <wsdl:input message="t:In"/><wsdl:output message="t:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="t:PT"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Apply"><soap:operation soapAction="urn:t/Apply"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="t:B">
    <soap:address location="http://example.invalid/"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""
REPLY = f"""<b xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><t:Applied xmlns:t="urn:t"
  n="{NAME}"><t:ref_no>R-1</t:ref_no><t:age>{HKID}</t:age><t:checked>{NAME}</t:checked>
  <t:count>{MAINLAND_ID}x</t:count><t:extra>{MAINLAND_ID}</t:extra>
</t:Applied></b>"""


class Everything(logging.Handler):
    """Every record that reaches it, formatted with its exception as a handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def everything() -> Iterator[Everything]:
    """A handler on the root logger at DEBUG, every logger's state restored afterwards."""
    root = logging.getLogger()
    kept = [
        (lg, lg.level, lg.propagate, list(lg.handlers))
        for lg in map(logging.getLogger, ("", *CONTAINED))
    ]
    handler = Everything()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    for lg, level, propagate, handlers in kept:
        lg.setLevel(level)
        lg.propagate = propagate
        lg.handlers[:] = handlers
    structlog.reset_defaults()


def test_reply_values_zeep_cannot_convert_reach_no_log(
    everything: Everything, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ID number, a name and an HKID where the WSDL wants numbers and dates, read by zeep's
    reader with logging at DEBUG: none is in any record, any handler's line, the broker's log or
    stderr; the broker's log says a zeep error was withheld. Before, zeep's record quoted them."""
    stream = io.StringIO()
    configure(level="debug", stream=stream, json=True)
    wsdl = tmp_path / "a.wsdl"
    wsdl.write_text(WSDL, encoding="utf-8")
    port = find_port(load_document(wsdl, tmp_path), None, None)
    header = etree.QName("{urn:tongban:header}IdempotencyKey")
    op = compile_operation(port, "Apply", action=None, header=header, version=SOAP11)
    assert isinstance(op.output, ZeepBody)  # the compiled reader does not cover xs:choice
    body = etree.fromstring(REPLY)
    read = op.output.read(body, body[0])
    assert read["ref_no"] == "R-1" and read["age"] is None  # zeep could not convert it
    everywhere = "\n".join([*everything.lines, stream.getvalue(), *capsys.readouterr()])
    for value in (HKID, NAME, MAINLAND_ID):
        assert value not in everywhere, f"{value!r} reached a log"
    logged = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert {"event": "library_log_withheld", "error_type": "ValueError"}.items() <= logged[
        0
    ].items()
