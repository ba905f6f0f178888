"""Intake against the published format: 422 with JSON Pointers, and the validate-only dry run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.api.conform import format_errors
from tests.conftest import HK_APPLICATION
from tests.integration.test_inbound import APPLICATION as FILED
from tests.integration.test_inbound import INBOUND, KEY, LOCAL, MAPPING

BODY: dict[str, Any] = {
    "source": "gd-portal",
    "partner": "hk",
    "service": "TD-VL-RENEW",
    "application": HK_APPLICATION,
}


def journal_counts(path: Path) -> tuple[int, int]:
    """(exchanges, refusals) in a SQLite journal file."""
    with sqlite3.connect(path) as db:
        exchanges = db.execute("SELECT count(*) FROM exchanges").fetchone()[0]
        refusals = db.execute("SELECT count(*) FROM refusals").fetchone()[0]
    return exchanges, refusals


@pytest.fixture
def inbound_root(make_config) -> Path:
    """The test catalogue with a local system and hk filing one inbound service."""
    root: Path = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("partners:\n", LOCAL + "partners:\n", 1)
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + INBOUND, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING, encoding="utf-8")
    return root


async def test_nonconforming_application_is_422_with_pointers(
    make_config, broker_at, tmp_path
) -> None:
    """Fields of the wrong form are each named by a JSON Pointer; refused, recorded, not journalled."""
    application = {
        **HK_APPLICATION,
        "applicant": {**HK_APPLICATION["applicant"], "gender": "M"},
        "vehicle_licence": {"period_months": 6, "fee": {"amount": "1.5", "currency": "HKD"}},
    }
    journal = tmp_path / "j.sqlite"
    async with (
        broker_at(make_config(), journal=journal) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        body = {**BODY, "application": application}
        async with http.post("/v1/exchanges", json=body, headers={"Idempotency-Key": "k"}) as r:
            assert r.status == 422
            problem = await r.json()
    assert problem["type"] == "urn:tongban:problem:invalid-application"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {
        "/application/applicant/gender",
        "/application/vehicle_licence/period_months",
        "/application/vehicle_licence/fee/amount",
    }
    messages = {e["pointer"]: e["message"] for e in problem["errors"]}
    assert messages["/application/applicant/gender"] == "must be one of 0, 1, 2, 9"
    assert "'M'" not in problem["detail"] and "1.5" not in problem["detail"]  # values not echoed
    assert journal_counts(journal) == (0, 1)


async def test_dry_run_answers_the_mapped_request_and_journals_nothing(
    make_config, simulators, broker_at, tmp_path
) -> None:
    """?dry_run=true maps the application and answers it; no exchange, no refusal, nothing sent."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "j.sqlite"
    async with (
        broker_at(root, sims, journal=journal) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post("/v1/exchanges?dry_run=true", json=BODY) as r:
            assert r.status == 200
            answer = await r.json()
    assert answer["dry_run"] is True
    assert answer["mapped"]["owner"] == {"name_en": "CHAN, Tai Man", "hkid": "K802133(3)"}
    assert answer["mapped"]["vehicle"] == {"registration_mark": "AB1234"}
    assert "mappings/hk-vl.yaml" in answer["versions"]
    assert journal_counts(journal) == (0, 0)
    assert sims["hk"].requests == 0


async def test_dry_run_reports_every_error_of_format_and_mapping_at_once(
    make_config, broker_at, tmp_path
) -> None:
    """A dry run of a broken application lists the format's errors and the mapping's, together."""
    application = {"applicant": {"name_en": "CHAN, Tai Man", "gender": "X"}}
    journal = tmp_path / "j.sqlite"
    async with (
        broker_at(make_config(), journal=journal) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        body = {**BODY, "application": application}
        async with http.post("/v1/exchanges?dry_run=true", json=body) as r:
            assert r.status == 422
            problem = await r.json()
    assert problem["dry_run"] is True
    assert problem["type"] == "urn:tongban:problem:mapping-failed"
    pointers = {e.get("pointer") for e in problem["errors"]}
    assert "/application/applicant/gender" in pointers  # the format
    assert "/application/applicant/hkid" in pointers  # the mapping: required, missing
    assert "/application/vehicle/registration_mark" in pointers
    assert journal_counts(journal) == (0, 0)


async def test_dry_run_value_must_be_true_or_false(make_config, broker_at) -> None:
    """dry_run=yes is a 400 invalid-query, not a silent real submission."""
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges?dry_run=yes", json=BODY) as r:
            assert r.status == 400
            assert (await r.json())["type"] == "urn:tongban:problem:invalid-query"


async def test_inbound_dry_run_maps_for_the_local_system(inbound_root, broker_at, tmp_path) -> None:
    """A partner's dry run answers what the local system would get, or every error; journals nothing."""
    journal = tmp_path / "j.sqlite"
    auth = {"Authorization": f"Bearer {KEY}"}
    path = "/v1/partners/hk/applications?dry_run=true"
    async with (
        broker_at(inbound_root, journal=journal) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        good = {"service": "GD-GA-RP-HK", "application": FILED}
        async with http.post(path, json=good, headers=auth) as r:
            assert r.status == 200
            mapped = (await r.json())["mapped"]
        bad = {"service": "GD-GA-RP-HK", "application": {"applicant": {"hkid": "A123456(3)"}}}
        async with http.post(path, json=bad, headers=auth) as r:
            assert r.status == 422
            problem = await r.json()
        async with http.post(path, json=good) as r:
            assert r.status == 401  # a dry run is no way round the key
    assert mapped["applicant"]["documents"]["hk_id_card"]["number"] == "A123456(3)"
    assert mapped["local_reference"] == "HKGOV-2026-000123"
    paths = {e["path"] for e in problem["errors"]}
    assert {"applicant.name_en", "reference"} <= paths
    assert journal_counts(journal)[0] == 0


def test_a_missing_member_is_pointed_at_itself() -> None:
    """A money value without its currency points at /…/currency, not at the object around it."""
    errors = format_errors({"housing_fund": {"amount": {"amount": "1.00"}}})
    assert [e["pointer"] for e in errors] == ["/application/housing_fund/amount/currency"]
    assert errors[0]["path"] == "housing_fund.amount.currency"
