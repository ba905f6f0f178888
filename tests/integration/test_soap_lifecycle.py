"""The lifecycle over SOAP: Hong Kong's Transport Department cannot call back, so it is polled with
the WSDL operation partners.yaml names, and a correction round's material goes with another one.

Everything on loopback: the shipped catalogue (partners.yaml, mappings, WSDLs) copied to a
temporary directory, the SOAP partner simulator serving TD's WSDL, the broker's HTTP API.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.domain.errors import ConfigError
from federation.domain.models import State
from federation.runtime.broker import Submission
from federation.runtime.catalogue import load_catalogue
from federation.runtime.lifecycle import record_lifecycle
from federation.runtime.poller import Poller
from tests.conftest import REPO
from tests.integration.test_delivery import DONE, settle

SERVICE = "TD-VL-RENEW"
EXAMPLE = REPO / "mappings/hk/td-vehicle-licence-renewal.examples/01-kiosk-guangzhou-12-months.json"


def catalogue_copy(root: Path) -> Path:
    """The shipped catalogue (partners.yaml, mappings, partners) copied into a new ``root``."""
    root.mkdir(parents=True)
    for part in ("partners.yaml", "mappings", "partners"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part)
        else:
            shutil.copy(source, root / part)
    return root


@pytest.fixture
def hk_config(tmp_path: Path) -> Path:
    """The shipped catalogue, in a directory of its own."""
    return catalogue_copy(tmp_path / "config")


def application() -> dict[str, Any]:
    example: dict[str, Any] = orjson.loads(EXAMPLE.read_bytes())
    return example["application"]  # type: ignore[no-any-return]


async def _delivered(broker: Any, key: str) -> Any:
    ex, _ = await broker.submit(
        Submission(
            source="gd-portal",
            partner="hk",
            service=SERVICE,
            idempotency_key=key,
            application=application(),
        )
    )
    done = await settle(broker, ex.id, DONE)
    assert done.state is State.DELIVERED, done.last_error
    return done


def _steps(exchange: Any) -> list[str]:
    return [s["state"] for s in exchange.lifecycle()]


async def test_a_soap_partner_is_polled_with_its_status_operation(
    hk_config, simulators, broker_at
) -> None:
    """GetRenewalStatus is asked with TD's ref_no; each answer is a lifecycle step until the end."""
    sims = await simulators(hk_config)
    td = sims["hk"]
    async with broker_at(hk_config, sims) as (broker, _):  # its own poller: every 10 minutes
        ex = await _delivered(broker, "vl-poll-1")
        poller = Poller(broker, every=0.0)  # a round now and then, instead of every 10 minutes
        changes = [await poller.poll_once() for _ in range(4)]
        done = await broker.get(ex.id)
    assert done is not None
    case = ex.receipt["receipt_number"]
    assert changes == [1, 1, 1, 0]  # the fourth round asks nothing: the application is complete
    assert _steps(done) == ["submitted", "accepted", "approved", "completed"]
    assert done.lifecycle_state == "completed"
    assert td.cases[case].status_queries == 3
    events = [e for e in done.events if e.kind == "lifecycle"]
    assert [e.data["via"] for e in events] == ["poll"] * 3
    assert [e.data["partner_update"]["status"] for e in events] == [
        "PROCESSING",
        "APPROVED",
        "LICENCE_ISSUED",
    ]
    assert all(e.data["case_number"] == case for e in events)
    # every question carried a RequestId of its own, never the filing's: TD answers a repeated
    # RequestId with its first reply, which would have been the filing's receipt
    questions = [k for k in td.keys if k and k.startswith(f"status-{ex.id}-")]
    assert len(set(questions)) == 3
    assert td.seen[ex.id].operations == ["RenewVehicleLicence"]  # the filing's key: its id


