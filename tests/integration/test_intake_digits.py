"""Intake reads the local format's patterns as JSON Schema means them: a date written in full-width
digits is refused at the door, naming the field, with a refusal row on every journal backend, not
accepted and then rejected later for the wrong reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import HK_APPLICATION
from tests.integration.pg import JOURNALS, unopened_journal_of

PROBLEM = "application/problem+json"


@pytest.fixture(params=JOURNALS)
async def any_journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An unopened journal of each backend."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


@pytest.mark.parametrize("birth_date", ["１９９２-０８-２０", "1992-08-20\n"])
async def test_a_date_outside_ascii_digits_is_refused_at_intake(
    make_config, broker_at, any_journal: Any, birth_date: str
) -> None:
    """422 invalid-application pointing at the birth date; nothing filed, the refusal journalled."""
    applicant = {**HK_APPLICATION["applicant"], "birth_date": birth_date}
    body = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": {**HK_APPLICATION, "applicant": applicant},
    }
    async with (
        broker_at(make_config(), journal_obj=any_journal) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        async with http.post("/v1/exchanges", json=body, headers={"Idempotency-Key": "fw"}) as r:
            status, content_type, problem = r.status, r.content_type, await r.json()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert (status, content_type) == (422, PROBLEM)
    assert problem["type"] == "urn:tongban:problem:invalid-application"
    assert [e["pointer"] for e in problem["errors"]] == ["/application/applicant/birth_date"]
    assert "１９９２" not in str(problem)
    assert [r.problem for r in refusals] == ["invalid-application"]
    assert not any(counts.values())
