"""SOAP inbound: zeep, a SOAP client we did not write, files applications at the broker's endpoint."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import requests
import zeep
import zeep.exceptions
import zeep.transports

from adapters.registry import protocols
from federation.config import load_config
from federation.domain.errors import ConfigError
from federation.domain.models import State
from tests.conftest import REPO
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import (  # noqa: F401 (fixture)
    APPLICATION,
    KEY,
    LOCAL_KEY,
    auth,
    inbound_config,
)

SERVICE = "GD-GA-RP-HK"
ENVELOPE = """\
<?xml version="1.0" encoding="utf-8"?>
{prolog}<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:tb="urn:tongban:inbound:2026"><s:Body><tb:FileApplication>
  <tb:service>GD-GA-RP-HK</tb:service><tb:idempotencyKey>raw-1</tb:idempotencyKey>
  <tb:application>{application}</tb:application></tb:FileApplication></s:Body></s:Envelope>
"""


@pytest.fixture
def soap_config(request: pytest.FixtureRequest) -> Path:
    """The inbound test catalogue, with hk also filing by SOAP against Guangdong's WSDL."""
    root: Path = request.getfixturevalue("inbound_config")
    (root / "wsdl").mkdir()
    shutil.copy(REPO / "partners" / "wsdl" / "gd-inbound.wsdl", root / "wsdl")
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "      services:\n        GD-GA-RP-HK:",
        "      wsdl: wsdl/gd-inbound.wsdl\n      services:\n        GD-GA-RP-HK:",
        1,
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    return root


def client(url: str, key: str = KEY) -> zeep.Client:
    """zeep loading the WSDL from the broker over HTTP, every request carrying the Bearer key."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    transport = zeep.transports.Transport(session=session)
    return zeep.Client(f"{url}/v1/partners/hk/soap?wsdl", transport=transport)


async def file(url: str, application: dict[str, Any], idem: str, key: str = KEY) -> Any:
    """One FileApplication call through zeep, in a thread (zeep's client blocks)."""

    def call() -> Any:
        return client(url, key).service.FileApplication(
            service=SERVICE, idempotencyKey=idem, application=orjson.dumps(application).decode()
        )

    return await asyncio.to_thread(call)


async def test_zeep_files_an_application_delivered_to_the_local_system(
    soap_config, simulators, broker_at
) -> None:
    """WSDL fetched from the broker, FileApplication answered with an exchange id, delivered mapped."""
    sims = await simulators(soap_config)
    async with broker_at(soap_config, sims) as (broker, url):
        answer = await file(url, APPLICATION, "soap-1")
        done = await settle(broker, answer.exchangeId, DONE)
        again = await file(url, APPLICATION, "soap-1")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/v1/partners/hk/soap?wsdl") as r,
        ):
            served = await r.text()
    assert answer.state == "received"
    assert again.exchangeId == answer.exchangeId
    assert f'location="{url}/v1/partners/hk/soap"' in served
    assert done.state is State.DELIVERED
    assert (done.direction.value, done.source, done.target) == ("inbound", "hk", "local")
    seen = sims["local"].seen[done.id]  # the local system is sent the exchange id as the key
    assert seen.first_body["applicant"]["documents"]["hk_id_card"]["number"] == "A123456(3)"


async def test_zeep_sees_faults_for_bad_keys_bad_applications_and_reused_keys(
    soap_config, simulators, broker_at
) -> None:
    """Wrong key, unmappable HKID, same key with another body: Client faults, each journalled."""
    sims = await simulators(soap_config)
    bad = {**APPLICATION, "applicant": {**APPLICATION["applicant"], "hkid": "A123456(4)"}}
    other = {**APPLICATION, "reference": "HKGOV-2026-000999"}
    async with broker_at(soap_config, sims) as (broker, url):
        with pytest.raises(zeep.exceptions.Fault) as wrong_key:
            await file(url, APPLICATION, "soap-2", key="guess")
        with pytest.raises(zeep.exceptions.Fault) as unmappable:
            await file(url, bad, "soap-2")
        await file(url, APPLICATION, "soap-2")
        with pytest.raises(zeep.exceptions.Fault) as reused:
            await file(url, other, "soap-2")
        refusals = await broker.journal.refusals()
    assert [f.value.code for f in (wrong_key, unmappable, reused)] == ["soap-env:Client"] * 3
    assert "not one of 'hk'" in wrong_key.value.message
    assert "applicant.hkid" in unmappable.value.message
    assert "check character" in unmappable.value.message
    assert "already used" in reused.value.message
    assert {r.problem for r in refusals} == {"forbidden", "mapping-failed", "idempotency-conflict"}