async def test_macao_is_polled_over_soap_12(hk_config, simulators, broker_at) -> None:
    """DSI's ConsultarEstadoPedido, a SOAP 1.2 operation with Portuguese elements: asked by its
    numeroPedido, answered EM_APRECIACAO (review) then EMITIDO (completed)."""
    example = REPO / "mappings/mo/dsi-criminal-record-certificate.examples"
    application = orjson.loads(sorted(example.glob("*.json"))[0].read_bytes())["application"]
    sims = await simulators(hk_config)
    dsi = sims["mo"]
    async with broker_at(hk_config, sims) as (broker, _):
        ex, _ = await broker.submit(
            Submission(
                source="gd-portal",
                partner="mo",
                service="DSI-CRC-REQ",
                idempotency_key="crc-poll-1",
                application=application,
            )
        )
        ex = await settle(broker, ex.id, DONE)
        poller = Poller(broker, every=0.0)
        changes = [await poller.poll_once() for _ in range(3)]
        done = await broker.get(ex.id)
    assert done is not None
    case = ex.receipt["receipt_number"]
    assert changes == [1, 1, 0]
    assert _steps(done) == ["submitted", "review", "completed"]
    assert dsi.cases[case].status_queries == 2
    events = [e for e in done.events if e.kind == "lifecycle"]
    assert [e.data["partner_update"]["estado"] for e in events] == ["EM_APRECIACAO", "EMITIDO"]
    assert all(e.data["case_number"] == case for e in events)


async def test_a_correction_round_over_soap_to_completion(hk_config, simulators, broker_at) -> None:
    """DOCUMENTS_REQUIRED → material from the originating system → SubmitSupplementaryDocuments
    naming TD's ref_no → processing resumes → licence issued."""
    sims = await simulators(hk_config)
    td = sims["hk"]
    td.behaviour.status_script = ["DOCUMENTS_REQUIRED", "APPROVED", "LICENCE_ISSUED"]
    material = {
        "note": "Insurance cover note for the new licence period",
        "attachments": [
            {
                "kind": "insurance_cover_note",
                "title": "Cover note MTP2405118376 (2025-05-14 – 2026-05-13)",
                "file": "tbfile://hk/kiosk-gz01/cover-note.pdf",
                "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
            }
        ],
    }
    async with broker_at(hk_config, sims) as (broker, url):
        ex = await _delivered(broker, "vl-bz-1")
        poller = Poller(broker, every=0.0)
        first = await poller.poll_once()
        waiting = await poller.poll_once()  # still DOCUMENTS_REQUIRED: nothing new to note
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json={"material": material},
                headers={"Idempotency-Key": "vl-bz-1-supplement-1"},
            ) as r:
                assert r.status == 202, await r.text()
                child = (await r.json())["id"]
            sent = await settle(broker, child, DONE)
            after = [await poller.poll_once() for _ in range(3)]
            async with http.get(f"/v1/exchanges/{ex.id}") as r:
                view = await r.json()
    assert sent.state is State.DELIVERED, sent.last_error
    case = ex.receipt["receipt_number"]
    assert (first, waiting, after) == (1, 0, [1, 1, 0])
    assert [s["state"] for s in view["lifecycle"]] == [
        "submitted",
        "correction_required",
        "submitted",
        "approved",
        "completed",
    ]
    assert "INS_COVER" in view["lifecycle"][1]["note"]  # TD's remarks, what is missing
    assert view["lifecycle"][2]["supplement"] == child
    follow_up = td.seen[child]  # the supplement goes with its own exchange's id
    assert follow_up.operations == ["SubmitSupplementaryDocuments"]
    assert follow_up.case == case
    assert follow_up.first_body["ref_no"] == case
    assert follow_up.first_body["remarks"] == material["note"]
    [doc] = follow_up.first_body["supporting_document"]
    assert doc["document_type"] == "INS_COVER"  # the shared code table, as for the filing
    assert doc["sha256"] == material["attachments"][0]["sha256"].lower()
    assert td.cases[case].supplements == [child]


