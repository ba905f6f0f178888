"""Inbound: a partner files an application with us; it is journalled, mapped and delivered locally."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import pytest

from adapters.registry import protocols
from federation.domain.models import State
from federation.runtime.poller import Poller
from tests.integration.test_delivery import DONE, settle
from tests.waiting import wait_for, wait_until

KEY = "hk-partner-secret-key-0001"
LOCAL_KEY = "gd-local-system-key-0001"

LOCAL = f"""\
local:
  name: {{zh: 广东省政务服务一体化平台, en: Guangdong Integrated Government Services Platform}}
  region: {{code: "44", iso: CN-GD}}
  protocol: rest
  endpoint: https://zwfw.gd.gov.cn/tongban/inbound
  keys_sha256: ["{hashlib.sha256(LOCAL_KEY.encode()).hexdigest()}"]
"""

INBOUND = f"""\
    inbound:
      keys_sha256: ["{hashlib.sha256(KEY.encode()).hexdigest()}"]
      services:
        GD-GA-RP-HK:
          name: {{zh: 港澳居民居住证申领, en: Residence permit for HK residents}}
          mapping: mappings/inbound-rp.yaml
          path: /applications/residence-permits
"""

MAPPING = """\
mapping: 1
partner: hk
service: GD-GA-RP-HK
names:
  - applicant.name_en
request:
  applicant.name_en: {from: applicant.name_en, required: true}
  applicant.documents.hk_id_card.number: {from: applicant.hkid, required: true, transform: hkid}
  applicant.birth_date: {from: applicant.dob, transform: {date: {from: DD/MM/YYYY, to: iso}}}
  local_reference: {from: reference, required: true}
response:
  receipt_number: {from: resultCode, default: "0"}
