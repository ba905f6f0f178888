"""A ``checks:`` rule reads a value as the transform that sends it does: no spelling slips past one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import MappingError
from federation.mapping import CompiledMapping, load_mapping

ROOT = Path(__file__).resolve().parents[2]
PENSION = ROOT / "mappings/gd/guangzhou-pension-transfer-in.yaml"
ENROLMENT = ROOT / "mappings/gd/guangzhou-social-insurance-enrolment.yaml"
FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def golden(mapping: Path, name: str) -> dict[str, Any]:
    """A copy of the application of one golden example beside ``mapping``."""
    folder = mapping.with_suffix(".examples")
    example = orjson.loads((folder / name).read_bytes())
    application: dict[str, Any] = copy.deepcopy(example["application"])
    return application


def refusals(mapping: CompiledMapping, application: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of each problem the refused application carries."""
    with pytest.raises(MappingError) as caught:
        mapping.map_request(application)
    return [(p.path or "", p.message) for p in caught.value.problems]


@pytest.mark.parametrize("spell", [str, lambda n: n.translate(FULLWIDTH), lambda n: f" {n} "])
def test_a_gender_against_a_fullwidth_id_is_refused_as_with_ascii(spell: Any) -> None:
    """A male gender on 林晓雯's ID, full-width or not, is refused by sex-matches-id."""
    mapping = load_mapping(PENSION, display="mappings/gd/guangzhou-pension-transfer-in.yaml")
    application = golden(PENSION, "01-xiamen-to-tianhe.json")
    application["applicant"]["gender"] = "1"
    card = application["applicant"]["documents"]["cn_id_card"]
    card["number"] = spell(card["number"])
    found = refusals(mapping, application)
    assert [path for path, _ in found] == ["applicant.gender"]
    assert "(check sex-matches-id)" in found[0][1]


def test_the_fullwidth_id_itself_maps_to_the_ascii_number() -> None:
    """What the rule compares is what is sent: the full-width ID maps to its ASCII digits."""
    mapping = load_mapping(PENSION, display="mappings/gd/guangzhou-pension-transfer-in.yaml")
    application = golden(PENSION, "01-xiamen-to-tianhe.json")
    card = application["applicant"]["documents"]["cn_id_card"]
    card["number"] = card["number"].translate(FULLWIDTH)
    assert mapping.map_request(application)["sqr"]["zjhm"] == "350203199208200046"


def test_a_fullwidth_residence_permit_is_compared_for_sex_and_birth_date() -> None:
    """鄭家豪's permit in full-width digits, with a woman's gender and another birthday: both refused."""
    display = "mappings/gd/guangzhou-social-insurance-enrolment.yaml"
    mapping = load_mapping(ENROLMENT, display=display)
    application = golden(ENROLMENT, "01-hk-resident-permit-1978.json")
    permit = application["applicant"]["documents"]["residence_permit"]
    permit["number"] = permit["number"].translate(FULLWIDTH)
    application["applicant"]["gender"] = "2"
    application["applicant"]["birth_date"] = "1990-01-01"
    found = refusals(mapping, application)
    assert sorted(path for path, _ in found) == ["applicant.birth_date", "applicant.gender"]


def test_an_id_sent_as_a_json_number_is_compared_too() -> None:
    """A partner writing the permit as a JSON number: the transform sends its digits, so the rule
    compares them (HK inbound, sex F against 鄭家豪's permit)."""
    file = ROOT / "mappings/hk/inbound-talent-residence-permit.yaml"
    mapping = load_mapping(file, display="mappings/hk/inbound-talent-residence-permit.yaml")
    application = golden(file, "02-replacement-permit-1978-printed-hkid.json")
    application["residence_permit"]["current_permit_no"] = 810000197804160214
    assert mapping.map_request(application)["applicant"]["documents"]["residence_permit"] == {
        "number": "810000197804160214",
        "expires_on": "2028-11-19",
    }
    application["applicant"]["sex"] = "F"
    assert [path for path, _ in refusals(mapping, application)] == ["applicant.sex"]