async def test_a_request_for_material_dated_before_the_supplement_is_not_a_new_round(
    hk_config, simulators, broker_at
) -> None:
    """TD still says DOCUMENTS_REQUIRED, dated before our supplement reached it: the old request,
    not a new one (no second 补正 for the source). Dated after it: a genuine second round."""
    sims = await simulators(hk_config)
    td = sims["hk"]
    td.behaviour.status_script = ["DOCUMENTS_REQUIRED", "DOCUMENTS_REQUIRED", "APPROVED"]
    material = {
        "note": "Cover note",
        "attachments": [{"kind": "insurance_cover_note", "title": "Cover", "file": "tbfile://c"}],
    }
    async with broker_at(hk_config, sims) as (broker, url):
        ex = await _delivered(broker, "vl-stale-1")
        poller = Poller(broker, every=0.0)
        first = await poller.poll_once()
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json={"material": material},
                headers={"Idempotency-Key": "vl-stale-1-s1"},
            ) as r:
                child = (await r.json())["id"]
        await settle(broker, child, DONE)
        td.behaviour.status_at = "2025-04-29T09:00:00+08:00"  # before the supplement
        stale = await poller.poll_once()
        td.behaviour.status_at = None  # now: after it
        fresh = await poller.poll_once()
        done = await broker.get(ex.id)
    assert done is not None
    assert (first, stale, fresh) == (1, 0, 1)
    assert _steps(done) == [
        "submitted",
        "correction_required",
        "submitted",
        "correction_required",
    ]


async def test_an_unanswered_status_query_changes_nothing_and_is_asked_again(
    hk_config, simulators, broker_at
) -> None:
    """A Server fault or an unknown reference is not a lifecycle step; the next round asks again."""
    sims = await simulators(hk_config)
    td = sims["hk"]
    async with broker_at(hk_config, sims) as (broker, _):
        ex = await _delivered(broker, "vl-fault-1")
        poller = Poller(broker, every=0.0)
        td.behaviour.fail_ratio, td.behaviour.fault = 1.0, "server"
        during_fault = await poller.poll_once()
        td.behaviour.fail_ratio, td.behaviour.fault = 0.0, None
        case = ex.receipt["receipt_number"]
        saved = td.cases.pop(case)  # TD no longer knows the reference: a Client fault
        unknown = await poller.poll_once()
        td.cases[case] = saved
        recovered = await poller.poll_once()
        done = await broker.get(ex.id)
    assert done is not None
    assert (during_fault, unknown, recovered) == (0, 0, 1)
    assert _steps(done) == ["submitted", "accepted"]
    assert done.state is State.DELIVERED  # a status query never touches the delivery


async def test_a_partners_fault_text_never_reaches_the_log(
    hk_config, simulators, broker_at
) -> None:
    """A fault that quotes the applicant: the poll is logged by kind and status, not by text."""
    import io

    import structlog

    from federation.logging import configure

    sims = await simulators(hk_config)
    td = sims["hk"]
    stream = io.StringIO()
    try:
        async with broker_at(hk_config, sims) as (broker, _):
            ex = await _delivered(broker, "vl-log-1")
            configure(stream=stream, json=True)
            td.behaviour.fail_ratio, td.behaviour.fault = 1.0, "client"
            td.behaviour.fault_string = "no licence for 陳大文 (CHAN, Tai Man) at this address"
            await Poller(broker, every=0.0).poll_once()
    finally:
        structlog.reset_defaults()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    [asked] = [line for line in lines if line["event"] == "status_poll_unanswered"]
    assert asked["exchange_id"] == ex.id and asked["kind"] == "PermanentError"
    assert "陳大文" not in stream.getvalue() and "CHAN" not in stream.getvalue()


async def test_a_polled_step_back_is_journalled_once_and_not_taken(
    hk_config, simulators, broker_at
) -> None:
    """TD says APPROVED, then PROCESSING on every later question: the step back is refused,
    journalled on the exchange once (not once per round), and the application stays approved."""
    sims = await simulators(hk_config)
    sims["hk"].behaviour.status_script = ["APPROVED", "PROCESSING"]
    async with broker_at(hk_config, sims) as (broker, _):
        ex = await _delivered(broker, "vl-back-1")
        poller = Poller(broker, every=0.0)
        changes = [await poller.poll_once() for _ in range(3)]
        done = await broker.get(ex.id)
    assert done is not None
    assert changes == [1, 0, 0]
    assert _steps(done) == ["submitted", "approved"]
    assert done.lifecycle_state == "approved"
    [refused] = [e for e in done.events if e.kind == "lifecycle_refused"]
    assert refused.data["reported"] == "accepted" and refused.data["via"] == "poll"
    assert sims["hk"].cases[ex.receipt["receipt_number"]].status_queries == 3


