"""A submission route is told a query and one Idempotency-Key; whatever it cannot read is refused.

A misspelt (``dry-run``, ``dryrun``, ``Dry_Run``), repeated (``dry_run=false&dry_run=true``) or
unknown query parameter, a ``dry_run`` neither true nor false, and two Idempotency-Key headers:
each is 400 problem details naming what is wrong and a refusal row in the journal (with the body
and the key as received), never a real submission, on every journal backend. Before, all but a
lone dry_run neither true nor false were filed for real (202), ran dry or were stored under the
first key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import (  # noqa: F401 (fixture)
    APPLICATION,
    LOCAL_KEY,
    auth,
    inbound_config,
    reporting_config,
    sc_delivered,
)
from tests.integration.test_intake_api import BODY

QUERIES = [
    ("dry_run=false&dry_run=true", "dry_run given more than once"),
    ("dry_run=true&dry_run=1", "dry_run given more than once"),
    ("dry-run=true", "'dry-run' (did you mean dry_run?)"),
    ("dryrun=true", "'dryrun' (did you mean dry_run?)"),
    ("Dry_Run=true", "'Dry_Run' (did you mean dry_run?)"),
    ("dry_rn=true", "'dry_rn' (did you mean dry_run?)"),
    ("dry_run=1", "dry_run must be true or false"),
    ("dry_run=true&partner=hk", "unknown query parameter(s): 'partner'; it takes only dry_run"),
]
FILING = {"service": "GD-GA-RP-HK", "application": APPLICATION}
PROBLEM = "urn:tongban:problem:"


def two_keys(*extra: tuple[str, str]) -> CIMultiDict[str]:
    """Headers with the Idempotency-Key sent twice (and ``extra``)."""
    return CIMultiDict([*extra, ("Idempotency-Key", "a1"), ("Idempotency-Key", "a2")])


async def refused_queries(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[int, dict[str, Any], str]]:
    """POST ``body`` to ``path`` with each of QUERIES (a key of its own each): the answers."""
    answers = []
    for i, (query, _) in enumerate(QUERIES):
        sent = {**headers, "Idempotency-Key": f"q-{i}"}
        async with http.post(f"{path}?{query}", json=body, headers=sent) as r:
            answers.append((r.status, await r.json(), r.content_type))
    return answers


def check_refused(answers: list[tuple[int, dict[str, Any], str]], refusals: list[Any]) -> None:
    """Every query answered 400 invalid-query naming what is wrong, each kept as a refusal with
    its body and key."""
    for (status, problem, ctype), (query, said) in zip(answers, QUERIES, strict=True):
        assert (status, ctype, problem["type"]) == (
            400,
            "application/problem+json",
            PROBLEM + "invalid-query",
        ), query
        assert said in problem["detail"], (query, problem["detail"])
        assert "nothing was filed" in problem["detail"]
    assert len(refusals) == len(QUERIES)
    assert {r.problem for r in refusals} == {"invalid-query"}
    assert {r.idempotency_key for r in refusals} == {f"q-{i}" for i in range(len(QUERIES))}
    assert all(b"application" in r.body and r.body_bytes == len(r.body) for r in refusals)


async def test_a_misspelt_repeated_or_unknown_query_files_nothing_at_intake(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """``POST /v1/exchanges``: every query of QUERIES is 400 and a refusal, no exchange; a plain
    ``dry_run=false`` still files and ``dry_run=true`` still only answers."""
    async with (
        broker_at(make_config(), journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        answers = await refused_queries(http, "/v1/exchanges", BODY, {})
        refusals = await broker.journal.refusals()
        counts = dict(await broker.journal.counts())
        async with http.post("/v1/exchanges?dry_run=true", json=BODY) as dry:
            assert dry.status == 200
        async with http.post(
            "/v1/exchanges?dry_run=false", json=BODY, headers={"Idempotency-Key": "real"}
        ) as real:
            assert real.status == 202
        filed = sum((await broker.journal.counts()).values())
    check_refused(answers, refusals)
    assert counts == {}
    assert filed == 1


async def test_a_misspelt_repeated_or_unknown_query_files_nothing_from_a_partner(
    inbound_config: Path,  # noqa: F811
    broker_at: Any,
    journal_of: Any,
) -> None:
    """``POST /v1/partners/{partner}/applications``: the same, with the partner's key."""
    async with (
        broker_at(inbound_config, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        answers = await refused_queries(http, "/v1/partners/hk/applications", FILING, auth())
        refusals = await broker.journal.refusals()
        counts = dict(await broker.journal.counts())
        async with http.post(
            "/v1/partners/hk/applications?dry_run=false",
            json=FILING,
            headers={**auth(), "Idempotency-Key": "real"},
        ) as real:
            assert real.status == 202
    check_refused(answers, refusals)
    assert counts == {}


async def test_two_idempotency_keys_are_refused_on_every_filing_route(
    inbound_config: Path,  # noqa: F811
    broker_at: Any,
    journal_of: Any,
) -> None:
    """Two Idempotency-Key headers, at intake (filing and dry run) and from a partner: 400
    missing-idempotency-key, a refusal kept with both keys as received, nothing filed."""
    sent = [
        ("/v1/exchanges", BODY, two_keys()),
        ("/v1/exchanges?dry_run=true", BODY, two_keys()),
        ("/v1/partners/hk/applications", FILING, two_keys(*auth().items())),
    ]
    answers = []
    async with (
        broker_at(inbound_config, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        for path, body, headers in sent:
            async with http.post(path, json=body, headers=headers) as r:
                answers.append((r.status, await r.json()))
        refusals = await broker.journal.refusals()
        counts = dict(await broker.journal.counts())
    for status, problem in answers:
        assert (status, problem["type"]) == (400, PROBLEM + "missing-idempotency-key"), problem
        assert problem["detail"].startswith("2 Idempotency-Key headers: send exactly one")
    assert len(refusals) == len(sent)
    assert {(r.problem, r.idempotency_key) for r in refusals} == {
        ("missing-idempotency-key", "a1, a2")
    }
    assert all(b"application" in r.body for r in refusals)
    assert counts == {}


async def test_a_partners_supplement_takes_no_query_and_one_key(
    inbound_config: Path,  # noqa: F811
    simulators: Any,
    broker_at: Any,
    journal_of: Any,
) -> None:
    """Material a partner sends while a correction is outstanding: a ``dry_run`` (no such thing
    here) or two keys are refused and journalled; the same material, asked plainly, is filed."""
    mapping = inbound_config / "mappings" / "inbound-rp.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8") + "supplement:\n  note: {from: material.remarks}\n",
        encoding="utf-8",
    )
    sims = await simulators(inbound_config)
    material = {"material": {"remarks": "住址证明"}}
    path = "/v1/partners/hk/applications/HKDPO-1/supplements"
    async with (
        broker_at(inbound_config, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        headers = {**auth(), "Idempotency-Key": "HKDPO-1"}
        async with http.post("/v1/partners/hk/applications", json=FILING, headers=headers) as r:
            xid = (await r.json())["id"]
        await settle(broker, xid, DONE)
        decision = {"lifecycle": "correction_required", "note": "请补充住址证明"}
        async with http.post(
            f"/v1/exchanges/{xid}/lifecycle", json=decision, headers=auth(LOCAL_KEY)
        ) as r:
            assert r.status == 200
        statuses = await _supplements(http, path, material, auth())
        refusals = await broker.journal.refusals()
    assert statuses == [
        (400, "invalid-query"),
        (400, "missing-idempotency-key"),
        (202, None),
    ]
    assert [r.problem for r in sorted(refusals, key=lambda r: r.at)] == [
        "invalid-query",
        "missing-idempotency-key",
    ]


async def test_a_sources_supplement_takes_no_query_and_one_key(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """Material the portal sends after Sichuan asked for more (补正): the same as a partner's."""
    root = reporting_config(make_config)
    sims = await simulators(root)
    material = {"material": {"note": "购房合同扫描件", "files": ["tbfile://sc/hetong.pdf"]}}
    async with (
        broker_at(root, sims, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        ex = await sc_delivered(broker, "sc-1")
        async with http.post(
            "/v1/partners/sc/status", headers=auth(), json={"idempotency_key": "sc-1", "zt": "BZ"}
        ) as r:
            assert r.status == 200
        statuses = await _supplements(http, f"/v1/exchanges/{ex.id}/supplements", material, {})
        refusals = await broker.journal.refusals()
    assert statuses == [
        (400, "invalid-query"),
        (400, "missing-idempotency-key"),
        (202, None),
    ]
    assert {r.problem for r in refusals} == {"invalid-query", "missing-idempotency-key"}


async def _supplements(
    http: aiohttp.ClientSession, path: str, material: dict[str, Any], headers: dict[str, str]
) -> list[tuple[int, str | None]]:
    """The material sent with ``?dry_run=true``, then with two keys, then plainly."""
    tries = [
        (f"{path}?dry_run=true", CIMultiDict({**headers, "Idempotency-Key": "s-1"})),
        (path, two_keys(*headers.items())),
        (path, CIMultiDict({**headers, "Idempotency-Key": "s-1"})),
    ]
    statuses: list[tuple[int, str | None]] = []
    for target, sent in tries:
        async with http.post(target, json=material, headers=sent) as r:
            answer = await r.json()
            slug = answer["type"].removeprefix(PROBLEM) if r.status >= 400 else None
            statuses.append((r.status, slug))
    return statuses


SECRET = "hk-gateway-signing-secret-in-query"
SIGNED_IN_QUERY = """\
      signing:
        app_key: hk-immd-gw
        secret: "{env:TB_TEST_HK_QUERY_SECRET}"
        window: 120
        place: query
"""


@pytest.fixture
def query_signed_config(
    inbound_config: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The inbound catalogue with hk signing its calls in the query string."""
    root: Path = inbound_config
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("    inbound:\n", "    inbound:\n" + SIGNED_IN_QUERY, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("TB_TEST_HK_QUERY_SECRET", SECRET)
    return root


def signed_query(body: bytes, extra: str = "") -> str:
    """The query a gateway signing in the query sends (its own parameters, then ``extra``)."""
    stamp, nonce = str(int(time.time() * 1000)), uuid.uuid4().hex
    kept = "&".join(sorted(p for p in extra.split("&") if p))
    path = "/v1/partners/hk/applications"
    text = "\n".join(["POST", path, kept, hashlib.sha256(body).hexdigest(), stamp, nonce])
    mac = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    own = f"X-App-Key=hk-immd-gw&X-Timestamp={stamp}&X-Nonce={nonce}&X-Signature={mac}"
    return f"{path}?{own}" + (f"&{extra}" if extra else "")


async def test_a_partner_signing_in_the_query_is_still_heard(
    query_signed_config: Path, broker_at: Any
) -> None:
    """The signing parameters are the partner's own, not unknown ones: its dry run and its filing
    are answered; a misspelt dry_run beside them is still refused."""
    body = orjson.dumps(FILING)
    headers = {**auth(), "Content-Type": "application/json"}
    statuses = []
    async with (
        broker_at(query_signed_config) as (_, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        for extra, key in (("dry_run=true", "k1"), ("dryrun=true", "k2"), ("", "k3")):
            sent = {**headers, "Idempotency-Key": key}
            async with http.post(signed_query(body, extra), data=body, headers=sent) as r:
                statuses.append((r.status, (await r.json()).get("type")))
    assert statuses == [(200, None), (400, PROBLEM + "invalid-query"), (202, None)]