"""

APPLICATION = {
    "reference": "HKGOV-2026-000123",
    "applicant": {"name_en": "CHAN, Tai Man", "hkid": "a123456 3", "dob": "16/04/1978"},
}


@pytest.fixture
def inbound_config(make_config):
    """The two-partner test catalogue plus a local system and one inbound service for hk."""
    root: Path = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("partners:\n", LOCAL + "partners:\n", 1)
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + INBOUND, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING, encoding="utf-8")
    return root


def test_inbound_callback_must_be_a_url(inbound_config) -> None:
    """A mistyped callback is a configuration error at its line, not a notice lost later."""
    from federation.config import load_config
    from federation.domain.errors import ConfigError

    text = (inbound_config / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("    inbound:\n", "    inbound:\n      callback: gateway.hk/notices\n", 1)
    (inbound_config / "partners.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("      callback: gateway.hk/notices") + 1
    with pytest.raises(ConfigError) as err:
        load_config(inbound_config, protocols())
    [problem] = err.value.problems
    assert (problem.line, problem.path) == (line, "partners[0].inbound.callback")


def test_the_local_systems_key_is_checked_and_its_absence_warned(inbound_config) -> None:
    """local.keys_sha256: digests only (file:line otherwise); without one, a warning that the
    local system cannot report decisions (the endpoint refuses everyone)."""
    from federation.config import load_config
    from federation.domain.errors import ConfigError

    path = inbound_config / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    digest = hashlib.sha256(LOCAL_KEY.encode()).hexdigest()
    path.write_text(text.replace(digest, "not-a-digest"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(inbound_config, protocols())
    [problem] = [p for p in err.value.problems if p.severity == "error"]
    line = text.splitlines().index(f'  keys_sha256: ["{digest}"]') + 1
    assert (problem.path, problem.line) == ("local.keys_sha256[0]", line)
    path.write_text(text.replace(f'  keys_sha256: ["{digest}"]\n', ""), encoding="utf-8")
    warnings = [str(w) for w in load_config(inbound_config, protocols()).warnings]
    assert any("cannot report its decisions" in w for w in warnings)
    assert load_config(inbound_config, protocols()).local_keys_sha256 == frozenset()


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_partner_files_an_application_delivered_to_the_local_system(
    inbound_config, simulators, broker_at
) -> None:
    """202, journalled as inbound from hk, mapped into the local format and delivered locally."""
    sims = await simulators(inbound_config)
    body = {"service": "GD-GA-RP-HK", "application": APPLICATION}
    async with (
        broker_at(inbound_config, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(
            "/v1/partners/hk/applications", json=body, headers={**auth(), "Idempotency-Key": "hk-1"}
        ) as r:
            assert r.status == 202
            answer = await r.json()
        done = await settle(broker, answer["id"], DONE)
        async with http.post(
            "/v1/partners/hk/applications", json=body, headers={**auth(), "Idempotency-Key": "hk-1"}
        ) as again:
            assert again.status == 200
    assert done.state is State.DELIVERED
    assert (done.direction.value, done.source, done.target) == ("inbound", "hk", "local")
    seen = sims["local"].seen[done.id]  # the local system is sent the exchange id as the key
    assert seen.paths == ["/applications/residence-permits"]
    assert seen.first_body["applicant"]["documents"]["hk_id_card"]["number"] == "A123456(3)"
    assert seen.first_body["applicant"]["birth_date"] == "1978-04-16"


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "slug"),
    [
        (
            "/v1/partners/hk/applications",
            {},
            {"service": "GD-GA-RP-HK", "application": {}},
            401,
            "unauthenticated",
        ),
        (
            "/v1/partners/hk/applications",
            auth("guess"),
            {"service": "GD-GA-RP-HK", "application": {}},
            403,
            "forbidden",
        ),
        (
            "/v1/partners/sc/applications",
            auth(),
            {"service": "GD-GA-RP-HK", "application": {}},
            404,
            "unknown-partner",
        ),
        (
            "/v1/partners/hk/applications",
            auth(),
            {"service": "NOPE", "application": {}},
            404,
            "unknown-service",
        ),
        (
            "/v1/partners/hk/applications",
            auth(),
            {"service": "GD-GA-RP-HK"},
            400,
            "invalid-request",
        ),
    ],
    ids=["no-key", "wrong-key", "partner-without-inbound", "unknown-service", "no-application"],
)
async def test_refusals(
    inbound_config,
    broker_at,
    path: str,
    headers: dict[str, str],
    body: dict[str, object],
    status: int,
    slug: str,
) -> None:
    """Missing or wrong keys, unknown partners or services, bad bodies: problem details, journalled."""
    async with (
        broker_at(inbound_config) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(path, json=body, headers={**headers, "Idempotency-Key": "k"}) as r:
            assert r.status == status
            problem = await r.json()
            if status == 401:
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert problem["type"].endswith(slug)
    assert refusals[0].problem == slug
    assert counts == {}


async def test_reused_key_and_bad_application(inbound_config, simulators, broker_at) -> None:
    """Same key, other body: 409. A bad HKID: 422 naming the field, journalled, nothing passed on."""
    sims = await simulators(inbound_config)
    bad = {**APPLICATION, "applicant": {**APPLICATION["applicant"], "hkid": "A123456(4)"}}
    headers = {**auth(), "Idempotency-Key": "hk-1"}
    async with (
        broker_at(inbound_config, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(
            "/v1/partners/hk/applications",
            json={"service": "GD-GA-RP-HK", "application": bad},
            headers=headers,
        ) as r:
            assert r.status == 422
            problem = await r.json()
        async with http.post(
            "/v1/partners/hk/applications",
            json={"service": "GD-GA-RP-HK", "application": APPLICATION},
            headers=headers,
        ) as r1:
            assert r1.status == 202
        other = {**APPLICATION, "reference": "HKGOV-2026-000999"}
        async with http.post(
            "/v1/partners/hk/applications",
            json={"service": "GD-GA-RP-HK", "application": other},
            headers=headers,
        ) as r2:
            assert r2.status == 409
        refusals = await broker.journal.refusals()
    assert [e["path"] for e in problem["errors"]] == ["applicant.hkid"]
    assert "check character" in problem["errors"][0]["message"]
    assert {r.problem for r in refusals} == {"mapping-failed", "idempotency-conflict"}


async def test_local_system_is_not_an_outbound_partner(inbound_config, broker_at) -> None:
    """Local systems cannot send applications 'to the local system' through the outbound API."""
    body = {"source": "gd-portal", "partner": "local", "service": "GD-GA-RP-HK", "application": {}}
    async with broker_at(inbound_config) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=body, headers={"Idempotency-Key": "x"}) as r:
            assert r.status == 404


SC_STATUS = """\
status:
  lifecycle: {switch: zt, cases: {SL: accepted, BZ: correction_required, PZ: approved, BJ: completed}}
  note: yj
