"""`tongban check` and X-Road profile values their header elements' built-in types refuse.

Guangdong's X-Road onboarding (the WSDL as published, xroad.xsd and identifiers.xsd imported
through partners.yaml's schema catalogue), with a deployment's copy of the schemas that gives an
element a type other than xs:string: identifiers.xsd's subsystemCode or serviceVersion xs:int,
xroad.xsd's userId xs:boolean. A profile value of the wrong type ("abc", "maybe") makes the
compiled writer refuse its whole header part at every send (rejected with reason=contract). Before,
check passed it: the part was written to be validated, the writer refused it, and nothing was
said (nor anything about the part's other values, a facet they break included). Now each such
value is reported at the line of the setting it comes from, a service item's code and version at
the item's; a literal of ``soap: headers:`` still once, by its own check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.headerschema import TYPE, Broken
from adapters.headervalues import written_problems
from tests.foreign.test_onboarding_soap import xroad_config
from tests.unit.test_check_contracts import edit
from tests.unit.test_cli_contract_languages import run
from tests.unit.test_header_schema_imports import plan_of

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

IDS = "partners/xroad/identifiers.xsd"
CLIENT = "subsystem: tongban}"
SERVICE = "subsystem: certificate-verification"
XRD = "{http://x-road.eu/xsd/xroad.xsd}"
ID = "{http://x-road.eu/xsd/identifiers}"


def said(language: str, path: str) -> str:
    """What check says of a profile value its header element's type refuses, in ``language``."""
    return {
        "en": f"profile xroad: the value is not one the XML Schema type of header {path} allows",
        "zh-Hans": f"profile xroad：该值不是标头 {path} 的 XML Schema 类型所允许的值",
        "zh-Hant": f"profile xroad：該值不是標頭 {path} 的 XML Schema 類型所允許的值",
    }[language]


def typed(root: Path, name: str, element: str, type_: str) -> None:
    """``element`` (xs:string in the published schema ``name``) given ``type_``."""
    edit(root, name, f'name="{element}" type="xs:string"', f'name="{element}" type="{type_}"')


@pytest.fixture
def xroad(tmp_path: Path) -> Path:
    """The X-Road onboarding, subsystemCode declared xs:int."""
    root = xroad_config(tmp_path / "xroad")
    typed(root, IDS, "subsystemCode", "xs:int")
    return root


def test_a_profile_value_its_type_refuses_is_reported_at_its_line(xroad: Path) -> None:
    """The client's subsystem 'abc' and the service's 'certificate-verification' for an xs:int
    subsystemCode: an error at each setting's line, in each language; '7' and '8' pass."""
    client = edit(xroad, "partners.yaml", CLIENT, "subsystem: abc}")
    service = edit(xroad, "partners.yaml", SERVICE, SERVICE)
    for language, result in run(xroad, "check").items():
        assert result.exit_code == 1, result.output
        for line, key, path in (
            (client, "client.subsystem", "client.subsystemCode"),
            (service, "service.subsystem", "service.subsystemCode"),
        ):
            found = f"partners.yaml:{line}: partners[0].soap.xroad.{key}: {said(language, path)}\n"
            assert found in result.output, result.output
    edit(xroad, "partners.yaml", "subsystem: abc}", "subsystem: '7'}")
    edit(xroad, "partners.yaml", SERVICE, "subsystem: '8'")
    for result in run(xroad, "check").values():
        assert result.exit_code == 0, result.output


def test_a_boolean_user_id_off_its_type_is_reported(tmp_path: Path) -> None:
    """userId declared xs:boolean (an element of xroad.xsd, a part of its own): the profile's
    user_id 'maybe' at its line; 'true' passes."""
    root = xroad_config(tmp_path / "xroad")
    edit(
        root,
        "partners/xroad/xroad.xsd",
        'name="userId" type="xs:string"',
        'name="userId" type="xs:boolean"',
    )
    line = edit(root, "partners.yaml", "user_id: CN-GZ-TONGBAN", "user_id: maybe")
    result = run(root, "check")["en"]
    found = f"partners.yaml:{line}: partners[0].soap.xroad.user_id: {said('en', 'userId')}\n"
    assert result.exit_code == 1 and found in result.output, result.output
    edit(root, "partners.yaml", "user_id: maybe", "user_id: 'true'")
    result = run(root, "check")["en"]
    assert result.exit_code == 0, result.output