@pytest.mark.parametrize(
    ("body", "slug", "says"),
    [
        (
            ENVELOPE.format(prolog="", application="{").replace("</s:Body>", ""),
            "malformed-xml",
            "malformed",
        ),
        (
            ENVELOPE.format(
                prolog='<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n',
                application="&x;",
            ),
            "xml-refused",
            "document type declarations",
        ),
        (ENVELOPE.format(prolog="", application="{not json"), "malformed-json", "not valid JSON"),
    ],
    ids=["malformed-xml", "doctype-entity", "application-not-json"],
)
async def test_bad_envelopes_get_a_client_fault_and_a_refusal_row(
    soap_config, broker_at, body: str, slug: str, says: str
) -> None:
    """The hardened parser refuses before libxml2 does any work; the caller hears why."""
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": '""',
    }
    async with (
        broker_at(soap_config) as (broker, url),
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/partners/hk/soap", data=body.encode(), headers=headers) as r,
    ):
        status, reply = r.status, await r.read()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500
    assert b"<faultcode>soap-env:Client</faultcode>" in reply
    assert says in reply.decode()
    assert [r.problem for r in refusals] == [slug]
    assert counts == {}


@pytest.mark.parametrize(
    ("action", "slug", "says"),
    [
        (None, "soap-action-missing", "need a SOAPAction header"),
        ('"urn:tongban:inbound:2026#ReportStatus"', "soap-action-mismatch", "FileApplication"),
        (
            "urn:tongban:inbound:2026#GetApplicationStatus",
            "soap-action-mismatch",
            "whose soapAction",
        ),
    ],
    ids=["missing", "another-operation-quoted", "another-operation-bare"],
)
async def test_a_soapaction_that_is_missing_or_names_another_operation_is_refused(
    soap_config, broker_at, action: str | None, slug: str, says: str
) -> None:
    """What the caller declared in SOAPAction and the operation in the Body must agree."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = action
    body = ENVELOPE.format(prolog="", application=orjson.dumps(APPLICATION).decode())
    async with (
        broker_at(soap_config) as (broker, url),
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/partners/hk/soap", data=body.encode(), headers=headers) as r,
    ):
        status, reply = r.status, await r.read()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 500
    assert b"<faultcode>soap-env:Client</faultcode>" in reply
    assert says in reply.decode()
    assert [r.problem for r in refusals] == [slug]
    assert counts == {}


@pytest.mark.parametrize("action", ['""', '"urn:tongban:inbound:2026#FileApplication"'])
async def test_an_empty_or_matching_soapaction_files_the_application(
    soap_config, broker_at, action: str
) -> None:
    """An empty SOAPAction (intent unspecified) and the operation's own are both accepted."""
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": action,
    }
    body = ENVELOPE.format(prolog="", application=orjson.dumps(APPLICATION).decode())
    async with (
        broker_at(soap_config) as (broker, url),
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/partners/hk/soap", data=body.encode(), headers=headers) as r,
    ):
        status, reply = r.status, await r.read()
        refusals = await broker.journal.refusals()
    assert status == 200, reply
    assert b"FileApplicationResponse" in reply
    assert refusals == []


def test_inbound_wsdl_must_exist(soap_config: Path) -> None:
    """A missing WSDL file is a configuration error naming the key."""
    (soap_config / "wsdl" / "gd-inbound.wsdl").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(soap_config, protocols())
    assert "inbound.wsdl" in str(err.value)
    assert "gd-inbound.wsdl" in str(err.value)


async def test_zeep_reports_status_of_an_application_we_sent(
    soap_config, simulators, broker_at
) -> None:
    """ReportStatus over SOAP: mapped by the status: section, journalled, shown in the lifecycle."""
    from tests.conftest import hk_submission

    mapping = soap_config / "mappings" / "hk-vl.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8")
        + "status:\n  lifecycle: {switch: estado, cases: {ACEITE: accepted, CONCLUIDO: completed}}\n",
        encoding="utf-8",
    )
    sims = await simulators(soap_config)
    async with broker_at(soap_config, sims) as (broker, url):
        ex, _ = await broker.submit(hk_submission("sent-to-hk"))
        await settle(broker, ex.id, DONE)

        def report(estado: str) -> Any:
            return client(url).service.ReportStatus(
                idempotencyKey="sent-to-hk", update=orjson.dumps({"estado": estado}).decode()
            )

        first = await asyncio.to_thread(report, "ACEITE")
        with pytest.raises(zeep.exceptions.Fault) as unknown:
            await asyncio.to_thread(report, "TALVEZ")
        await asyncio.to_thread(report, "CONCLUIDO")
        done = await broker.get(ex.id)
    assert (first.exchangeId, first.lifecycle) == (ex.id, "accepted")
    assert "no case for 'TALVEZ'" in unknown.value.message
    assert done is not None
    assert [s["state"] for s in done.lifecycle()] == ["submitted", "accepted", "completed"]
    assert {e.data.get("via") for e in done.events if e.kind == "lifecycle"} == {"soap"}


