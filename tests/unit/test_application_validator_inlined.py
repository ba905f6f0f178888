"""The intake's validator, with the schema's references written in place, finds the same errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from federation import contracts
from federation.mapping.examples import load_examples
from federation.runtime.catalogue import load_catalogue
from tests.conftest import REPO


def applications() -> list[dict[str, Any]]:
    """Every golden example's application, and each broken in a few ways."""
    catalogue = load_catalogue(Path(REPO))
    found = []
    for partner in catalogue.config.partners.values():
        for service in partner.services.values():
            found += [dict(ex.application) for ex in load_examples(service.mapping)]
    broken = []
    for app in found:
        for key, value in app.items():
            wrong = copy.deepcopy(app)
            wrong[key] = 12 if isinstance(value, str) else "x"  # every field of the wrong type
            broken.append(wrong)
            emptied = copy.deepcopy(app)
            if isinstance(value, dict):  # every nested value emptied of its fields
                emptied[key] = {k: "" for k in value}
                broken.append(emptied)
    return found + broken


def errors(validator: Draft202012Validator, app: Any) -> list[tuple[list[Any], Any, str]]:
    return sorted(
        ((list(e.absolute_path), e.validator, e.message) for e in validator.iter_errors(app)),
        key=repr,
    )


def test_inlined_validator_reports_what_the_published_schema_does() -> None:
    """Golden applications and hundreds of broken ones: the same errors, paths and messages."""
    published = Draft202012Validator(contracts.schema("application"))
    fast = contracts.application_validator()
    cases = applications()
    assert len(cases) > 100
    some_invalid = 0
    for app in cases:
        expected = errors(published, app)
        assert errors(fast, app) == expected
        some_invalid += bool(expected)
    assert some_invalid > 50  # the comparison covered refusals, not only valid applications


@pytest.mark.parametrize(
    "schema",
    [
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},  # recursive
        {"$ref": "https://example.org/other.json"},  # elsewhere
    ],
)
def test_schemas_that_cannot_be_inlined_are_kept_as_they_are(schema: dict[str, Any]) -> None:
    """A recursive reference, or one to another document, leaves the schema unchanged."""
    assert contracts.inlined(schema) is schema


def test_a_reference_beside_other_keywords_keeps_both() -> None:
    """{$ref, minLength}: the target's rules and the sibling's both apply after inlining."""
    schema = {
        "$defs": {"code": {"type": "string", "pattern": "^[0-9]+$"}},
        "properties": {"c": {"$ref": "#/$defs/code", "minLength": 3}},
    }
    flat = Draft202012Validator(contracts.inlined(schema))
    assert flat.is_valid({"c": "123"})
    assert not flat.is_valid({"c": "12"})  # the sibling
    assert not flat.is_valid({"c": "abc"})  # the target