async def test_polling_keeps_to_the_partners_concurrency_and_breaker(
    hk_config, simulators, broker_at
) -> None:
    """Questions to one partner go side by side, never more than its concurrency (shared with
    deliveries); while its breaker is open it is not asked at all, and asked again once closed."""
    text = (hk_config / "partners.yaml").read_text(encoding="utf-8")
    (hk_config / "partners.yaml").write_text(
        text.replace(
            "    endpoint: https://gateway.td.gov.hk.invalid/gba-exchange/soap/vehicle-licensing\n",
            "    endpoint: https://gateway.td.gov.hk.invalid/gba-exchange/soap/vehicle-licensing\n"
            "    concurrency: 3\n",
        ),
        encoding="utf-8",
    )
    sims = await simulators(hk_config)
    td = sims["hk"]
    async with broker_at(hk_config, sims) as (broker, _):
        exchanges = [await _delivered(broker, f"vl-many-{i}") for i in range(7)]
        poller = Poller(broker, every=0.0)
        breaker = broker.worker.guards(broker.catalogue.config.partners["hk"]).breaker
        for _ in range(breaker.policy.failures):
            breaker.failure()
        while_open = await poller.poll_once()
        asked_while_open = sum(c.status_queries for c in td.cases.values())
        breaker.success()
        td.max_in_flight, td.behaviour.delay = 0, 0.2  # answers take a moment: they overlap
        closed = await poller.poll_once()
    assert (while_open, asked_while_open) == (0, 0)
    assert closed == 7
    assert 2 <= td.max_in_flight <= 3  # side by side, never beyond hk's concurrency
    assert all(td.cases[e.receipt["receipt_number"]].status_queries == 1 for e in exchanges)


async def test_a_supplement_for_a_soap_service_that_takes_none_is_refused(
    hk_config, simulators, broker_at
) -> None:
    """Macao's certificate service takes no supplements (no supplement: section, no
    supplement_operation): 404 problem details, a refusal row, nothing sent to Macao."""
    sims = await simulators(hk_config)
    async with broker_at(hk_config, sims) as (broker, url):
        example = REPO / "mappings/mo/dsi-criminal-record-certificate.examples"
        first = sorted(example.glob("*.json"))[0]
        ex, _ = await broker.submit(
            Submission(
                source="gd-portal",
                partner="mo",
                service="DSI-CRC-REQ",
                idempotency_key="crc-1",
                application=orjson.loads(first.read_bytes())["application"],
            )
        )
        await settle(broker, ex.id, DONE)
        full = await broker.journal.get(ex.id)
        await record_lifecycle(
            broker.journal,
            broker.catalogue,
            full,
            {"lifecycle": "correction_required"},
            {},
            via="test",
        )
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json={"material": {"note": "x"}},
                headers={"Idempotency-Key": "crc-1-s"},
            ) as r:
                problem = await r.json()
                status = r.status
        refusals = await broker.journal.refusals()
    assert status == 404
    assert problem["type"].endswith("unknown-service")
    assert [r.problem for r in refusals] == ["unknown-service"]
    assert sims["mo"].seen.keys() == {ex.id}


# --- partners.yaml and mapping mistakes -----------------------------------------------------------


