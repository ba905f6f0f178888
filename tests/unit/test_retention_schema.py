"""``broker.retention`` in the published partners.yaml schema: an editor takes what the loader
takes (docs/operations.md, retention) and refuses what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from federation import contracts

REPO = Path(__file__).resolve().parents[2]


def errors(retention: Any) -> list[str]:
    schema = Draft202012Validator(contracts.schema("partners"))
    document = yaml.safe_load((REPO / "partners.yaml").read_text(encoding="utf-8"))
    document["broker"] = {"retention": retention}
    return [e.message for e in schema.iter_errors(document)]


@pytest.mark.parametrize(
    "retention",
    [
        {"keep": "90d"},
        {"keep": "365d", "every": "30m", "archive_dir": "/var/lib/tongban/archive"},
        {"keep": 7776000, "every": 3600},
    ],
)
def test_the_schema_takes_a_retention_the_loader_takes(retention: dict[str, Any]) -> None:
    assert errors(retention) == []


@pytest.mark.parametrize(
    "retention",
    [
        {},  # keep is required
        {"keep": "90d", "evry": "1h"},  # a misspelt key
        {"keep": "90d", "archive_dir": ""},
        "90d",
    ],
)
def test_the_schema_refuses_a_retention_the_loader_refuses(retention: Any) -> None:
    assert errors(retention)
