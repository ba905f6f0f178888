"""A request the broker answers 500 (a defect: ``internal-error``) is kept in the journal's
refusals, as the problem's fix says: an application with its body (sealed, as every refused body
is), a replay request with its size only (its reason and filters can name a person). The answer
stays the 500, its log line says nothing of the request. Through the real HTTP app, on every
journal."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.api import support
from federation.logging import capture_logs
from replay.journal import Backend
from tests.conftest import HK_APPLICATION
from tests.integration.pg import JOURNALS, unopened_journal_of

NAME = "CHAN, Tai Man"  # what the defect's message quotes: never logged
SUBMISSION = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


def broken(*_: Any, **__: Any) -> Any:
    raise RuntimeError(f"a defect quoting {NAME}")


async def test_an_application_answered_500_is_kept_with_its_body(
    make_config: Any, broker_at: Any, journal_of: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = orjson.dumps({**SUBMISSION, "application": HK_APPLICATION})
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        monkeypatch.setattr(broker, "submit", broken)
        with capture_logs() as logs:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{url}/v1/exchanges",
                    data=io.BytesIO(body),
                    headers={"Content-Type": "application/json", "Idempotency-Key": "k-500"},
                ) as r,
            ):
                status, problem = r.status, await r.json(content_type=None)
        refusals = await broker.journal.refusals()
    assert (status, problem["type"]) == (500, "urn:tongban:problem:internal-error")
    [row] = refusals
    assert (row.status, row.problem, row.path) == (500, "internal-error", "/v1/exchanges")
    assert (row.body, row.body_bytes) == (body, len(body))
    assert NAME not in repr(logs)


async def test_a_replay_answered_500_keeps_its_size_only(
    make_config: Any, broker_at: Any, journal_of: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = orjson.dumps({"mode": "resend", "reason": "申请人 CHAN 来电", "filter": {}})
    async with broker_at(make_config(), journal_obj=journal_of) as (broker, url):
        monkeypatch.setattr(support, "_replayed", broken)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{url}/v1/replays",
                data=io.BytesIO(body),
                headers={"Content-Type": "application/json"},
            ) as r,
        ):
            status = r.status
        refusals = await broker.journal.refusals()
    assert status == 500
    [row] = [r for r in refusals if r.problem == "internal-error"]
    assert (row.path, row.body, row.body_bytes) == ("/v1/replays", b"", len(body))
