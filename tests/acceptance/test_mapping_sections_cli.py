"""`tongban mapping test` on a golden example that checks every section, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import run
from tests.conftest import REPO

MAPPING = REPO / "mappings" / "hk" / "td-vehicle-licence-renewal.yaml"
EXAMPLE = MAPPING.with_name("td-vehicle-licence-renewal.examples") / "06-every-section.json"


def test_every_section_example_passes_and_a_wrong_reply_fails(tmp_path: Path) -> None:
    """The shipped example is ok (exit 0); with a wrong expected receipt it names the response
    section and the differing line (exit 1)."""
    ok = run("mapping", "test", str(MAPPING), str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(": ok")
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["response"]["expected"]["status"] = "in_review"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    fail = run("mapping", "test", str(MAPPING), str(wrong))
    assert fail.returncode == 1
    assert fail.stdout.strip().endswith(": FAILED")
    assert "response: --- expected" in fail.stderr
    assert '-  "status": "in_review"' in fail.stderr
