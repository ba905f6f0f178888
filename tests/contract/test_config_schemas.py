"""The JSON Schemas of partners.yaml and mapping files agree with the loaders on every shipped file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.registry import protocols
from federation import contracts
from federation.config import load_config
from federation.domain.errors import ConfigError
from federation.mapping.engine import load_mapping

REPO = Path(__file__).resolve().parent.parent.parent
MAPPINGS = sorted(p for p in (REPO / "mappings").glob("*/*.yaml") if p.parent.name != "tables")


def errors(name: str, document: Any) -> list[str]:
    """What the named published schema finds wrong with ``document``."""
    validator = Draft202012Validator(contracts.schema(name))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_schemas_are_valid_json_schemas() -> None:
    """Each published schema is itself a valid 2020-12 schema."""
    for name in contracts.SCHEMAS:
        Draft202012Validator.check_schema(contracts.schema(name))


def test_shipped_partners_yaml_passes_loader_and_schema() -> None:
    """partners.yaml loads, and the schema finds nothing wrong with it."""
    config = load_config(REPO, protocols())
    assert len(config.partners) >= 11
    document = yaml.safe_load((REPO / "partners.yaml").read_text(encoding="utf-8"))
    assert errors("partners", document) == []


@pytest.mark.parametrize("path", MAPPINGS, ids=[str(p.relative_to(REPO)) for p in MAPPINGS])
def test_every_shipped_mapping_passes_loader_and_schema(path: Path) -> None:
    """Each mapping compiles, and the schema finds nothing wrong with it."""
    shown = str(path.relative_to(REPO))
    assert load_mapping(path, display=shown).request.specs
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert errors("mapping", document) == []


def test_loader_and_schema_refuse_the_same_mistakes_in_partners_yaml(tmp_path: Path) -> None:
    """A misspelt top-level key and a partner without services: both refuse each."""
    text = (REPO / "partners.yaml").read_text(encoding="utf-8")
    for broken in (
        text.replace("\nsources:\n", "\nsourcse:\n", 1),
        text.replace("\nversion: 1\n", "\nversion: 2\n", 1),
    ):
        assert broken != text
        (tmp_path / "partners.yaml").write_text(broken, encoding="utf-8")
        with pytest.raises(ConfigError):
            load_config(tmp_path, protocols())
        assert errors("partners", yaml.safe_load(broken)) != []


def test_loader_and_schema_refuse_the_same_mistakes_in_a_mapping(tmp_path: Path) -> None:
    """A misspelt section, a missing request: section, a wrong format version: both refuse each."""
    good = "mapping: 1\nrequest:\n  a: {from: applicant.name}\n"
    assert errors("mapping", yaml.safe_load(good)) == []
    for broken in (
        good + "respones:\n  b: c\n",
        "mapping: 1\nresponse:\n  a: b\n",
        good.replace("mapping: 1", "mapping: 2"),
    ):
        path = tmp_path / "m.yaml"
        path.write_text(broken, encoding="utf-8")
        with pytest.raises(ConfigError):
            load_mapping(path, display="m.yaml")
        assert errors("mapping", yaml.safe_load(broken)) != []


def test_editors_are_pointed_at_the_schemas() -> None:
    """partners.yaml names its schema for yaml-language-server; the workspace maps mapping files."""
    head = (REPO / "partners.yaml").read_text(encoding="utf-8").splitlines()[:5]
    assert "# yaml-language-server: $schema=federation/contracts/partners.schema.json" in head
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    for schema, globs in settings["yaml.schemas"].items():
        assert (REPO / schema).is_file(), schema
        assert globs
