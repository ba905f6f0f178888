"""Strict JSON: a key named twice in one object is found wherever it is and however it is
written, and a document without one is never refused (checked against an oracle at random)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.domain import strictjson
from federation.domain.strictjson import DuplicateKey


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"partner": "gd", "service": "S", "partner": "fj"}', "partner"),
        ('{"partner": "gd", "partner": "gd"}', "partner"),
        (
            '{"application": {"applicant": {"name": "a", "name": "b"}}}',
            "application.applicant.name",
        ),
        ('{"items": [{"n": 1}, {"n": 2, "m": 3, "n": 4}]}', "items[1].n"),
        ('[[{"x": {"y": 1, "y": {}}}]]', "[0][0].x.y"),
        ('{"a": 1, "\\u0061": 1}', "a"),
        ('{"\\u0061": 1, "a": 2}', "a"),
        ('{"a:b": 1, "a\\u003ab": 2}', "a:b"),
        ('{"\\"": 1, "\\u0022": 2}', '"'),
        ('{"t": "10:30", "u": "x\\u003ay", "t": "10:30"}', "t"),
        ('{"a": {}, "a": {}}', "a"),
    ],
    ids=[
        "top-level",
        "same-value",
        "nested",
        "array-of-objects",
        "inside-arrays",
        "escaped-second",
        "escaped-first",
        "escaped-colon-in-key",
        "escaped-quote",
        "colons-in-values",
        "empty-objects",
    ],
)
def test_a_key_named_twice_is_refused_with_its_path(text: str, path: str) -> None:
    """Duplicates at the top, nested, in arrays of objects, spelt with escapes: refused, by path."""
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads(text.encode())
    assert caught.value.path == path
    assert path in str(caught.value)


def test_the_refusal_never_quotes_a_value() -> None:
    """The message names the key, never what it held."""
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads('{"name": "陳大文", "name": "陈大文"}'.encode())
    assert "陳" not in str(caught.value) and "陈" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "x:y", "b": "::::", "c": "\\u003a\\u003A"}',
        '{"a\\\\u003a": 1, "a\\\\": 2}',  # an escaped backslash and plain "u003a": no colon
        '{"a": 1, "b": {"a": 1}, "c": [{"a": 1}, {"a": 1}]}',
        '{"時間": "2025-03-03T10:15:00+08:00", "url": "https://example.gov.hk:443/a"}',
        '"just: a string"',
        "[]",
        "{}",
    ],
)
def test_distinct_keys_are_read_as_orjson_reads_them(text: str) -> None:
    """Colons in strings, escaped or not, and equal keys in different objects are no duplicate."""
    assert strictjson.loads(text.encode()) == orjson.loads(text)


def test_a_document_deeper_than_orjson_writes_is_still_checked() -> None:
    """Past orjson.dumps' nesting limit the count is taken by hand, both ways."""
    deep = "[" * 400 + '{"a": 1, "b": 2}' + "]" * 400
    assert strictjson.loads(deep.encode())
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads(("[" * 400 + '{"a": 1, "a": 2}' + "]" * 400).encode())
    assert caught.value.path == "[0]" * 400 + ".a"


def test_a_duplicate_too_deep_to_name_is_still_refused() -> None:
    """Deeper than the standard library parses, the duplicate is refused without a path."""
    deep = "[" * 1010 + '{"a": 1, "a": 2}' + "]" * 1010
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads(deep.encode())
    assert caught.value.path == ""


def _oracle(text: str) -> bool:
    """Whether ``text`` names a key twice in one object, by the standard library's pairs."""
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in items}) != len(items)
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return found


_KEYS = st.sampled_from(["a", "b", ":", "a:b", "é", "陳", '"', "\\", ""])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), _KEYS, st.text(max_size=5)
)


def _escaped(key: str, how: int) -> str:
    """``key`` as JSON text: plainly, with every character \\u-escaped, or with only colons so."""
    if how == 0:
        return json.dumps(key, ensure_ascii=False)
    if how == 1:
        return '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
    return json.dumps(key, ensure_ascii=False).replace(":", "\\u003A")


@st.composite
def _documents(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON text of random objects and arrays, keys written any of three ways, some repeated."""
    kind = draw(st.integers(0, 2 if depth < 4 else 0))
    if kind == 0:
        return json.dumps(draw(_SCALARS), ensure_ascii=draw(st.booleans()))
    if kind == 1:
        items = draw(st.lists(_documents(depth + 1), max_size=4))
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(_KEYS, max_size=5))
    members = [
        f"{_escaped(k, draw(st.integers(0, 2)))}: {draw(_documents(depth + 1))}" for k in keys
    ]
    return "{" + ",".join(members) + "}"


@settings(max_examples=200, deadline=None)
@given(_documents())
def test_strict_reading_agrees_with_the_oracle(text: str) -> None:
    """Refused exactly when some object names a key twice; otherwise read as orjson reads it."""
    if _oracle(text):
        with pytest.raises(DuplicateKey):
            strictjson.loads(text.encode())
    else:
        assert strictjson.loads(text.encode()) == orjson.loads(text)
