"""Guangdong's SOAP service (spyne, on loopback) with a secret that cannot be read: its header
element's AppSecret, or a WS-Security password. The delivery is held and retried, naming the
reference, and the partner's circuit breaker counts none of it: the service was never asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.api.server import running_broker
from federation.domain.models import State
from federation.logging import capture_logs
from tests.foreign.spyne_auth_header import ShenQingFuWu
from tests.foreign.test_soap_header_secrets import (
    APP_KEY,
    ENV,
    PARTNER,
    SECRET,
    application,
    configuration,
    settled,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

WSS_ENV = "TONGBAN_TEST_GD_WSS_PASSWORD"
UNREADABLE = {
    "header": ENV,  # soap: headers: AuthHeader/AppSecret
    "ws_security": WSS_ENV,  # soap: ws_security: password
}


def with_breaker_and_wss(root: Path, wss: bool) -> None:
    """Open the breaker after two failures (if any were counted); add a WS-Security password."""
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    text = text.replace(
        "    reply:\n", "    breaker: {failures: 2, cool_down: 300ms}\n    reply:\n"
    )
    if wss:
        line = f'      ws_security: {{username: tongban, password: "{{env:{WSS_ENV}}}"}}\n'
        text = text.replace("      wsdl: kstb.wsdl\n", "      wsdl: kstb.wsdl\n" + line)
    partners.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("which", sorted(UNREADABLE))
async def test_an_unreadable_soap_secret_never_opens_the_partners_breaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """Four attempts held for an unset variable: nothing reaches the service, the journal and
    the log name the reference, and the breaker stays closed with no failure counted. Before,
    two such attempts opened it."""
    monkeypatch.setenv(ENV, SECRET)
    monkeypatch.delenv(UNREADABLE[which], raising=False)
    with (
        capture_logs() as logs,
        ShenQingFuWu(app_key=APP_KEY, app_secret=SECRET) as fuwu,
    ):
        root = configuration(tmp_path / "config", fuwu)
        with_breaker_and_wss(root, which == "ws_security")
        async with (
            running_broker(
                root=root,
                journal_path=tmp_path / "journal.sqlite",
                port=0,
                endpoints={PARTNER: fuwu.url},
                poll_interval=0.05,
            ) as (broker, url),
            aiohttp.ClientSession(url) as http,
        ):
            ex, _ = await broker.submit(application(f"gd-breaker-{which}"))
            held = await settled(broker, ex.id, lambda ex: ex.attempts >= 4, "four attempts")
            async with http.get("/v1/partners") as r:
                gd: dict[str, Any] = {p["id"]: p for p in (await r.json())["partners"]}[PARTNER]
    assert fuwu.read_log() == []
    assert held.state in (State.RETRY_WAIT, State.DELIVERING)
    assert gd["breaker"]["times_opened"] == 0 and gd["breaker"]["state"] == "closed", gd
    assert gd["breaker"]["consecutive_failures"] == 0, gd
    said = (
        f"secret {{env:{UNREADABLE[which]}}}: environment variable {UNREADABLE[which]} is not set"
    )
    assert f"not sent: {said}" in (held.last_error or {}).get("message", ""), held.last_error
    told = [e for e in logs if e.get("event") == "attempt_not_sent"]
    assert len(told) >= 4 and said in told[0]["error"], told[:1]