supplement:
  ywlsh: {from: original.receipt.receipt_number, required: true}   # the bureau's case number
  bcsm: {from: material.note, required: true}
  bccl: {from: material.files, required: true}
"""


async def sc_delivered(broker, key: str):  # type: ignore[no-untyped-def]
    """An application to Sichuan's housing fund (as the portal), submitted and settled."""
    from federation.runtime.broker import Submission
    from tests.conftest import SC_APPLICATION

    ex, _ = await broker.submit(
        Submission(
            source="gd-portal",
            partner="sc",
            service="115101000000000000-HF-WITHDRAW",
            idempotency_key=key,
            application=SC_APPLICATION,
        )
    )
    return await settle(broker, ex.id, DONE)


def reporting_config(make_config, *, callback: str | None = None, **options: object) -> Path:
    """The test catalogue with Sichuan reporting status by callback (its key: KEY) and, if given,
    the portal's callback URL (``options`` go to make_config)."""
    root: Path = make_config(**options)
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    if callback is not None:
        text = text.replace(
            "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n",
            "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
            f"    callback: {callback}\n",
        )
    text = text.replace(
        "    endpoint: https://tyrz.sczwfw.gov.cn/tongban\n",
        "    endpoint: https://tyrz.sczwfw.gov.cn/tongban\n"
        f'    inbound:\n      keys_sha256: ["{hashlib.sha256(KEY.encode()).hexdigest()}"]\n',
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    mapping = root / "mappings" / "sc-hf.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8") + SC_STATUS, encoding="utf-8")
    return root


async def test_partner_reports_lifecycle_and_the_source_hears_it(
    make_config, simulators, broker_at
) -> None:
    """A correction round to completion: 补正, material sent as a follow-up, approved, completed."""
    from aiohttp import web

    from federation.api.net import start_site

    heard: list[dict[str, object]] = []

    async def sink(request: web.Request) -> web.Response:
        heard.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/outcomes", sink)
    runner, sink_url = await start_site(app)
    root = reporting_config(make_config, callback=f"{sink_url}/outcomes")

    try:
        sims = await simulators(root)
        async with (
            broker_at(root, sims) as (broker, url),
            aiohttp.ClientSession(base_url=url) as http,
        ):
            ex = await sc_delivered(broker, "sc-1")
            for zt, note in (("SL", "材料齐全，予以受理"), ("BZ", "请补充购房合同原件扫描件")):
                async with http.post(
                    "/v1/partners/sc/status",
                    headers=auth(),
                    json={"idempotency_key": "sc-1", "zt": zt, "yj": note},
                ) as r:
                    assert r.status == 200
            async with http.post(
                "/v1/partners/sc/status",
                headers=auth(),
                json={"idempotency_key": "sc-1", "zt": "??"},
            ) as bad:
                assert bad.status == 422
            async with http.post(
                "/v1/partners/sc/status",
                headers=auth("nope"),
                json={"idempotency_key": "sc-1", "zt": "SL"},
            ) as forbidden:
                assert forbidden.status == 403
            material = {"material": {"note": "购房合同扫描件", "files": ["tbfile://sc/hetong.pdf"]}}
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json=material,
                headers={"Idempotency-Key": "sc-1-bz-1"},
            ) as r:
                assert r.status == 202
                child = (await r.json())["id"]
            await settle(broker, child, DONE)
            # The parent hears of its delivered supplement in a write of its own, just after.
            await wait_for(
                lambda: broker.get(ex.id),
                lambda p: p is not None and p.lifecycle()[-1]["state"] == "submitted",
                what="the parent to be submitted again",
            )
            async with http.post(
                f"/v1/exchanges/{ex.id}/supplements",
                json=material,
                headers={"Idempotency-Key": "sc-1-bz-2"},
            ) as again:
                assert again.status == 409  # no correction outstanding any more
            for zt in ("PZ", "BJ"):
                async with http.post(
                    "/v1/partners/sc/status",
                    headers=auth(),
                    json={"idempotency_key": "sc-1", "zt": zt},
                ) as r:
                    assert r.status == 200
            async with http.get(f"/v1/exchanges/{ex.id}") as r:
                view = await r.json()
            async with http.get(f"/v1/exchanges/{child}") as r:
                child_view = await r.json()
            async with http.get("/v1/exchanges", params={"lifecycle": "completed"}) as r:
                completed = [e["id"] for e in (await r.json())["exchanges"]]
            async with http.get("/v1/exchanges", params={"lifecycle": "pending"}) as r:
                assert r.status == 400
            await wait_until(
                lambda: any(h.get("lifecycle") == "completed" for h in heard),
                what="the source to hear of completion",
            )
    finally:
        await runner.cleanup()
    assert [s["state"] for s in view["lifecycle"]] == [
        "submitted",
        "accepted",
        "correction_required",
        "submitted",
        "approved",
        "completed",
    ]
    assert view["lifecycle"][2]["note"] == "请补充购房合同原件扫描件"
    assert completed == [ex.id]  # searchable by where it stands at the partner
    assert child_view["supplement_of"] == ex.id
    assert child_view["state"] == "delivered"
    follow_up = sims["sc"].seen[child]
    assert follow_up.paths == ["/supplements"]
    assert follow_up.first_body == {
        "ywlsh": view["receipt"]["receipt_number"],  # names the application it completes
        "bcsm": "购房合同扫描件",
        "bccl": ["tbfile://sc/hetong.pdf"],
    }
    assert all(s["at"] for s in view["lifecycle"])
    last = [h for h in heard if h.get("lifecycle")][-1]
    assert [s["state"] for s in last["lifecycle_steps"]][:3] == [
        "submitted",
        "accepted",
        "correction_required",
    ]


