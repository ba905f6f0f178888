"""The intake's quick conformance check says yes only where jsonschema finds no error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import contracts
from federation.api import quickcheck
from federation.mapping.examples import load_examples
from federation.runtime.catalogue import load_catalogue
from tests.conftest import REPO

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    1.5,
    -3,
    "",
    " ",
    "x\n",
    "２０２５",
    [],
    {},
    ["a"],
    {"a": 1},
]


def golden() -> list[dict[str, Any]]:
    catalogue = load_catalogue(Path(REPO))
    found = []
    for partner in catalogue.config.partners.values():
        for service in partner.services.values():
            found += [dict(ex.application) for ex in load_examples(service.mapping)]
    return found


GOLDEN = golden()


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (objects by key, arrays by index)."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += leaves(v, (*path, i))
    return out


def replaced(app: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(app)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def agrees(app: Any) -> bool:
    """The quick answer is never yes where jsonschema refuses; it is yes where jsonschema accepts."""
    refused = bool(list(contracts.application_validator().iter_errors(app)))
    return quickcheck.conforms(app) is not refused


def test_the_format_compiles_and_golden_applications_conform_quickly() -> None:
    """The published format compiles (else every submission pays for jsonschema) and the golden
    applications that jsonschema accepts are accepted quickly."""
    assert quickcheck._compiled() is not None
    assert all(agrees(app) for app in GOLDEN)
    assert sum(quickcheck.conforms(app) for app in GOLDEN) > 10


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_one_value_replaced_gives_jsonschemas_answer(data: st.DataObject) -> None:
    """A golden application with one value anywhere replaced by an odd one: the same answer."""
    app = data.draw(st.sampled_from(GOLDEN))
    path = data.draw(st.sampled_from(leaves(app)))
    value = data.draw(st.sampled_from(ODD_VALUES))
    assert agrees(replaced(app, path, value))


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "integer"}, 2.0, True),  # jsonschema's integer: 2.0 is one
        ({"type": "integer"}, True, False),  # a boolean is not
        ({"enum": [1]}, True, False),  # jsonschema's equality: True is not 1
        ({"pattern": "^a"}, 5, True),  # pattern applies to strings only
        ({"minimum": 3}, "2", True),
        ({"items": {"type": "string"}}, ["a", 1], False),
        ({"required": ["a"], "properties": {"a": {"minLength": 2}}}, {"a": "x"}, False),
    ],
)
def test_keywords_mean_what_jsonschema_means(
    schema: dict[str, Any], instance: Any, expected: bool
) -> None:
    """Each compiled keyword, on the cases where a hand-written check would most likely differ."""
    assert quickcheck.compile_schema(schema)(instance) is expected


@pytest.mark.parametrize(
    "kind", ["string", "object", "array", "boolean", "null", "number", "integer"]
)
def test_types_are_jsonschemas_types(kind: str) -> None:
    """Every JSON type name judges every odd value as jsonschema's type checker does."""
    checker = contracts.application_validator().TYPE_CHECKER
    values = [*ODD_VALUES, 2.0, float("nan"), 10**30, -0.0]
    assert [quickcheck.compile_schema({"type": kind})(v) for v in values] == [
        checker.is_type(v, kind) for v in values
    ]


def test_a_keyword_not_compiled_leaves_everything_to_jsonschema() -> None:
    """An unknown keyword: no quick check at all, rather than one that ignores it."""
    with pytest.raises(quickcheck._Unknown):
        quickcheck.compile_schema({"properties": {"a": {"maxLength": 3}}})
