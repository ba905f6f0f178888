"""The WSDL document follows edits of the schemas the WSDL imports or includes (adapters.wsdl).

load_document kept the parsed zeep Document by the WSDL file's own size and modification time
(with root and catalogue): a structural edit of an imported or included schema (a new element, a
part's type changed) was not seen by a reload or a second load of the catalogue in the same
process, only by a fresh one. The document is now kept with every file it was read from; unchanged
files return the very same Document, one cache entry per WSDL, root and catalogue.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters import wsdl as wsdl_module
from adapters.wsdl import find_port, input_tree, load_document
from tests.foreign.test_onboarding_soap import xroad_config
from tests.foreign.xroad_stub import CATALOGUE, WSDL_PATH

NS = "urn:tongban:test:reload"
WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="{NS}" targetNamespace="{NS}">
  <types>
    <xs:schema targetNamespace="{NS}_wrap">
      <xs:import namespace="{NS}" schemaLocation="types.xsd"/>
    </xs:schema>
  </types>
  <message name="LodgeIn">
    <part name="body" element="tns:lodgeRequest"/>
    <part name="caseRef" element="tns:caseRef"/>
  </message>
  <message name="LodgeOut"><part name="body" element="tns:lodgeReply"/></message>
  <portType name="Office">
    <operation name="lodge"><input message="tns:LodgeIn"/><output message="tns:LodgeOut"/></operation>
  </portType>
  <binding name="OfficeSoap" type="tns:Office">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="lodge">
      <soap:operation soapAction="lodge"/>
      <input>
        <soap:body use="literal" parts="body"/>
        <soap:header use="literal" message="tns:LodgeIn" part="caseRef"/>
      </input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="Registry">
    <port name="OfficePort" binding="tns:OfficeSoap">
      <soap:address location="http://127.0.0.1:9/lodge"/>
    </port>
  </service>
</definitions>
"""
TYPES = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}"
    targetNamespace="{NS}" elementFormDefault="qualified">
  <xs:include schemaLocation="common.xsd"/>
  <xs:element name="lodgeRequest">
    <xs:complexType><xs:sequence>
      <xs:element name="uscc" type="xs:string"/>
    </xs:sequence></xs:complexType>
  </xs:element>
  <xs:element name="lodgeReply" type="xs:string"/>
</xs:schema>
"""
COMMON = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}"
    targetNamespace="{NS}" elementFormDefault="qualified">
  <xs:element name="caseRef" type="xs:string"/>
</xs:schema>
"""
USCC = '<xs:element name="uscc" type="xs:string"/>'


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """A WSDL importing types.xsd, which includes common.xsd (the header part's element)."""
    for name, text in (("office.wsdl", WSDL), ("types.xsd", TYPES), ("common.xsd", COMMON)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / "office.wsdl"


def edit(file: Path, old: str, new: str) -> None:
    """``file`` with ``old`` (present once) replaced by ``new``."""
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1
    file.write_text(text.replace(old, new), encoding="utf-8")


def type_of(document: object, name: str) -> str:
    """The name of the type of global element ``name`` of the test namespace."""
    return str(document.types.get_element(f"{{{NS}}}{name}").type.name)  # type: ignore[attr-defined]


def kept(folder: Path) -> int:
    """The cache entries of WSDLs under ``folder``."""
    return sum(1 for key in wsdl_module._cache.held() if key[0].is_relative_to(folder.resolve()))


def test_a_new_element_in_an_imported_schema_is_seen_at_the_next_load(office: Path) -> None:
    """types.xsd gains an element of the body: the next load has it as a path of the input
    (before, the first document was returned until a restart)."""
    paths, _ = input_tree(find_port(load_document(office, office.parent), None, None), "lodge")
    assert paths == {"uscc"}
    edit(office.parent / "types.xsd", USCC, USCC + '<xs:element name="name" type="xs:string"/>')
    paths, _ = input_tree(find_port(load_document(office, office.parent), None, None), "lodge")
    assert paths == {"uscc", "name"}


def test_a_changed_header_part_type_in_an_included_schema_is_seen(office: Path) -> None:
    """common.xsd (included by the imported types.xsd) makes the header part an xs:int."""
    assert type_of(load_document(office, office.parent), "caseRef") == "string"
    edit(office.parent / "common.xsd", 'type="xs:string"', 'type="xs:int"')
    assert type_of(load_document(office, office.parent), "caseRef") == "int"


def test_a_changed_type_in_a_catalogued_schema_is_seen(tmp_path: Path) -> None:
    """The X-Road WSDL imports xroad.xsd from its network location, mapped by the catalogue to a
    local copy: its header element issue made an xs:int is seen at the next load."""
    root = xroad_config(tmp_path / "xroad")
    files = root / "partners" / "xroad"
    catalogue = tuple(sorted((url, files / file.name) for url, file in CATALOGUE.items()))
    wsdl = files / WSDL_PATH.name
    issue = "{http://x-road.eu/xsd/xroad.xsd}issue"
    assert load_document(wsdl, root, catalogue).types.get_element(issue).type.name == "string"
    plain = '<xs:element name="issue" type="xs:string">'
    edit(files / "xroad.xsd", plain, '<xs:element name="issue" type="xs:int">')
    assert load_document(wsdl, root, catalogue).types.get_element(issue).type.name == "int"


def test_unchanged_files_return_the_same_document_and_one_is_kept(office: Path) -> None:
    """Two loads of unchanged files return one Document; an included schema touched (same
    content, new modification time) is read again, and so is the WSDL touched, each new version
    taking the place of the one before in the cache."""
    first = load_document(office, office.parent)
    assert load_document(office, office.parent) is first
    later = (office.parent / "common.xsd").stat().st_mtime_ns + 10**9
    os.utime(office.parent / "common.xsd", ns=(later, later))
    second = load_document(office, office.parent)
    assert second is not first
    assert load_document(office, office.parent) is second
    os.utime(office, ns=(later, later))
    third = load_document(office, office.parent)
    assert third is not second
    assert load_document(office, office.parent) is third
    assert kept(office.parent) == 1
