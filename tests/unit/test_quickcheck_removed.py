"""The quick conformance check written as plain loops keeps jsonschema's answers: required
members removed, and a schema whose keywords take the one-, two- and many-check paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federation.api import quickcheck
from tests.unit.test_quickcheck import GOLDEN, agrees, leaves


def removed(app: dict[str, Any], path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(app)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return out


def test_any_one_member_removed_gives_jsonschemas_answer() -> None:
    """Every member or item of every golden application removed in turn: the same answer as
    jsonschema's (a required member missing is refused by both)."""
    refused = 0
    for app in GOLDEN:
        for path in leaves(app)[1:]:
            changed = removed(app, path)
            assert agrees(changed), path
            refused += not quickcheck.conforms(changed)
    assert refused > 0  # some member is required, so the removals exercised a refusal


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "string"}, "a", True),  # one check
        ({"type": "string", "minLength": 2}, "a", False),  # two
        ({"type": "string", "minLength": 1, "pattern": "^a"}, "ba", False),  # three
        ({"type": "string", "minLength": 1, "pattern": "^a"}, "ab", True),
        ({"allOf": [{"minLength": 1}, {"pattern": "b$"}, {"type": "string"}]}, "ab", True),
        ({"allOf": [{"minLength": 1}, {"pattern": "b$"}, {"type": "string"}]}, "ba", False),
        ({"allOf": []}, 1, True),
        ({"required": ["a", "b"]}, {"a": 1}, False),
        ({"required": ["a", "b"]}, {"a": 1, "b": None}, True),
        ({"required": ["a"]}, ["a"], True),  # required applies to objects only
        ({"items": {"minimum": 0}}, [1, 0, -1], False),
        ({"items": {"minimum": 0}}, [], True),
    ],
)
def test_combined_keywords(schema: dict[str, Any], instance: Any, expected: bool) -> None:
    """Keywords combined as the compiler joins them, on yes and no cases."""
    assert quickcheck.compile_schema(schema)(instance) is expected
