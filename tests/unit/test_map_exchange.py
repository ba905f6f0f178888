"""map_exchange: the one mapping of an exchange that delivery, filing and the replay dry run share."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from federation.domain.models import Direction, Exchange, NewExchange
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.mapping import Mapped, MappingFailed, map_application, map_exchange
from tests.conftest import HK_APPLICATION, HK_MAPPING

SUPPLEMENT = """\
supplement:
  case: {from: original.idempotency_key, required: true}
  note: {from: material.note, required: true}
"""
# Marks of one or two letters and up to four digits: "not a mark" breaks it.
SCHEMA = json.dumps(
    {
        "type": "object",
        "required": ["vehicle"],
        "properties": {
            "vehicle": {
                "type": "object",
                "properties": {
                    "registration_mark": {"type": "string", "pattern": "^[A-Z]{1,2}\\d{1,4}$"}
                },
            }
        },
    }
)


@pytest.fixture
def catalogue(make_config: Callable[..., Path]) -> Catalogue:
    """hk with a supplement: section and a JSON Schema for its requests."""
    return load_catalogue(make_config(hk_mapping=HK_MAPPING + SUPPLEMENT, hk_schema=SCHEMA))


def exchange(application: dict[str, Any], *, supplement_of: str | None = None) -> Exchange:
    return NewExchange(
        id="01HX",
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key="k1",
        request_hash="sha256:x",
        application=application,
        received_at=0.0,
        supplement_of=supplement_of,
    ).as_received()


def test_an_application_is_mapped_with_versions(catalogue: Catalogue) -> None:
    """The request: section makes the request; every file used is named with its version."""
    result = map_exchange(catalogue, exchange(HK_APPLICATION))
    assert isinstance(result, Mapped)
    assert result.request["vehicle"] == {"registration_mark": "AB1234"}
    assert set(result.versions) == {"mappings/hk-vl.yaml", "schemas/hk-vl.json"}
    assert result.event_data()["mapped"] == result.request


def test_a_supplement_is_mapped_by_its_own_section_without_the_schema(
    catalogue: Catalogue,
) -> None:
    """A follow-up's material goes through supplement:, and the partner's schema (which describes
    applications and would refuse it) is not applied."""
    material = {"material": {"note": "合同"}, "original": {"idempotency_key": "k0"}}
    result = map_exchange(catalogue, exchange(material, supplement_of="01HW"))
    assert isinstance(result, Mapped)
    assert result.request == {"case": "k0", "note": "合同"}


def test_failing_fields_are_all_named(catalogue: Catalogue) -> None:
    """A mapping failure lists every failing field with the mapping file."""
    result = map_exchange(catalogue, exchange({"applicant": {}}))
    assert isinstance(result, MappingFailed) and result.kind == "mapping"
    assert {p.path for p in result.problems} == {
        "vehicle.registration_mark",
        "applicant.name_en",
        "applicant.hkid",
    }
    assert result.error()["problems"][0]["file"] == "mappings/hk-vl.yaml"


def test_a_request_breaking_the_schema_fails_with_what_was_made(catalogue: Catalogue) -> None:
    """A request that maps but breaks the schema: kind schema, and the request it would have been."""
    odd = {**HK_APPLICATION, "vehicle": {"registration_mark": "not a mark"}}
    result = map_exchange(catalogue, exchange(odd))
    assert isinstance(result, MappingFailed) and result.kind == "schema"
    assert result.request is not None
    assert result.request["vehicle"]["registration_mark"] == "not a mark"
    assert "schema" in result.message


def test_no_section_or_no_mapping_is_a_failure_not_an_exception(
    make_config: Callable[..., Path],
) -> None:
    """Material for a service without supplement:, or a service no longer configured, fail."""
    plain = load_catalogue(make_config())
    material = {"material": {"note": "x"}, "original": {}}
    no_section = map_exchange(plain, exchange(material, supplement_of="01HW"))
    assert isinstance(no_section, MappingFailed) and no_section.kind == "mapping"
    assert "takes no supplements" in no_section.problems[0].message
    gone = map_application(plain, "hk", "NO-SUCH-SERVICE", HK_APPLICATION)
    assert isinstance(gone, MappingFailed) and gone.kind == "not_configured"
    assert "problems" not in gone.error()