async def test_zeep_asks_what_became_of_an_application_it_filed(
    soap_config, simulators, broker_at
) -> None:
    """GetApplicationStatus: the local authority's decisions, step by step, to the filing partner."""
    sims = await simulators(soap_config)

    def ask(url: str, idem: str, key: str = KEY) -> Any:
        return client(url, key).service.GetApplicationStatus(idempotencyKey=idem)

    async with broker_at(soap_config, sims) as (broker, url):
        answer = await file(url, APPLICATION, "soap-ask-1")
        await settle(broker, answer.exchangeId, DONE)
        before = await asyncio.to_thread(ask, url, "soap-ask-1")
        async with aiohttp.ClientSession(base_url=url) as http:
            for decision in (
                {"lifecycle": "accepted"},
                {"lifecycle": "refused", "note": "不符合条件"},
            ):
                async with http.post(
                    f"/v1/exchanges/{answer.exchangeId}/lifecycle",
                    json=decision,
                    headers=auth(LOCAL_KEY),
                ) as r:
                    assert r.status == 200, await r.text()
        after = await asyncio.to_thread(ask, url, "soap-ask-1")
        with pytest.raises(zeep.exceptions.Fault) as unknown:
            await asyncio.to_thread(ask, url, "never-filed")
        with pytest.raises(zeep.exceptions.Fault) as wrong_key:
            await asyncio.to_thread(ask, url, "soap-ask-1", "not-the-key")
    assert (before.exchangeId, before.state) == (answer.exchangeId, "delivered")
    assert [s.lifecycle for s in before.step] == ["submitted"]
    assert [s.lifecycle for s in after.step] == ["submitted", "accepted", "refused"]
    assert after.step[2].note == "不符合条件"
    assert after.step[1].at is not None  # an xs:dateTime zeep could read
    assert "filed no application with that key" in unknown.value.message
    assert wrong_key.value.code.endswith("Client")


async def test_zeep_supplies_material_when_guangdong_asks_for_more(
    soap_config, simulators, broker_at
) -> None:
    """FileSupplement: accepted only after correction_required, mapped now (a Client fault if it
    cannot be), delivered to the local system; the same supplementKey again is the same one."""
    mapping = soap_config / "mappings" / "inbound-rp.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8")
        + "supplement:\n  note: {from: material.remarks, required: true}\n",
        encoding="utf-8",
    )
    sims = await simulators(soap_config)

    def supply(url: str, material: dict[str, Any], supplement_key: str) -> Any:
        return client(url).service.FileSupplement(
            idempotencyKey="soap-bz-1",
            supplementKey=supplement_key,
            material=orjson.dumps(material).decode(),
        )

    async with broker_at(soap_config, sims) as (broker, url):
        answer = await file(url, APPLICATION, "soap-bz-1")
        await settle(broker, answer.exchangeId, DONE)
        with pytest.raises(zeep.exceptions.Fault) as too_early:
            await asyncio.to_thread(supply, url, {"remarks": "x"}, "soap-bz-1-s1")
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post(
                f"/v1/exchanges/{answer.exchangeId}/lifecycle",
                json={"lifecycle": "correction_required", "note": "请补充在职证明"},
                headers=auth(LOCAL_KEY),
            ) as r:
                assert r.status == 200
        with pytest.raises(zeep.exceptions.Fault) as unmappable:
            await asyncio.to_thread(supply, url, {"files": []}, "soap-bz-1-s1")
        filed = await asyncio.to_thread(supply, url, {"remarks": "在职证明已上传"}, "soap-bz-1-s1")
        sent = await settle(broker, filed.exchangeId, DONE)
        again = await asyncio.to_thread(supply, url, {"remarks": "在职证明已上传"}, "soap-bz-1-s1")
        parent = await broker.get(answer.exchangeId)
    assert "has not asked for more material" in too_early.value.message
    assert "material.remarks" in unmappable.value.message
    assert sent.state is State.DELIVERED and sent.supplement_of == answer.exchangeId
    assert again.exchangeId == filed.exchangeId
    assert sims["local"].seen[sent.id].first_body == {"note": "在职证明已上传"}
    assert parent is not None
    assert [s["state"] for s in parent.lifecycle()] == [
        "submitted",
        "correction_required",
        "submitted",
    ]
