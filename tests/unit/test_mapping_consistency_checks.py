"""Shipped mappings that send a person's sex or birth date beside their ID check that the two agree."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from federation.domain.errors import MappingError
from federation.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = sorted((ROOT / "mappings").glob("*/*.yaml"))
MAPPINGS = [m for m in MAPPINGS if m.parent.name != "tables"]
# Field → (the rule comparing it with the ID, how the local application names it)
PAIRS = {"gender": "id_sex", "birth_date": "id_birth_date"}


def reads(fields: dict[str, Any], each: str | None = None) -> Iterator[tuple[str | None, str, Any]]:
    """(the array a field runs over, the path it reads, its transform) for every request field."""
    for spec in fields.values():
        if isinstance(spec, str):
            yield each, spec, None
        elif isinstance(spec, dict) and "fields" in spec and "each" in spec:
            yield from reads(spec["fields"], spec["each"])
        elif isinstance(spec, dict) and isinstance(spec.get("from"), str):
            yield each, spec["from"], spec.get("transform")


def is_mainland_id(transform: Any) -> bool:
    steps = transform if isinstance(transform, list) else [transform]
    return "mainland_id" in steps


def declared(checks: dict[str, Any]) -> set[tuple[str | None, str, str, str]]:
    """(each, rule, id path, compared path) of every ID rule a mapping declares."""
    out = set()
    for body in checks.values():
        for rule, key in (("id_sex", "sex"), ("id_birth_date", "date")):
            if rule in body:
                out.add((body.get("each"), rule, body[rule]["id"], body[rule][key]))
    return out


@pytest.mark.parametrize("file", MAPPINGS, ids=lambda f: f"{f.parent.name}/{f.stem}")
def test_sex_and_birth_date_sent_beside_a_mainland_id_are_checked_against_it(file: Path) -> None:
    """A mapping sending a gender or birth date and the same person's ID has the rule comparing them."""
    doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    fields = list(reads(doc.get("request") or {}))
    sent = {(each, path) for each, path, _ in fields}
    have = declared(doc.get("checks") or {})
    missing = []
    for each, path, transform in fields:
        if not is_mainland_id(transform) or "documents." not in path:
            continue
        person = path.rsplit("documents.", 1)[0]
        for field, rule in PAIRS.items():
            if (each, person + field) in sent and (each, rule, path, person + field) not in have:
                missing.append(f"{rule} {path} ~ {person + field} (each: {each})")
    assert not missing


def test_hk_inbound_refuses_sex_and_birth_date_against_the_current_permit() -> None:
    """The reviewer's case: example 02 with sex F and born 01/01/1990 no longer maps."""
    file = ROOT / "mappings/hk/inbound-talent-residence-permit.yaml"
    example = file.with_suffix(".examples") / "02-replacement-permit-1978-printed-hkid.json"
    application = copy.deepcopy(orjson.loads(example.read_bytes())["application"])
    application["applicant"].update(sex="F", date_of_birth="01/01/1990")
    with pytest.raises(MappingError) as caught:
        load_mapping(file, display="mappings/hk/inbound-talent-residence-permit.yaml").map_request(
            application
        )
    found = {p.path: p.message for p in caught.value.problems}
    assert sorted(found) == ["applicant.date_of_birth", "applicant.sex"]
    assert "(check sex-matches-permit)" in found["applicant.sex"]
    assert "810000" not in str(found)
