"""A REST partner that quotes the bearer token it received in its refusal (a 401 naming the token,
a 400 written by an encoder that escapes the slash, a 403, 409 and 422 that write it as JSON
escapes, XML character references or percent-encoded): the refusal is kept, the token nowhere, in
the journal file, the API's answers, ``journal show`` (with or without ``--reveal``) and the
exchange's last error."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from federation.api.net import start_site
from federation.api.server import running_broker
from federation.cli.main import main
from federation.domain.models import State
from tests.conftest import HK_APPLICATION
from tests.integration.test_delivery import settle
from tests.integration.test_partner_auth import with_auth

TOKEN = "tb/Echo+Token-6c1f0a9e=="  # a slash and a plus, as base64 tokens have
ENV = "TB_ECHO_BEARER"
# how some partners write the token they quote: every character a JSON \u escape, an XML
# character reference, percent-encoded in a link
ENCODED = {
    403: lambda token: "".join(f"\\u{ord(c):04x}" for c in token),
    409: lambda token: "".join(f"&#x{ord(c):X};" for c in token),
    422: lambda token: urllib.parse.quote(token, safe=""),
}
REPLIES = {
    # the partner's detail quotes the header it received
    401: lambda auth: json.dumps({"detail": f"{auth} is not a valid credential"}).encode(),
    # PHP's json_encode writes "/" as "\/"
    400: lambda auth: (
        json.dumps({"message": f"token {auth[7:]} refused"}).replace("/", "\\/").encode()
    ),
    # a gateway that wraps its upstream's JSON error, escapes and all, as a string
    403: lambda auth: json.dumps(
        {"detail": f'{{"error": "token {ENCODED[403](auth[7:])} is revoked"}}'}
    ).encode(),
    409: lambda auth: f"<p>token <b>{ENCODED[409](auth[7:])}</b> is in use</p>".encode(),
    422: lambda auth: json.dumps(
        {"detail": f"see https://gw.example/why?token={ENCODED[422](auth[7:])}"}
    ).encode(),
}


def journal_bytes(folder: Path) -> bytes:
    """The SQLite journal's files as they lie on disk."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("journal.sqlite*")))


@pytest.mark.parametrize("status", sorted(REPLIES))
async def test_a_bearer_token_the_partner_quotes_back_is_kept_nowhere(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """The refusal is rejected with the partner's words, the token in them <redacted>; the token
    is in no journal byte, API answer, journal show or last error. Before, the partner's words
    (the transcript's body, partner_message) kept it."""
    monkeypatch.setenv(ENV, TOKEN)
    seen: list[str] = []

    async def partner(req: web.Request) -> web.Response:
        await req.read()
        auth = req.headers.get("Authorization", "")
        seen.append(auth)
        return web.Response(
            status=status, body=REPLIES[status](auth), content_type="application/json"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner)
    runner, site = await start_site(app)
    root = with_auth(make_config, f'bearer: "{{env:{ENV}}}"')
    journal = tmp_path / "journal.sqlite"
    answers: list[str] = []
    try:
        async with (
            running_broker(
                root=root, journal_path=journal, port=0, endpoints={"hk": site}, poll_interval=0.05
            ) as (broker, url),
            aiohttp.ClientSession(url) as http,
        ):
            body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
            async with http.post(
                "/v1/exchanges",
                json={**body, "application": HK_APPLICATION},
                headers={"Idempotency-Key": f"echo-{status}"},
            ) as r:
                assert r.status == 202, await r.text()
                xid = str((await r.json())["id"])
            done = await settle(broker, xid, {State.REJECTED})
            for query in ("?include=payloads", "", "?reveal=true&reason=audit"):
                async with http.get(f"/v1/exchanges/{xid}{query}") as r:
                    assert r.status == 200, await r.text()
                    answers.append(await r.text())
    finally:
        await runner.cleanup()
    assert seen == [f"Bearer {TOKEN}"]  # sent, and quoted back
    error = done.last_error or {}
    assert "<redacted>" in str(error.get("partner_message") or error.get("message")), error
    where = ["--journal", str(journal), "--config", str(root)]
    shows = [
        await asyncio.to_thread(
            CliRunner().invoke, main, ["journal", "show", xid, "--format", "json", *where, *more]
        )
        for more in ([], ["--reveal", "--reason", "audit"])
    ]
    assert all(show.exit_code == 0 for show in shows), [show.output for show in shows]
    assert "<redacted>" in shows[1].output  # the partner's words are there to read
    places = {
        "journal file": journal_bytes(tmp_path).decode("latin-1"),
        "API answers": "".join(answers),
        "journal show": shows[0].output,
        "journal show --reveal": shows[1].output,
        "last error": json.dumps(error),
    }
    encoded = [ENCODED[status](TOKEN)] if status in ENCODED else []
    for form in (TOKEN, TOKEN.replace("/", "\\/"), *encoded):
        for place, content in places.items():
            assert form not in content, f"the echoed token found in the {place}"