def test_a_facet_beside_a_value_of_the_wrong_type_is_still_found(xroad: Path) -> None:
    """In the client part, the subsystem 'abc' (xs:int) and a member code of 16 characters
    where identifiers.xsd (declaring it by ref) asks for 18: both reported, each at its setting;
    the part's values of the right type and facets are not (nor lxml's word about the subsystem
    element left out to validate the rest)."""
    ids = xroad / IDS
    plain = '<xs:element name="memberCode" type="xs:string"/>'
    ids.write_text(
        ids.read_text(encoding="utf-8").replace(
            plain,
            '<xs:element name="memberCode"><xs:simpleType><xs:restriction base="xs:string">'
            '<xs:length value="18"/></xs:restriction></xs:simpleType></xs:element>',
        ),
        encoding="utf-8",
    )
    edit(xroad, "partners.yaml", SERVICE, "subsystem: '8'")
    line = edit(xroad, "partners.yaml", CLIENT, "subsystem: abc}")
    edit(xroad, "partners.yaml", "member_code: 11440100MB2C00017K", "member_code: 11440100MB2C0001")
    result = run(xroad, "check")["en"]
    where = f"partners.yaml:{line}: partners[0].soap.xroad.client"
    assert result.exit_code == 1, result.output
    assert f"{where}.subsystem: {said('en', 'client.subsystemCode')}\n" in result.output
    facet = "the value breaks the WSDL's XML Schema facet length of header client.memberCode"
    assert f"{where}.member_code: profile xroad: {facet}\n" in result.output, result.output
    assert result.output.count("profile xroad") == 2, result.output


def test_a_service_items_version_is_reported_at_the_item(tmp_path: Path) -> None:
    """serviceVersion declared xs:int: the item's xroad: version 'v1' at the item's line (where
    the value is set, not the partner's service identifier); the partner's service version, when
    the item gives none, at the partner's."""
    root = xroad_config(tmp_path / "xroad")
    typed(root, IDS, "serviceVersion", "xs:int")
    item = "xroad: {code: verifyCertificate, version: v1}"
    line = edit(root, "partners.yaml", item, item)
    result = run(root, "check")["en"]
    path = "partners[0].services.GD-AMR-USCC-VERIFY.xroad.version"
    found = f"partners.yaml:{line}: {path}: {said('en', 'service.serviceVersion')}\n"
    assert result.exit_code == 1 and found in result.output, result.output
    assert result.output.count("profile xroad") == 1, result.output
    edit(root, "partners.yaml", item, "xroad: {code: verifyCertificate}")
    line = edit(root, "partners.yaml", SERVICE, f"{SERVICE}\n          version: v2") + 1
    result = run(root, "check")["en"]
    path = "partners[0].soap.xroad.service.version"
    found = f"partners.yaml:{line}: {path}: {said('en', 'service.serviceVersion')}\n"
    assert result.exit_code == 1 and found in result.output, result.output


def test_a_literal_of_the_wrong_type_is_reported_once(xroad: Path) -> None:
    """A soap: headers: literal 'abc' for client/subsystemCode over the profile's '7': said once,
    by the literal's own check at its line, not again as the profile's."""
    edit(xroad, "partners.yaml", CLIENT, "subsystem: '7'}")
    edit(xroad, "partners.yaml", SERVICE, "subsystem: '8'")
    header = f"{XRD}client/{ID}subsystemCode"
    key = "      idempotency: {body: requestKey}"
    line = edit(xroad, "partners.yaml", key, f'      headers: {{"{header}": abc}}\n{key}')
    result = run(xroad, "check")["en"]
    found = f"partners.yaml:{line}: partners[0].soap.headers.{header}: {header}: expected xs:int"
    assert result.exit_code == 1 and found in result.output, result.output
    assert "profile xroad" not in result.output and "1 error(s)" in result.output


def test_without_a_schema_the_writers_refusals_are_found(xroad: Path) -> None:
    """Where no schema could be compiled for the headers, a fixed value of the wrong built-in
    type is still found (by the compiled writer), and nothing else is judged."""
    edit(xroad, "partners.yaml", CLIENT, "subsystem: '7'}")
    edit(xroad, "partners.yaml", SERVICE, "subsystem: '8'")
    plan = plan_of(xroad)
    client = {**plan.fixed["client"], "subsystemCode": "abc", "memberCode": "x"}
    fixed = {**plan.fixed, "client": client}
    assert written_problems(None, plan.parts, fixed) == [
        Broken(path="client.subsystemCode", facets=(TYPE,))
    ]
    assert written_problems(None, plan.parts, plan.fixed) == []
