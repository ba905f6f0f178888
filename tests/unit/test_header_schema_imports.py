"""Header values against facets declared in schemas the WSDL imports (adapters.headerschema).

The X-Road WSDL declares its header parts in xroad.xsd, imported from its network location, which
imports identifiers.xsd: partners.yaml's schema catalogue maps both to local files. Here a
deployment's copy of xroad.xsd restricts ``xrd:issue`` to a case-number pattern and ``xrd:userId``
to 16 characters; before, these values were checked against xs:string alone, since the schema
that declares them is not in the WSDL's own ``types``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.base import OutboundRequest
from adapters.body import BodyInvalid
from adapters.headerplan import HeaderPlan
from adapters.soap import compile_partner, compile_plans
from federation.runtime.catalogue import load_catalogue
from tests.foreign.test_onboarding_soap import XROAD, XROAD_SERVICE, xroad_config
from tests.unit.test_cli_contract_languages import line_of, run

XRD = "{http://x-road.eu/xsd/xroad.xsd}"
REQUEST = OutboundRequest(
    exchange_id="01M98PAP8GBESGWBSXVZMP83ZY",
    idempotency_key="k-1",
    service=XROAD_SERVICE,
    payload={},
    attempt=1,
)


def restricted(root: Path, element: str, facet: str) -> None:
    """xroad.xsd's ``element`` (xs:string) given ``facet`` in the copy under ``root``."""
    file = root / "partners" / "xroad" / "xroad.xsd"
    plain = re.compile(f'<xs:element name="{element}" type="xs:string">.*?</xs:element>', re.S)
    text, found = plain.subn(
        f'<xs:element name="{element}"><xs:simpleType><xs:restriction base="xs:string">'
        f"{facet}</xs:restriction></xs:simpleType></xs:element>",
        file.read_text(encoding="utf-8"),
    )
    assert found == 1
    file.write_text(text, encoding="utf-8")


@pytest.fixture
def xroad(tmp_path: Path) -> Path:
    """The X-Road onboarding with the deployment's restricted xroad.xsd."""
    root = xroad_config(tmp_path / "xroad")
    restricted(root, "issue", '<xs:pattern value="GZ-[0-9]{4}-[0-9]{6}"/>')
    restricted(root, "userId", '<xs:maxLength value="16"/>')
    return root


def plan_of(root: Path) -> HeaderPlan:
    """The application operation's header plan, as the adapter compiles it."""
    partner = load_catalogue(root).partner(XROAD)
    assert partner is not None
    return compile_plans(partner, compile_partner(partner))[XROAD_SERVICE, "application"]


def test_a_fixed_header_value_is_checked_against_an_imported_schemas_facet(xroad: Path) -> None:
    """A soap: headers: literal for xrd:userId over the 16 characters xroad.xsd allows: an error
    at its line naming the facet (before, check passed: only xs:string was checked); the
    profile's user_id over it likewise, at the xroad: setting."""
    key = "      idempotency: {body: requestKey}"
    text = (xroad / "partners.yaml").read_text(encoding="utf-8")
    literal = f'      headers: {{"{XRD}userId": CN-GZ-TONGBAN-W07}}\n'
    (xroad / "partners.yaml").write_text(text.replace(key, literal + key), encoding="utf-8")
    where = f"partners.yaml:{line_of(xroad, 'partners.yaml', 'headers:')}: "
    said = (
        f"{where}partners[0].soap.headers.{XRD}userId: {XRD}userId: the value breaks the WSDL's "
        "XML Schema facet maxLength of userId"
    )
    result = run(xroad, "check")["en"]
    assert result.exit_code == 1 and said in result.stderr, result.stderr
    (xroad / "partners.yaml").write_text(
        text.replace("user_id: CN-GZ-TONGBAN", "user_id: CN-GZ-TONGBAN-W07"), encoding="utf-8"
    )
    where = f"partners.yaml:{line_of(xroad, 'partners.yaml', 'user_id:')}: "
    said = (
        f"{where}partners[0].soap.xroad.user_id: profile xroad: the value breaks the WSDL's XML "
        "Schema facet maxLength of header userId"
    )
    result = run(xroad, "check")["en"]
    assert result.exit_code == 1 and said in result.stderr, result.stderr


def test_a_fixed_value_of_an_element_declared_by_ref_is_checked_as_written(xroad: Path) -> None:
    """identifiers.xsd declares the client's elements by ref, which the element-by-element check
    does not follow: a literal for client/memberCode off the deployment's USCC pattern is found
    by validating the client part as written, reported at the literal's line."""
    ids = xroad / "partners" / "xroad" / "identifiers.xsd"
    plain = '<xs:element name="memberCode" type="xs:string"/>'
    text = ids.read_text(encoding="utf-8")
    assert plain in text
    ids.write_text(
        text.replace(
            plain,
            '<xs:element name="memberCode"><xs:simpleType><xs:restriction base="xs:string">'
            '<xs:length value="18"/></xs:restriction></xs:simpleType></xs:element>',
        ),
        encoding="utf-8",
    )
    header = f"{XRD}client/{{http://x-road.eu/xsd/identifiers}}memberCode"
    key = "      idempotency: {body: requestKey}"
    partners = xroad / "partners.yaml"
    literal = f'      headers: {{"{header}": "11440100MB2C0001"}}\n'
    partners.write_text(
        partners.read_text(encoding="utf-8").replace(key, literal + key), encoding="utf-8"
    )
    where = f"partners.yaml:{line_of(xroad, 'partners.yaml', 'headers:')}: "
    said = (
        f"{where}partners[0].soap.headers.{header}: {header}: the value breaks the WSDL's XML "
        "Schema facet length of client.memberCode"
    )
    result = run(xroad, "check")["en"]
    assert result.exit_code == 1 and said in result.stderr, result.stderr
    assert "partners[0].soap.xroad" not in result.stderr  # the profile's own code fits


def test_mapped_values_that_break_imported_facets_name_element_and_facet_not_value(
    xroad: Path,
) -> None:
    """The mapping's issue off its pattern and an objectType outside identifiers.xsd's
    enumeration: BodyInvalid naming each element (or attribute) and facet, never the value. A
    fitting issue is written, and xrd:id (xs:string, new per message) with it is judged by the
    quick check alone, no header part validated by lxml."""
    plan = plan_of(xroad)
    mapped = {"@headers": {"issue": "GZ-26-陈大文", "client": {"@objectType": "PERSON"}}}
    with pytest.raises(BodyInvalid) as info:
        plan.fill(REQUEST, {"uscc": "x", **mapped})
    assert sorted(info.value.problems) == [
        "client.@objectType (SOAP header): the value breaks the WSDL's XML Schema facet "
        "enumeration",
        "issue (SOAP header): the value breaks the WSDL's XML Schema facet pattern",
    ]
    assert "陈大文" not in str(info.value) and "PERSON" not in str(info.value)
    fits = {"uscc": "x", "@headers": {"issue": "GZ-2026-000321"}}
    _, blocks = plan.fill(REQUEST, fits)
    assert any("GZ-2026-000321" in block for block in blocks)
    assert plan.sent is not None

    class Refuse:
        def problems(self, *_: Any) -> list[Any]:
            raise AssertionError("validated by lxml")

    quick = dataclasses.replace(plan.sent, schema=Refuse())  # type: ignore[arg-type]
    values = {"id": "0d5a3c1e-8f7b-4a55-9c61-2b8f0e4d7a19", "issue": "GZ-2026-000321"}
    assert quick.problems(plan.parts, values, [("id",), ("issue",)]) == []
