"""A JSON key named twice in one object (``{"partner": "hk", …, "partner": "sc"}``) could be read
either way: at intake it is refused, 400 naming the key's path and never a value, with a refusal
row (on every journal backend); from a partner, whatever the order, it is never its yes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.models import State
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_charsets import (
    FJ_RULES,
    PROBLEM,
    RECEIPT,
    SOAP_HEADERS,
    envelope,
    partner_answering,
    post,
    submission_text,
)
from tests.integration.test_delivery import DONE, sc_submission, settle, with_sc_reply
from tests.integration.test_inbound import inbound_config  # noqa: F401 (fixture)
from tests.integration.test_soap_inbound import soap_config  # noqa: F401 (fixture)


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An unopened journal of each backend (the broker opens it)."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


@pytest.fixture
def soap_root(request: pytest.FixtureRequest) -> Path:
    """The inbound catalogue in which hk files by SOAP (test_soap_inbound's)."""
    root: Path = request.getfixturevalue("soap_config")
    return root


# -- the JSON intake ----------------------------------------------------------------------------


async def test_a_key_named_twice_is_refused_and_journalled(
    make_config, broker_at, journal: Any
) -> None:
    """{"partner": "hk", …, "partner": "sc"} is 400 naming the key; nothing goes to either."""
    body = submission_text()[:-1] + ',"partner":"sc"}'
    async with broker_at(make_config(), journal_obj=journal) as (broker, url):
        status, answer = await post(
            url,
            "/v1/exchanges",
            body.encode(),
            {"Content-Type": "application/json", "Idempotency-Key": "k9"},
        )
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    problem = orjson.loads(answer)
    assert status == 400
    assert problem["type"] == PROBLEM + "malformed-json"
    assert "key partner appears more than once" in problem["detail"]
    assert [(r.status, r.problem, r.body) for r in refusals] == [
        (400, "malformed-json", body.encode())
    ]
    assert counts == {}


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (
            submission_text().replace('"name":"陳大文"', '"name":"陳大文","name":"陈大文"'),
            "application.applicant.name",
        ),
        (
            submission_text().replace('"name":"陳大文"', '"name":"陳大文","\\u006eame":"陳大文"'),
            "application.applicant.name",
        ),
        (
            submission_text(documents=[{"kind": "B"}]).replace('"kind"', '"kind":"A","kind"'),
            "application.documents[0].kind",
        ),
    ],
    ids=["nested-different-values", "escaped-same-value", "array-of-objects"],
)
async def test_a_nested_key_named_twice_is_refused_by_its_path(
    make_config, broker_at, text: str, path: str
) -> None:
    """The path is named, never the values it held."""
    async with broker_at(make_config()) as (_, url):
        status, answer = await post(
            url,
            "/v1/exchanges",
            text.encode(),
            {"Content-Type": "application/json", "Idempotency-Key": "k"},
        )
    detail = orjson.loads(answer)["detail"]
    assert status == 400 and f"key {path} appears more than once" in detail
    assert "陳" not in detail and "陈" not in detail


# -- the SOAP intake ----------------------------------------------------------------------------


async def test_a_soap_application_with_a_key_named_twice_is_refused(soap_root, broker_at) -> None:
    """The application's JSON text inside the envelope is read as strictly as a JSON body."""
    text = '{"reference":"HKGOV-2026-000123","reference":"HKGOV-2026-000999","applicant":{}}'
    headers = {**SOAP_HEADERS, "Content-Type": "text/xml; charset=utf-8"}
    async with broker_at(soap_root) as (broker, url):
        status, reply = await post(url, "/v1/partners/hk/soap", envelope(text).encode(), headers)
        refusals = await broker.journal.refusals()
    assert status == 500
    assert b"key reference appears more than once" in reply
    assert b"000999" not in reply
    assert [r.problem for r in refusals] == ["malformed-json"]


# -- partner replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"resultCode":"E9","resultCode":"0",' + RECEIPT + "}", "resultCode"),
        ('{"resultCode":"0","resultCode":"E9",' + RECEIPT + "}", "resultCode"),
        (
            '{"resultCode":"0","result":{"ywlsh":"SC1","ywlsh":"SC2","zt":"SL"}}',
            "result.ywlsh",
        ),
        ('{"resultCode":"0","\\u0072esultCode":"0",' + RECEIPT + "}", "resultCode"),
    ],
    ids=["no-then-yes", "yes-then-no", "nested", "escaped-same-value"],
)
async def test_a_reply_with_a_key_named_twice_is_never_delivered(
    make_config, broker_at, body: str, says: str
) -> None:
    """A result code given twice, in either order: unconfirmed, the attempt's outcome unknown,
    the key named in last_error, the reply in the transcript."""
    root = with_sc_reply(make_config(), FJ_RULES)
    async with (
        partner_answering(body, "application/json") as partner,
        broker_at(root, {"sc": partner}) as (broker, _),
    ):
        ex, _ = await broker.submit(sc_submission("sc-two-ways"))
        done = await settle(broker, ex.id, DONE | {State.UNCONFIRMED})
    assert done.state is State.UNCONFIRMED and done.receipt is None
    error = done.last_error or {}
    assert error["kind"] == "unconfirmed"
    assert f"key {says} appears more than once" in error["message"]
    assert "whether it took the request is unknown" in error["message"]
    [attempt] = done.attempt_history()
    assert attempt.outcome is not None and attempt.outcome.value == "unknown_outcome"
    assert attempt.response is not None and '"resultCode"' in attempt.response["body"]


async def test_an_ambiguous_reply_is_unconfirmed_on_every_backend(
    make_config, broker_at, journal: Any
) -> None:
    """The duplicated result code's unconfirmed exchange, as SQLite, PostgreSQL and memory keep it."""
    root = with_sc_reply(make_config(), FJ_RULES)
    body = '{"resultCode":"E9","resultCode":"0",' + RECEIPT + "}"
    async with (
        partner_answering(body, "application/json") as partner,
        broker_at(root, {"sc": partner}, journal_obj=journal) as (broker, _),
    ):
        ex, _ = await broker.submit(sc_submission("sc-every"))
        await settle(broker, ex.id, DONE | {State.UNCONFIRMED})
        kept = await broker.get(ex.id)
    assert kept is not None and kept.state is State.UNCONFIRMED
    assert "key resultCode appears more than once" in (kept.last_error or {})["message"]