def _edit(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text(encoding="utf-8")
    assert old in text, old
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def _errors(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_catalogue(root)
    return [str(p).replace(f"{root}/", "") for p in info.value.problems if p.severity == "error"]


def _line(root: Path, path: str, text: str) -> int:
    lines = (root / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


HK_MAPPING = "mappings/hk/td-vehicle-licence-renewal.yaml"


def test_an_unknown_status_operation_is_named_with_the_choices(hk_config) -> None:
    _edit(hk_config, "partners.yaml", "status_operation: GetRenewalStatus", "status_operation: Ask")
    line = _line(hk_config, "partners.yaml", "status_operation: Ask")
    assert _errors(hk_config) == [
        f"partners.yaml:{line}: partners[9].services.TD-VL-RENEW.status_operation: no operation "
        "'Ask' in port VehicleLicensingSoap11Port: RenewVehicleLicence, GetRenewalStatus, "
        "SubmitSupplementaryDocuments"
    ]


def test_status_operation_without_poll_every_is_refused(hk_config) -> None:
    _edit(hk_config, "partners.yaml", "        poll_every: 10m\n", "")
    [error] = _errors(hk_config)
    assert "status_operation and poll_every go together" in error
    assert error.startswith("partners.yaml:")


def test_a_polled_soap_service_needs_a_status_query_section(hk_config) -> None:
    text = (hk_config / HK_MAPPING).read_text(encoding="utf-8")
    start = text.index("status_query:")
    end = text.index("status:", start + len("status_query:"))
    (hk_config / HK_MAPPING).write_text(text[:start] + text[end:], encoding="utf-8")
    line = _line(hk_config, "partners.yaml", "      TD-VL-RENEW:")
    assert _errors(hk_config) == [  # the cause is the setting: shown where it is made
        f"partners.yaml:{line}: partners[9].services.TD-VL-RENEW: calls GetRenewalStatus for "
        f"status requests, but its mapping {HK_MAPPING} has no status_query: section to write "
        "its input"
    ]


def test_status_query_and_supplement_targets_are_checked_against_their_operations(
    hk_config,
) -> None:
    _edit(
        hk_config,
        HK_MAPPING,
        "  ref_no: {from: original.receipt",
        "  refno: {from: original.receipt",
    )
    query = _line(hk_config, HK_MAPPING, "  refno: {from")
    _edit(hk_config, HK_MAPPING, "  remarks: material.note", "  remark: material.note")
    remark = _line(hk_config, HK_MAPPING, "  remark: material.note")
    errors = _errors(hk_config)
    assert (
        f"{HK_MAPPING}:{query}: status_query: target 'refno' is not an element of the input of "
        "hk operation GetRenewalStatus" in errors
    )
    assert (
        f"{HK_MAPPING}:{query}: status_query: the input of hk operation GetRenewalStatus "
        "requires 'ref_no', which no field of the mapping's status_query: section writes" in errors
    )
    assert (
        f"{HK_MAPPING}:{remark}: supplement: target 'remark' is not an element of the input "
        "of hk operation SubmitSupplementaryDocuments" in errors
    )
    assert len(errors) == 3


def test_a_supplement_section_without_a_supplement_operation_is_refused(hk_config) -> None:
    """Without the operation the material would have nowhere to go (it must never be sent as a
    second filing through the service's own operation)."""
    _edit(
        hk_config,
        "partners.yaml",
        "        supplement_operation: SubmitSupplementaryDocuments\n",
        "",
    )
    line = _line(hk_config, HK_MAPPING, "supplement:") + 1  # its first field
    assert _errors(hk_config) == [
        f"{HK_MAPPING}:{line}: supplement: hk / TD-VL-RENEW names no supplement_operation in "
        "partners.yaml: nothing would send what the supplement: section writes"
    ]


def test_polling_a_service_whose_mapping_has_no_status_section_is_refused(hk_config) -> None:
    text = (hk_config / HK_MAPPING).read_text(encoding="utf-8")
    start = text.index("\nstatus:")
    end = text.index("\n# Material for a correction round")
    (hk_config / HK_MAPPING).write_text(text[:start] + text[end:], encoding="utf-8")
    line = _line(hk_config, "partners.yaml", "      TD-VL-RENEW:")
    assert _errors(hk_config) == [
        f"partners.yaml:{line}: partners[9].services.TD-VL-RENEW: polled (poll_every), but its "
        f"mapping {HK_MAPPING} has no status: section to read the answers with"
    ]
