"""A REST partner that quotes a credential back in base64 or decoded from the Basic header it was
sent: the refusal is journalled with the partner's words and none of the credential's shapes, on
every journal (SQLite, PostgreSQL, in memory). The scrubber's cases are in
tests/unit/test_scrub_encoded.py; this shows the adapter hands it what it sent and that what the
journal keeps, read back, holds none of it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from federation.api.net import start_site
from federation.domain.models import State
from tests.conftest import hk_submission
from tests.integration.test_delivery import settle
from tests.integration.test_partner_auth import with_auth

ENV = "TB_ECHO_B64_CREDENTIAL"
PASSWORD = "tb>?~Key-9c1e??~"  # its base64 holds "+" and "/"
USER = "gd-portal"
TOKEN = "tb-bearer/7d1c+9e0a"


def _b64(text: str, *, safe: bool = False) -> str:
    raw = text.encode()
    return (base64.urlsafe_b64encode if safe else base64.b64encode)(raw).decode()


BASIC = "Basic " + _b64(f"{USER}:{PASSWORD}")


def _basic_echo(auth: str) -> bytes:
    """A gateway that decodes the Basic header it got and names both halves, and quotes the
    header's base64 URL-safe without padding (as a log link)."""
    user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
    token = auth.removeprefix("Basic ").rstrip("=").replace("+", "-").replace("/", "_")
    detail = f"user {user} password {password} refused; see /log?cred={token}"
    return json.dumps({"detail": detail}).encode()


def _bearer_echo(auth: str) -> bytes:
    """A gateway that prints the token it refused in base64, the slash escaped (PHP)."""
    token = base64.b64encode(auth.removeprefix("Bearer ").encode()).decode()
    return json.dumps({"detail": f"invalid credential: {token}"}).replace("/", "\\/").encode()


CASES: dict[str, tuple[str, str, Callable[[str], bytes], list[str]]] = {
    # api_key with header Authorization: the partner wants Basic; the reference holds it whole
    "basic": (
        f'api_key: {{header: Authorization, key: "{{env:{ENV}}}"}}',
        BASIC,
        _basic_echo,
        [PASSWORD, _b64(f"{USER}:{PASSWORD}", safe=True).rstrip("=")],
    ),
    "bearer": (
        f'bearer: "{{env:{ENV}}}"',
        TOKEN,
        _bearer_echo,
        [TOKEN, _b64(TOKEN), _b64(TOKEN).replace("/", "\\/")],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_credential_echoed_in_another_shape_is_journalled_without_it(
    make_config, broker_at, journal_of: Any, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The partner's 401 is a rejection with its words kept (the user name, ``refused``) and
    each shape of the credential <redacted>, in the exchange read back from the journal: its
    last error and every attempt's response. Before, the base64 and the decoded password were
    kept."""
    auth, value, reply, shapes = CASES[case]
    monkeypatch.setenv(ENV, value)
    seen: list[str] = []

    async def partner(req: web.Request) -> web.Response:
        await req.read()
        sent = req.headers.get("Authorization", "")
        seen.append(sent)
        return web.Response(status=401, body=reply(sent), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner)
    runner, site = await start_site(app)
    root = with_auth(make_config, auth)
    try:
        endpoint = SimpleNamespace(url=site)
        async with broker_at(root, {"hk": endpoint}, journal_obj=journal_of) as (broker, _):
            ex, _ = await broker.submit(hk_submission(f"echo-b64-{case}"))
            done = await settle(broker, ex.id, {State.REJECTED, State.FAILED})
    finally:
        await runner.cleanup()
    assert seen and seen[0] == (value if case == "basic" else f"Bearer {value}")
    assert done.state is State.REJECTED
    kept = json.dumps(
        {
            "error": done.last_error,
            "responses": [a.response for a in done.attempt_history()],
        },
        default=str,
        ensure_ascii=False,
    )
    assert "<redacted>" in kept, kept
    if case == "basic":
        assert f"user {USER} password <redacted> refused" in kept, kept
    for shape in shapes:
        assert shape not in kept, (shape, kept)
