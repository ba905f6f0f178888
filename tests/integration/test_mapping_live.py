"""The mapping engine inside the running broker: warnings, versions, schemas and live reloads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.api.console import views
from federation.domain.errors import ConfigError
from federation.domain.models import State
from replay.instances import Instance
from replay.sqlite import SQLiteJournal
from tests.conftest import HK_APPLICATION, hk_submission
from tests.integration.test_delivery import DONE, settle

TABLE = """\
table: 1
description: GB/T 2261.1 → HK forms
values: {"1": M, "2": F}
"""

MAPPING_WITH_TABLE = """\
mapping: 1
partner: hk
service: TD-VL-RENEW
tables: {sex: tables/sex.yaml}
names:
  - applicant.name_en
request:
  owner.name_en: {from: applicant.name_en, required: true}
  owner.hkid: {from: applicant.hkid, transform: {hkid: number}}
  owner.check: {from: applicant.hkid, transform: {hkid: check}}
  owner.sex: {from: applicant.gender, transform: {table: sex}}
  owner.permit_born: {from: applicant.permit, transform: {mainland_id: birth_date}}
  vehicle.registration_mark: {from: vehicle.registration_mark, required: true}
  channel: {value: TONGBAN}
response:
  receipt_number: {from: ref_no, required: true}
"""

STRICT_SCHEMA = json.dumps(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["owner", "vehicle", "channel"],
        "properties": {
            "channel": {"const": "TONGBAN"},
            "owner": {"type": "object"},
            "vehicle": {
                "type": "object",
                "required": ["registration_mark"],
                "properties": {
                    "registration_mark": {"type": "string", "pattern": "^[A-Z]{1,2}\\d{1,4}$"}
                },
            },
        },
    }
)

APPLICATION = {
    **HK_APPLICATION,
    "applicant": {**HK_APPLICATION["applicant"], "gender": "1", "permit": "810000197804160214"},
}


async def test_warnings_versions_and_transforms_reach_the_exchange(
    make_config, simulators, broker_at
) -> None:
    """A permit older than its region code is a warning on the exchange; tables are versioned."""
    root = make_config(hk_mapping=MAPPING_WITH_TABLE, files={"mappings/tables/sex.yaml": TABLE})
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        ex, _ = await broker.submit(hk_submission(application=APPLICATION))
        await settle(broker, ex.id, DONE)
        async with http.get(f"/v1/exchanges/{ex.id}") as r:
            view = await r.json()
    assert view["state"] == "delivered"
    [warning] = view["warnings"]
    assert warning["severity"] == "warning"
    assert warning["path"] == "applicant.permit"
    assert "did not exist in 1978" in warning["message"]
    assert set(view["mapping_versions"]) == {"mappings/hk-vl.yaml", "mappings/tables/sex.yaml"}
    body = sims["hk"].seen[ex.id].first_body
    assert body["owner"] == {
        "name_en": "CHAN, Tai Man",
        "hkid": "K802133",
        "check": "3",
        "sex": "M",
        "permit_born": "1978-04-16",
    }


async def test_bad_check_digit_rejects_with_every_problem(
    make_config, simulators, broker_at
) -> None:
    """A wrong HKID check digit and an unknown sex code: rejected, both named, partner untouched."""
    root = make_config(hk_mapping=MAPPING_WITH_TABLE, files={"mappings/tables/sex.yaml": TABLE})
    sims = await simulators(root)
    bad = {
        **APPLICATION,
        "applicant": {**APPLICATION["applicant"], "hkid": "K802133(4)", "gender": "7"},
    }
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission(application=bad))
        done = await settle(broker, ex.id, DONE)
    assert done.state is State.REJECTED
    assert done.last_error is not None
    by_path = {p["path"]: p["message"] for p in done.last_error["problems"]}
    assert set(by_path) == {"applicant.hkid", "applicant.gender"}
    assert "check character" in by_path["applicant.hkid"]
    assert "'7' is not in code table sex" in by_path["applicant.gender"]
    assert "K802133" not in json.dumps(done.last_error)  # the number itself is never echoed
    assert sims["hk"].requests == 0


async def test_schema_violation_is_rejected_before_sending(
    make_config, simulators, broker_at
) -> None:
    """A mapped request that breaks the partner's JSON Schema is rejected and never sent."""
    root = make_config(
        hk_mapping=MAPPING_WITH_TABLE,
        files={"mappings/tables/sex.yaml": TABLE},
        hk_schema=STRICT_SCHEMA,
    )
    sims = await simulators(root)
    odd = {**APPLICATION, "vehicle": {"registration_mark": "not a mark"}}
    async with broker_at(root, sims) as (broker, _):
        ok, _ = await broker.submit(hk_submission("good", application=APPLICATION))
        bad, _ = await broker.submit(hk_submission("bad", application=odd))
        good_done = await settle(broker, ok.id, DONE)
        bad_done = await settle(broker, bad.id, DONE)
    assert good_done.state is State.DELIVERED
    assert bad_done.state is State.REJECTED
    assert bad_done.last_error is not None and bad_done.last_error["kind"] == "schema"
    [problem] = bad_done.last_error["problems"]
    assert problem["path"] == "vehicle.registration_mark"
    assert "does not match" in problem["message"]
    assert "schemas/hk-vl.json" in bad_done.mapping_versions
    assert set(sims["hk"].seen) == {ok.id}


