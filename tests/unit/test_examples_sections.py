"""Golden examples for every section: warnings, headers, and cases for response, status, status
query and supplement, each compared and each failure said in words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import ConfigError
from federation.mapping import CompiledMapping, load_mapping
from federation.mapping.examples import CASE_SECTIONS, check_example, load_example

MAPPING = """\
mapping: 1
request:
  ref: {from: ref, required: true}
  permit: {from: permit, transform: mainland_id}
headers:
  Cabecalho.Remetente: {value: TONGBAN-GZ}
  Cabecalho.Tentativa: {from: exchange.attempt}
response:
  receipt_number: {from: numeroPedido, required: true}
status:
  lifecycle: {switch: estado, cases: {RECEBIDO: submitted, EMITIDO: completed}, required: true}
status_query:
  numeroPedido: {from: original.receipt.receipt_number, required: true}
supplement:
  numeroPedido: {from: original.receipt.receipt_number, required: true}
  nota: material.note
"""
APPLICATION = {"ref": "GD-1", "permit": "820000198209300127"}  # a permit older than its region
WARNING = [{"path": "permit", "contains": "region 820000 did not exist in 1982"}]
ORIGINAL = {"original": {"receipt": {"receipt_number": "MO20250902000001"}}}


@pytest.fixture
def mapping(tmp_path: Path) -> CompiledMapping:
    """A SOAP-style mapping with every section."""
    file = tmp_path / "mappings" / "dsi.yaml"
    file.parent.mkdir()
    file.write_text(MAPPING, encoding="utf-8")
    return load_mapping(file)


def example(tmp_path: Path, **body: Any) -> Any:
    """An example file with the application above and ``body``, loaded."""
    file = tmp_path / "ex.json"
    file.write_bytes(orjson.dumps({"description": "t", "application": APPLICATION, **body}))
    return load_example(file)


GOOD: dict[str, Any] = {
    "expected": {"ref": "GD-1", "permit": "820000198209300127"},
    "expected_headers": {
        "Cabecalho": {"Remetente": "TONGBAN-GZ"},
        "@exchange": {"Cabecalho.Tentativa": "attempt"},
    },
    "expected_warnings": WARNING,
    "response": {"input": {"numeroPedido": "MO1"}, "expected": {"receipt_number": "MO1"}},
    "status": [
        {"input": {"estado": "EMITIDO"}, "expected": {"lifecycle": "completed"}},
        {"input": {"estado": "X"}, "expected_errors": [{"path": "estado", "contains": "no case"}]},
    ],
    "status_query": {"input": ORIGINAL, "expected": {"numeroPedido": "MO20250902000001"}},
    "supplement": {
        "input": {**ORIGINAL, "material": {"note": "cópia"}},
        "expected": {"numeroPedido": "MO20250902000001", "nota": "cópia"},
    },
}


def test_every_section_as_expected(tmp_path: Path, mapping: CompiledMapping) -> None:
    """Request body, headers, warnings and every case of the other sections agree: no failure."""
    assert set(CASE_SECTIONS) >= {"response", "status", "status_query", "supplement"}
    assert check_example(mapping, example(tmp_path, **GOOD)) == []


def test_each_section_failure_is_named(tmp_path: Path, mapping: CompiledMapping) -> None:
    """A wrong response, a status that maps, and a supplement that fails each say which section."""
    wrong = {
        **GOOD,
        "response": {"input": {"numeroPedido": "MO1"}, "expected": {"receipt_number": "MO2"}},
        "status": {"input": {"estado": "RECEBIDO"}, "expected_errors": [{"path": "estado"}]},
        "supplement": {"input": {}, "expected": {}},
    }
    failures = check_example(mapping, example(tmp_path, **wrong))
    assert failures[0].startswith("response: --- expected")
    assert '-  "receipt_number": "MO2"' in failures[0]
    assert failures[1].startswith("status: expected errors")
    assert failures[2].startswith("supplement: mapping failed: ")
    assert "original.receipt.receipt_number: required, but missing" in failures[2]
    assert len(failures) == 3


def test_warnings_are_compared_both_ways(tmp_path: Path, mapping: CompiledMapping) -> None:
    """A warning the example does not list, and a listed one that does not occur, both fail."""
    unlisted = {**GOOD, "expected_warnings": []}
    [failure] = check_example(mapping, example(tmp_path, **unlisted))
    assert failure.startswith("unexpected warning: ") and "did not exist" in failure
    missing = {**GOOD, "expected_warnings": [*WARNING, {"path": "ref", "contains": "odd"}]}
    assert check_example(mapping, example(tmp_path, **missing)) == [
        "no warning at 'ref' containing 'odd'"
    ]


def test_headers_are_compared_apart_from_the_body(tmp_path: Path, mapping: CompiledMapping) -> None:
    """With expected_headers the body is compared without @headers, and the headers on their own."""
    wrong = {**GOOD, "expected_headers": {"Cabecalho": {"Remetente": "OTHER"}}}
    [failure] = check_example(mapping, example(tmp_path, **wrong))
    assert failure.startswith("headers:\n--- expected")
    assert '"Remetente": "OTHER"' in failure and '"@exchange"' in failure


def test_a_case_for_a_section_the_mapping_lacks(tmp_path: Path) -> None:
    """A case for a section the mapping does not have is a failure, not silently skipped."""
    file = tmp_path / "m.yaml"
    file.write_text("mapping: 1\nrequest:\n  ref: ref\n", encoding="utf-8")
    ex = example(tmp_path, expected={"ref": "GD-1"}, response={"input": {}, "expected": {}})
    assert check_example(load_mapping(file), ex) == [
        "response: the mapping has no response: section"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"expected": {}, "respons": {}}, "unknown key 'respons' (did you mean 'response'?)"),
        ({"expected": {}, "status": {"expected": {}}}, "status: a case is an object with 'input'"),
        ({"expected": {}, "status": [{"input": {}}]}, "status[0]: give exactly one of"),
        (
            {"expected": {}, "supplement": {"input": {}, "expected": {}, "note": 1}},
            "unknown key 'note'",
        ),
        ({"expected": {}, "expected_warnings": "none"}, "'expected_warnings' must be a list"),
        ({"expected": {}, "expected_headers": []}, "'expected_headers' must be an object"),
    ],
)
def test_malformed_examples_are_refused(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    """Every mistake in an example's new keys is a ConfigError naming the file."""
    with pytest.raises(ConfigError) as caught:
        example(tmp_path, **body)
    assert message in str(caught.value)
    assert "ex.json" in str(caught.value)


def test_the_catalogue_exercises_every_section() -> None:
    """Some shipped example checks a response, a status, a status query, a supplement and warnings."""
    seen: set[str] = set()
    for file in (Path(__file__).parents[2] / "mappings").glob("*/*.examples/*.json"):
        data = orjson.loads(file.read_bytes())
        seen |= {k for k in data if k in (*CASE_SECTIONS, "expected_warnings")}
    assert seen >= {"response", "status", "status_query", "supplement", "expected_warnings"}
