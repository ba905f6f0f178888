"""A REST partner that quotes the bearer token it refused with HTML5 named references (as PHP's
``htmlentities(ENT_HTML5)`` writes them), as hex, or inside base64 of the request body it got,
wrapped every 76 characters: the refusal is journalled with the partner's words and none of the
token, on every journal (SQLite, PostgreSQL, in memory), and the events logged while it was
delivered (through the broker's own logging configuration) hold none of it either (no event
quotes a partner's words today, so that half guards against one that would). The
scrubber's cases are in tests/unit/test_scrub_named.py, test_scrub_hex_base64.py and
test_scrub_wrapped.py."""

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
from federation.logging import capture_logs
from tests.conftest import hk_submission
from tests.integration.test_delivery import settle
from tests.integration.test_partner_auth import with_auth

ENV = "TB_ECHO_NAMED_CREDENTIAL"
TOKEN = "tb-bearer/7d1c+9e0a=Zq.x_1"
PHP = {"/": "&sol;", "+": "&plus;", "=": "&equals;", ".": "&period;", "_": "&lowbar;"}
NAMED = "".join(PHP.get(c, c) for c in TOKEN)
HEX = TOKEN.encode().hex()
BODY = json.dumps({"client": "gd-portal", "access_token": TOKEN, "scope": "hk"}).encode()
WRAPPED = base64.encodebytes(BODY).decode()  # MIME: 76 characters a line


def _core(secret: bytes, text: bytes) -> str:
    """The base64 characters of ``text`` that hold only bits of ``secret``."""
    at = text.index(secret)
    return base64.b64encode(text).decode()[-(-8 * at // 6) : 8 * (at + len(secret)) // 6]


CORE = _core(TOKEN.encode(), BODY)
ECHOES: dict[str, tuple[Callable[[], str], list[str]]] = {
    "named references": (lambda: f"<p>jeton &lsquo;{NAMED}&rsquo; refus&eacute;</p>", [NAMED]),
    "hex": (lambda: f"token bytes {HEX} unknown", [HEX]),
    "wrapped base64": (
        lambda: f"request was:\n{WRAPPED}",
        [CORE[i : i + 8] for i in range(len(CORE) - 8)],
    ),
}


@pytest.mark.parametrize("case", sorted(ECHOES))
async def test_a_token_echoed_in_another_form_is_neither_journalled_nor_logged(
    make_config: Callable[..., Any],
    broker_at: Callable[..., Any],
    journal_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """The partner's 401 is a rejection with its words kept and the token <redacted>, in the
    exchange read back from the journal (its last error and every attempt's response) and in
    every event logged meanwhile. Before, each of these forms was kept in the journal."""
    echo, forms = ECHOES[case]
    assert all(form in echo().replace("\n", "") for form in forms)
    monkeypatch.setenv(ENV, TOKEN)
    seen: list[str] = []

    async def partner(req: web.Request) -> web.Response:
        await req.read()
        seen.append(req.headers.get("Authorization", ""))
        body = json.dumps({"detail": echo()}).encode()
        return web.Response(status=401, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner)
    runner, site = await start_site(app)
    root = with_auth(make_config, f'bearer: "{{env:{ENV}}}"')
    try:
        endpoint = SimpleNamespace(url=site)
        with capture_logs() as logs:
            async with broker_at(root, {"hk": endpoint}, journal_obj=journal_of) as (broker, _):
                ex, _ = await broker.submit(hk_submission(f"echo-form-{case.replace(' ', '-')}"))
                done = await settle(broker, ex.id, {State.REJECTED, State.FAILED})
    finally:
        await runner.cleanup()
    assert seen and seen[0] == f"Bearer {TOKEN}"
    assert done.state is State.REJECTED
    kept = json.dumps(
        {"error": done.last_error, "responses": [a.response for a in done.attempt_history()]},
        default=str,
        ensure_ascii=False,
    )
    assert "<redacted>" in kept, kept
    logged = repr(logs)
    assert logs and "exchange_rejected" in logged
    kept, logged = kept.replace("\\n", ""), logged.replace("\\n", "")  # lines joined
    for form in forms:
        assert form not in kept, (form, kept)
        assert form not in logged, (form, logged)
    assert TOKEN not in kept and TOKEN not in logged