def _polled_config(make_config, every: str = "100ms") -> Path:
    """The test configuration with Sichuan's housing fund polled that often (SL → PZ → BJ)."""
    root: Path = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace(
        '      "115101000000000000-HF-WITHDRAW": mappings/sc-hf.yaml\n',
        '      "115101000000000000-HF-WITHDRAW":\n        mapping: mappings/sc-hf.yaml\n'
        f"        status_path: /gjj/status\n        poll_every: {every}\n",
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    mapping = root / "mappings" / "sc-hf.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8")
        + "status:\n  lifecycle: {switch: status, cases: {SL: accepted, PZ: approved, BJ: completed}}\n",
        encoding="utf-8",
    )
    return root


async def test_status_is_polled_for_partners_that_cannot_call_back(
    make_config, simulators, broker_at
) -> None:
    """With status_path and poll_every, the broker asks; each new state is journalled and shown,
    and a completed application is asked about no more."""

    root = _polled_config(make_config)
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, _):
        ex = await sc_delivered(broker, "poll-1")
        done = await wait_for(
            lambda: broker.get(ex.id),
            lambda e: e is not None and e.lifecycle_state == "completed",
            what="the poller to learn the application is completed",
        )
        # A round in which everything is due: the completed application is not among it.
        asked_again = await Poller(broker, every=0.0).poll_once()
    steps = [s["state"] for s in done.lifecycle()]
    assert steps == ["submitted", "accepted", "approved", "completed"]
    assert [e.data.get("via") for e in done.events if e.kind == "lifecycle"] == ["poll"] * 3
    assert asked_again == 0
    assert sims["sc"].status_queries[ex.id] == 3  # asked by the key it was sent


async def test_one_polling_round_asks_about_every_outstanding_application(
    make_config, simulators, broker_at, monkeypatch
) -> None:
    """More outstanding applications than one page: one round asks about all of them, oldest too."""
    import federation.runtime.poller
    from federation.runtime.broker import Submission
    from tests.conftest import SC_APPLICATION

    monkeypatch.setattr(federation.runtime.poller, "PAGE", 2)  # 5 applications span three pages
    root = _polled_config(make_config, every="1h")  # the broker's own poller stays asleep
    sims = await simulators(root)
    keys = [f"paged-{i}" for i in range(5)]
    async with broker_at(root, sims) as (broker, _):
        ids = []
        for key in keys:
            ex, _ = await broker.submit(
                Submission(
                    source="gd-portal",
                    partner="sc",
                    service="115101000000000000-HF-WITHDRAW",
                    idempotency_key=key,
                    application=SC_APPLICATION,
                )
            )
            ids.append(ex.id)
        for ex_id in ids:
            await settle(broker, ex_id, DONE)
        poller = federation.runtime.poller.Poller(broker)
        changed = await poller.poll_once()
        states = [(await broker.get(i)).lifecycle_state for i in ids]  # type: ignore[union-attr]
        again = await poller.poll_once()  # within the hour: nobody is due
    assert changed == 5
    assert states == ["accepted"] * 5
    assert {x: sims["sc"].status_queries[x] for x in ids} == dict.fromkeys(ids, 1)
    assert again == 0


