"""A partner asking after (or adding material to) an application by a key holding NUL: no journal
holds such a key, so it is 404 "filed no application with that key" on every journal. On
PostgreSQL the key reached the database and the partner was answered 503 "journal unavailable;
retry later", with an error log, on a healthy journal."""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from tests.integration.test_inbound import auth, inbound_config  # noqa: F401 (fixture)


async def test_an_application_key_holding_nul_is_not_found(
    inbound_config,  # noqa: F811
    broker_at,
    journal_of: Any,
) -> None:
    async with (
        broker_at(inbound_config, journal_obj=journal_of) as (_broker, url),
        aiohttp.ClientSession() as http,
    ):
        answers = []
        for key in ("a%00b", "plain-key"):
            target = URL(f"{url}/v1/partners/hk/applications/{key}", encoded=True)
            async with http.get(target, headers=auth()) as r:
                answers.append((key, r.status, await r.text()))
        target = URL(f"{url}/v1/partners/hk/applications/a%00b/supplements", encoded=True)
        headers = {**auth(), "Idempotency-Key": "s-1"}
        async with http.post(target, json={"material": {}}, headers=headers) as r:
            answers.append(("supplement", r.status, await r.text()))
    for what, status, body in answers:
        assert status == 404, (what, body)
        assert "filed no application with that key" in body