async def test_reload_applies_a_fixed_mapping_and_refuses_a_broken_one(
    make_config, simulators, broker_at
) -> None:
    """POST /v1/admin/reload: a valid edit takes effect; an invalid one is refused, the old stays."""
    root = make_config()
    sims = await simulators(root)
    mapping = root / "mappings" / "hk-vl.yaml"
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        mapping.write_text(
            mapping.read_text().replace("value: VLR", "value: VLR2"), encoding="utf-8"
        )
        async with http.post("/v1/admin/reload") as r:
            assert r.status == 200
        ex, _ = await broker.submit(hk_submission("after-fix"))
        await settle(broker, ex.id, DONE)
        mapping.write_text(mapping.read_text() + "  oops: {from: x, valeu: 1}\n", encoding="utf-8")
        async with http.post("/v1/admin/reload") as r:
            assert r.status == 422
            problem = await r.json()
        ex2, _ = await broker.submit(hk_submission("after-broken"))
        done2 = await settle(broker, ex2.id, DONE)
    assert sims["hk"].seen[ex.id].first_body["application_type"] == "VLR2"
    assert problem["type"].endswith("invalid-configuration")
    assert any("valeu" in e["text"] and e["line"] for e in problem["errors"])
    assert done2.state is State.DELIVERED
    assert sims["hk"].seen[ex2.id].first_body["application_type"] == "VLR2"


async def test_the_journal_knows_which_version_each_instance_serves(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """A running broker announces itself with its configuration version, announces the new one
    after a reload (a refused reload changes nothing), and withdraws when it stops."""
    root = make_config()
    sims = await simulators(root)
    mapping = root / "mappings" / "hk-vl.yaml"
    async with broker_at(root, sims, journal=tmp_path / "j.sqlite") as (broker, _url):
        journal = broker.journal
        first = await wait_for_version(journal, broker.owner, lambda v: v != "")
        mapping.write_text(mapping.read_text().replace("value: VLR", "value: VLR2"), "utf-8")
        await broker.reload()
        second = await wait_for_version(journal, broker.owner, lambda v: v != first)
        assert second == broker.config_version
        mapping.write_text(mapping.read_text() + "  oops: {from: x, valeu: 1}\n", "utf-8")
        with pytest.raises(ConfigError):
            await broker.reload()
        assert await wait_for_version(journal, broker.owner, lambda v: v == second) == second
    after = SQLiteJournal(tmp_path / "j.sqlite")
    await after.open()
    try:
        assert await after.instances(seen_since=0) == []
    finally:
        await after.close()


async def wait_for_version(journal: Any, owner: str, ok: Callable[[str], bool]) -> str:
    """The version the journal lists for ``owner`` once ``ok`` holds (announcements are async)."""
    for _ in range(200):
        mine = [i for i in await journal.instances(seen_since=0) if i.id == owner]
        if mine and ok(mine[0].config_version):
            return str(mine[0].config_version)
        await asyncio.sleep(0.02)
    raise AssertionError(f"the journal never listed {owner} as expected")


async def test_the_overview_lists_every_instance_and_flags_another_version(
    make_config, simulators, broker_at
) -> None:
    """The console's overview lists this broker and another instance sharing its journal; the
    other one, serving another configuration version, is the one whose version differs."""
    root = make_config()
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, _url):
        await wait_for_version(broker.journal, broker.owner, lambda v: v != "")
        other = Instance(
            id="host-b:4242:ZZZZZZ",
            host="host-b",
            pid=4242,
            config_version="0123456789ab",
            started_at=time.time() - 60,
            seen_at=time.time(),
        )
        await broker.journal.announce(other)
        counter = views.Counts()
        try:
            figures = await views.overview(broker, counter)
        finally:
            await counter.close()
    shown = {i.id: i.config_version for i in figures.instances}
    assert shown == {broker.owner: broker.config_version, other.id: "0123456789ab"}
    assert figures.version == broker.config_version != "0123456789ab"
    assert all(i.running(figures.at) for i in figures.instances)
