"""Onboarding a partner by YAML alone: a copy of the shipped configuration plus one new partner, its
mapping and two ordinary golden examples passes everything `make test` asks of a configuration."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import run
from tests.catalogue_facts import (
    check_summary,
    config_at,
    demo_from_undeclared_sources,
    example_count,
    too_few_examples,
)
from tests.conftest import REPO

SERVICE = "11440300MB2C92051Q4442019000001"

PARTNER = f"""\
  # 深圳 Shenzhen municipal platform: onboarded by YAML alone
  - id: sz
    name: {{zh: 深圳市跨域通办接口平台, en: Shenzhen cross-region services interface}}
    region: {{code: "440300", iso: CN-GD}}
    protocol: rest
    endpoint: https://kytb.sz.example.gov.cn/api/v1
    services:
      "{SERVICE}":
        name: {{zh: 港澳居民就业登记（深圳市）, en: "HK/Macao residents employment registration"}}
        mapping: mappings/sz/employment-registration.yaml
        path: /jydj/gat

"""

MAPPING = f"""\
# Shenzhen interface dialect: camelCase English; dates as epoch milliseconds (00:00 Beijing time).
mapping: 1
partner: sz
service: "{SERVICE}"
description: Employment registration in Shenzhen of a Hong Kong resident, filed from Guangzhou.
names:
  - applicant.name
request:
  itemCode: {{value: "{SERVICE}"}}
  areaCode: {{from: region_code, required: true}}
  applyDate: {{from: applied_on, required: true, transform: {{date: {{from: iso, to: epoch_ms}}}}}}
  serialNo: {{from: local_reference, required: true}}
  applicant.name: {{from: applicant.name, required: true}}
  applicant.hkid: {{from: applicant.documents.hk_id_card.number, required: true, transform: hkid}}
  employer.uscc: {{from: social_insurance.employer.uscc, required: true, transform: uscc}}
response:
  receipt_number: {{from: data.ywlsh, required: true}}
  received_at: {{from: data.slsj, transform: {{datetime: {{from: epoch_ms, to: iso}}}}}}
"""

APPLICATION: dict[str, Any] = {
    "mode": "全程网办",
    "region_code": "440304",
    "applied_on": "2025-06-02",
    "local_reference": "GZCC-KYTB-20250602-0311",
    "applicant": {
        "name": "陳大文",
        "name_en": "CHAN, Tai Man",
        "documents": {"hk_id_card": {"number": "A123456(3)"}},
    },
    "social_insurance": {"employer": {"name": "广州某科技有限公司", "uscc": "91440101MA9Y7Q2B6P"}},
}

GOOD = {
    "description": "陳大文 (HKID A123456(3)) registers his employment; the date goes out in ms.",
    "source": "gz-citizen-centre",
    "application": APPLICATION,
    "expected": {
        "itemCode": SERVICE,
        "areaCode": "440304",
        "applyDate": 1748793600000,
        "serialNo": "GZCC-KYTB-20250602-0311",
        "applicant": {"name": "陳大文", "hkid": "A123456(3)"},
        "employer": {"uscc": "91440101MA9Y7Q2B6P"},
    },
}

BAD = {
    "description": "Refused: no HKID, and the date written day-first.",
    "source": "gz-citizen-centre",
    "application": {
        **APPLICATION,
        "applied_on": "02/06/2025",
        "applicant": {"name": "陳大文", "documents": {}},
    },
    "expected_errors": [
        {"path": "applied_on", "contains": "text shaped 99/99/9999 is not a date in the form iso"},
        {"path": "applicant.documents.hk_id_card.number", "contains": "required"},
    ],
}


@pytest.fixture
def onboarded(tmp_path: Path) -> Path:
    """The shipped configuration copied, plus partner sz with one service, its mapping and two
    golden examples (neither a demo), all written as files."""
    root = tmp_path / "config"
    root.mkdir()
    for part in ("mappings", "partners"):
        shutil.copytree(REPO / part, root / part)
    text = (REPO / "partners.yaml").read_text(encoding="utf-8")
    text, added = re.subn(r"^partners:\n", lambda m: m.group() + PARTNER, text, flags=re.M)
    assert added == 1
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    mapping = root / "mappings" / "sz" / "employment-registration.yaml"
    (mapping.parent / "employment-registration.examples").mkdir(parents=True)
    mapping.write_text(MAPPING, encoding="utf-8")
    for name, example in (("01-hk-resident.json", GOOD), ("02-no-hkid.json", BAD)):
        file = mapping.parent / "employment-registration.examples" / name
        file.write_text(json.dumps(example, ensure_ascii=False, indent=2), encoding="utf-8")
    return root


def test_a_partner_added_by_yaml_passes_check_and_every_golden_example(onboarded: Path) -> None:
    """`tongban check` counts the new partner and `tongban mapping test --all` runs its examples,
    both exiting 0; the golden-example rules hold and the derived counts follow the new files."""
    assert "sz" in config_at(onboarded).partners
    check = run("check", "--config", str(onboarded))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1] == check_summary(onboarded)
    assert check_summary(onboarded) != check_summary(REPO)

    golden = run("mapping", "test", "--all", "--config", str(onboarded))
    assert golden.returncode == 0, golden.stdout[-3000:] + golden.stderr
    lines = golden.stdout.strip().splitlines()
    assert lines[-1] == f"{example_count(onboarded)} golden examples, 0 failed"
    assert example_count(onboarded) == example_count(REPO) + 2
    ours = [line for line in lines if "employment-registration" in line]
    assert [line.split()[0] for line in ours] == ["ok", "ok"]

    assert too_few_examples(onboarded) == []
    assert demo_from_undeclared_sources(onboarded) == []