async def test_the_local_decision_flows_back_to_the_partner_that_filed(
    inbound_config, simulators, broker_at
) -> None:
    """Guangdong's word on what Hong Kong filed: reported by the local system, journalled under
    the lifecycle rules, POSTed to hk's inbound.callback and readable by hk with its key."""
    from aiohttp import web

    from federation.api.net import start_site

    heard: list[tuple[str, dict[str, object]]] = []

    async def sink(request: web.Request) -> web.Response:
        heard.append((request.headers["Idempotency-Key"], await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hk/notices", sink)
    runner, sink_url = await start_site(app)
    text = (inbound_config / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    inbound:\n", f"    inbound:\n      callback: {sink_url}/hk/notices\n", 1
    )
    (inbound_config / "partners.yaml").write_text(text, encoding="utf-8")
    sims = await simulators(inbound_config)
    body = {"service": "GD-GA-RP-HK", "application": APPLICATION}
    answers: list[tuple[int, dict[str, object]]] = []
    try:
        async with (
            broker_at(inbound_config, sims) as (broker, url),
            aiohttp.ClientSession(base_url=url) as http,
        ):
            async with http.post(
                "/v1/partners/hk/applications",
                json=body,
                headers={**auth(), "Idempotency-Key": "HKDPO-2026-0042"},
            ) as r:
                xid = (await r.json())["id"]
            await settle(broker, xid, DONE)
            async with http.get(
                "/v1/partners/hk/applications/HKDPO-2026-0042", headers=auth()
            ) as r:
                before = await r.json()
            for decision in (
                {"lifecycle": "accepted", "case_number": "44000020261129000042"},
                {"lifecycle": "approved", "note": "准予许可"},
                {"lifecycle": "accepted"},  # a step back: refused
                {"lifecycle": "granted", "by": "me"},  # not ours to invent
            ):
                async with http.post(
                    f"/v1/exchanges/{xid}/lifecycle", json=decision, headers=auth(LOCAL_KEY)
                ) as r:
                    answers.append((r.status, await r.json()))
            for who in (auth(), {}):  # hk itself, nobody: not theirs to decide
                async with http.post(
                    f"/v1/exchanges/{xid}/lifecycle", json={"lifecycle": "completed"}, headers=who
                ) as r:
                    answers.append((r.status, await r.json()))
            outbound = await sc_delivered(broker, "sc-out-1")
            async with http.post(
                f"/v1/exchanges/{outbound.id}/lifecycle",
                json={"lifecycle": "approved"},
                headers=auth(LOCAL_KEY),
            ) as r:
                not_ours = (r.status, await r.json())
            await wait_until(  # the notifier sends the steps as they are journalled
                lambda: any(k.endswith(":lifecycle:approved") for k, _ in heard),
                what="hk to hear of the approval",
            )
            async with http.get(
                "/v1/partners/hk/applications/HKDPO-2026-0042", headers=auth()
            ) as r:
                after = await r.json()
            async with http.get("/v1/partners/hk/applications/HKDPO-2026-0042") as r:
                anonymous = r.status
            async with http.get(
                "/v1/partners/hk/applications/nobody-filed-this", headers=auth()
            ) as r:
                unknown = r.status
            refusals = await broker.journal.refusals()
    finally:
        await runner.cleanup()
    assert [s["state"] for s in before["lifecycle"]] == ["submitted"]
    assert before["state"] == "delivered"
    assert [(status, a.get("changed")) for status, a in answers] == [
        (200, True),
        (200, True),
        (409, None),
        (400, None),
        (403, None),
        (401, None),
    ]
    assert answers[3][1]["detail"] == (
        "by: unknown field (lifecycle, note, case_number); lifecycle: 'granted' is not one of: "
        "submitted, accepted, not_accepted, correction_required, review, approved, refused, "
        "completed, served"
    )
    assert not_ours[0] == 409 and not_ours[1]["type"].endswith(":not-inbound")
    assert [s["state"] for s in after["lifecycle"]] == ["submitted", "accepted", "approved"]
    assert after["lifecycle"][2]["note"] == "准予许可"
    # notices close together are coalesced: the last one carries every step so far
    assert heard[-1][0] == f"{xid}:lifecycle:approved"
    last = heard[-1][1]
    assert last["exchange_id"] == xid and last["idempotency_key"] == "HKDPO-2026-0042"
    steps = [s["state"] for s in last["lifecycle_steps"]]  # type: ignore[attr-defined]
    assert steps == ["submitted", "accepted", "approved"]
    assert (anonymous, unknown) == (401, 404)
    assert {r.problem for r in refusals} >= {
        "lifecycle-out-of-order",
        "invalid-request",
        "not-inbound",
        "unauthenticated",
        "not-found",
    }


async def test_a_correction_round_on_what_a_partner_filed(
    inbound_config, simulators, broker_at
) -> None:
    """The local authority asks hk for more (补正); hk's material, mapped now, reaches the local
    system as a follow-up naming the local case; the application is submitted again."""
    mapping = inbound_config / "mappings" / "inbound-rp.yaml"
    text = mapping.read_text(encoding="utf-8").replace(
        '  receipt_number: {from: resultCode, default: "0"}',
        "  receipt_number: {from: acceptance_no, required: true}",
    )
    mapping.write_text(
        text
        + "supplement:\n"
        + "  acceptance_no: {from: original.receipt.receipt_number, required: true}\n"
        + "  note: {from: material.remarks, required: true}\n"
        + "  files: material.files\n",
        encoding="utf-8",
    )
    sims = await simulators(inbound_config)
    body = {"service": "GD-GA-RP-HK", "application": APPLICATION}
    material = {"remarks": "住址证明（租赁合同）", "files": ["hkfile://dpo/lease.pdf"]}
    path = "/v1/partners/hk/applications/HKDPO-2026-0077/supplements"
    statuses: dict[str, int] = {}
    async with (
        broker_at(inbound_config, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post(
            "/v1/partners/hk/applications",
            json=body,
            headers={**auth(), "Idempotency-Key": "HKDPO-2026-0077"},
        ) as r:
            xid = (await r.json())["id"]
        parent = await settle(broker, xid, DONE)
        supplement = {**auth(), "Idempotency-Key": "HKDPO-2026-0077-S1"}
        async with http.post(path, json={"material": material}, headers=supplement) as r:
            statuses["before any request for more"] = r.status
        async with http.post(
            f"/v1/exchanges/{xid}/lifecycle",
            json={"lifecycle": "correction_required", "note": "请补充住址证明"},
            headers=auth(LOCAL_KEY),
        ) as r:
            assert r.status == 200
        async with http.post(
            f"/v1/exchanges/{xid}/supplements", json={"material": material}, headers=supplement
        ) as r:
            statuses["through the local API"] = r.status
        async with http.post(
            path, json={"material": {"files": []}}, headers={**auth(), "Idempotency-Key": "bad"}
        ) as r:
            statuses["unmappable"] = r.status
            unmappable = await r.json()
        async with http.post(path, json={"material": material}, headers=supplement) as r:
            statuses["filed"] = r.status
            child = (await r.json())["id"]
        sent = await settle(broker, child, DONE)
        async with http.post(
            f"/v1/exchanges/{child}/lifecycle",
            json={"lifecycle": "accepted"},
            headers=auth(LOCAL_KEY),
        ) as r:
            statuses["a decision on the supplement"] = r.status  # decide on the application
        async with http.post(path, json={"material": material}, headers=supplement) as r:
            statuses["repeated"] = r.status
            again = (await r.json())["id"]
        async with http.get("/v1/partners/hk/applications/HKDPO-2026-0077", headers=auth()) as r:
            seen_by_hk = await r.json()
    assert statuses == {
        "before any request for more": 409,
        "through the local API": 409,  # material for hk's application comes from hk
        "unmappable": 422,
        "filed": 202,
        "a decision on the supplement": 409,
        "repeated": 200,
    }
    assert unmappable["errors"][0]["path"] == "material.remarks"
    assert again == child
    assert sent.state is State.DELIVERED and sent.supplement_of == xid
    follow_up = sims["local"].seen[child]
    assert follow_up.paths == ["/applications/residence-permits/supplements"]
    assert follow_up.first_body == {
        "acceptance_no": parent.receipt["receipt_number"],
        "note": "住址证明（租赁合同）",
        "files": ["hkfile://dpo/lease.pdf"],
    }
    assert [s["state"] for s in seen_by_hk["lifecycle"]] == [
        "submitted",
        "correction_required",
        "submitted",
    ]
