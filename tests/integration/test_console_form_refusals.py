"""The console's form refusals are journalled, without the form: a form sent compressed (415), a
form the reader cannot read (400, on the sign-in form and signed in), a form sent with no session
(401) and one whose token is not the session's (403). Each row has the path, status and problem
type and the body's size only: a console form carries sign-in keys, form tokens and reasons, and
none of them reaches the journal (its file included) or a log line. A refused replay form is kept
once (the replay journals its own refusals too). On SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import aiohttp

from federation.logging import capture_logs
from replay.journal import JournalAdmin, Refusal
from tests.integration.test_roles import KEYS, with_principals

URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}
PASSWORD = "correct-horse-battery-staple-9"  # typed into a form field where it does not belong
REASON = "陳大文 called about it"
WRONG_TOKEN = "not-the-sessions-token-4711"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


async def post(
    http: aiohttp.ClientSession, url: str, path: str, body: bytes, **headers: str
) -> int:
    async with http.post(
        f"{url}{path}", data=body, headers={**URLENCODED, **headers}, allow_redirects=False
    ) as r:
        await r.read()
        return r.status


async def refused(http: aiohttp.ClientSession, url: str) -> tuple[list[bytes], list[str]]:
    """Refused forms, each carrying the support key, the sign-in token, a password and a reason;
    the bodies sent, the sign-in token and the session's form token (signed in by then)."""
    async with http.get(f"{url}/console/sign-in") as r:
        pre = hidden(await r.text(), "pre")
    secret = {"pre": pre, "key": KEYS["support"], "password": PASSWORD, "reason": REASON}
    form = urlencode(secret).encode()
    unreadable = form + b"&x=\xff\xfe"
    unsigned = urlencode({**secret, "csrf": WRONG_TOKEN}).encode()
    sent = [
        (gzip.compress(form), "/console/sign-in", {"Content-Encoding": "gzip"}),
        (unreadable, "/console/sign-in", {}),
        (unsigned, "/console/sign-out", {}),
    ]
    statuses = [await post(http, url, path, body, **more) for body, path, more in sent]
    assert await post(http, url, "/console/sign-in", form) == 303
    async with http.get(f"{url}/console/") as r:
        csrf = hidden(await r.text(), "csrf")
    wrong = urlencode(
        {**secret, "csrf": WRONG_TOKEN, "exchange_id": "x", "mode": "resend"}
    ).encode()
    statuses += [await post(http, url, "/console/replays", body) for body in (unreadable, wrong)]
    assert statuses == [415, 400, 401, 400, 403]
    return [body for body, _, _ in sent] + [unreadable, wrong], [pre, csrf]


def line(r: Refusal) -> tuple[str, int, str, bytes, int]:
    return (r.path, r.status, r.problem, r.body, r.body_bytes)


async def test_refused_console_forms_are_journalled_without_their_secrets(
    make_config: Any, broker_at: Any, journal_of: Any, tmp_path: Path
) -> None:
    root = with_principals(make_config(), ("support",))
    with capture_logs() as logs:
        async with (
            broker_at(root, journal_obj=journal_of) as (broker, url),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            bodies, tokens = await refused(http, url)
            kept = (await cast(JournalAdmin, broker.journal).refusals(100))[::-1]
    sizes = [len(b) for b in bodies]
    assert [line(r) for r in kept] == [
        ("/console/sign-in", 415, "unsupported-content-encoding", b"", sizes[0]),
        ("/console/sign-in", 400, "invalid-request", b"", sizes[1]),
        ("/console/sign-out", 401, "unauthenticated", b"", sizes[2]),
        ("/console/replays", 400, "invalid-request", b"", sizes[3]),  # once, not twice
        ("/console/replays", 403, "forbidden", b"", sizes[4]),
    ]
    secrets = [KEYS["support"], PASSWORD, "陳大文", WRONG_TOKEN, *tokens]
    for r in kept:
        text = f"{r.method} {r.path} {r.problem} {r.detail} {r.idempotency_key} {r.remote}"
        assert not any(s in text for s in secrets), r
    assert not any(s in repr(logs) for s in secrets)
    assert "Traceback" not in repr(logs)
    assert not holding(tmp_path, secrets, sqlite="SQLite" in type(journal_of).__name__)


def holding(folder: Path, secrets: list[str], *, sqlite: bool) -> list[str]:
    """The SQLite journal's files (the database, its WAL) holding any of ``secrets``."""
    files = [(f.name, f.read_bytes()) for f in folder.glob("journal.sqlite*")]
    assert bool(files) == sqlite, files
    return [name for name, data in files if any(s.encode() in data for s in secrets)]
