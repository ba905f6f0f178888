"""The console's sign-in form sent with a token that is not its cookie's (or none) is refused
403 and journalled like every console form refusal: the path, status and problem type, the
body's size only; the principal's key, a password and the tokens sent reach neither the
journal's rows, its files, nor the logs. On SQLite, PostgreSQL and in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import aiohttp

from federation.logging import capture_logs
from replay.journal import JournalAdmin
from tests.integration.test_console_form_refusals import (
    PASSWORD,
    WRONG_TOKEN,
    hidden,
    holding,
    post,
)
from tests.integration.test_roles import KEYS, with_principals


async def test_a_sign_in_form_whose_token_does_not_match_is_journalled(
    make_config: Any, broker_at: Any, journal_of: Any, tmp_path: Path
) -> None:
    """A wrong token, then none: two 403 rows without the form; then the right one signs in."""
    root = with_principals(make_config(), ("support",))
    secret = {"key": KEYS["support"], "password": PASSWORD}
    wrong = urlencode({**secret, "pre": WRONG_TOKEN}).encode()
    missing = urlencode(secret).encode()
    with capture_logs() as logs:
        async with (
            broker_at(root, journal_obj=journal_of) as (broker, url),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            async with http.get(f"{url}/console/sign-in") as page:
                pre = hidden(await page.text(), "pre")
            statuses = [await post(http, url, "/console/sign-in", b) for b in (wrong, missing)]
            right = urlencode({**secret, "pre": pre}).encode()
            statuses.append(await post(http, url, "/console/sign-in", right))
            kept = (await cast(JournalAdmin, broker.journal).refusals(100))[::-1]
    assert statuses == [403, 403, 303]
    assert [(r.method, r.path, r.status, r.problem, r.body, r.body_bytes) for r in kept] == [
        ("POST", "/console/sign-in", 403, "forbidden", b"", len(wrong)),
        ("POST", "/console/sign-in", 403, "forbidden", b"", len(missing)),
    ]
    assert kept[0].detail == "the sign-in form's token does not match; reload it"
    secrets = [KEYS["support"], PASSWORD, WRONG_TOKEN, pre]
    for r in kept:
        text = f"{r.method} {r.path} {r.problem} {r.detail} {r.idempotency_key} {r.remote}"
        assert not any(s in text for s in secrets), r
    assert not any(s in repr(logs) for s in secrets)
    assert not holding(tmp_path, secrets, sqlite="SQLite" in type(journal_of).__name__)
