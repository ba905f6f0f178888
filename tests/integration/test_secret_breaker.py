"""A delivery held because a secret cannot be read (a variable unset, a file missing) is our fault,
not the partner's: the exchange waits and retries with an error naming the reference, an operator
is told in the log, and the partner's circuit breaker counts none of it. REST ``auth:`` (bearer,
api_key, OAuth2 client secret) through a running broker and a partner on loopback; the SOAP paths
are in tests/foreign/test_soap_secret_breaker.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.domain.models import Exchange, State
from federation.logging import capture_logs
from federation.runtime.broker import Broker
from tests.conftest import hk_submission
from tests.integration.test_guarantees import with_breaker
from tests.integration.test_partner_auth import with_auth
from tests.integration.test_secret_reads import TOKEN, rest_partner, secret_file
from tests.waiting import wait_for

BREAKER = "    breaker: {failures: 2, cool_down: 300ms}\n"  # opened by two failures, if counted


def unset(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[[Path], None]:
    """Unset the variable now; the returned fix sets it."""
    monkeypatch.delenv(name, raising=False)
    return lambda _root: monkeypatch.setenv(name, TOKEN)


AUTH: dict[str, tuple[str, str, Callable[[pytest.MonkeyPatch], Callable[[Path], None]]]] = {
    "bearer": (
        'bearer: "{{env:TB_HELD_BEARER}}"',
        "{env:TB_HELD_BEARER}: environment variable TB_HELD_BEARER is not set",
        lambda mp: unset(mp, "TB_HELD_BEARER"),
    ),
    "api_key": (
        'api_key: {{header: X-Api-Key, key: "{{file:secrets/api-key}}"}}',
        "{file:secrets/api-key}: No such file or directory",
        lambda _mp: lambda root: secret_file(root, "api-key", TOKEN),
    ),
    "oauth2": (
        "oauth2:\n  token_url: {url}/oauth/token\n  client_id: tongban\n"
        '  client_secret: "{{env:TB_HELD_CLIENT}}"',
        "{env:TB_HELD_CLIENT}: environment variable TB_HELD_CLIENT is not set",
        lambda mp: unset(mp, "TB_HELD_CLIENT"),
    ),
}


async def attempts_at_least(broker: Broker, xid: str, n: int) -> Exchange:
    ex: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.attempts >= n,
        what=f"{n} attempts",
        timeout=20,
    )
    return ex


@pytest.mark.parametrize("scheme", sorted(AUTH))
async def test_an_unreadable_secret_holds_the_exchange_not_the_partners_breaker(
    make_config, broker_at, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """Four attempts held for an unreadable secret leave the breaker closed with no failure
    counted; each names the reference in the journal and the log; once the secret can be read,
    the exchange is delivered. Before, two such attempts opened the partner's breaker."""
    text, said, make_fix = AUTH[scheme]
    fix = make_fix(monkeypatch)
    seen: list[dict[str, str]] = []
    with capture_logs() as logs:
        async with rest_partner(seen) as url:
            root = with_auth(lambda: make_config(max_attempts=100), text.format(url=url))
            with_breaker(root, BREAKER)
            partner = type("Sim", (), {"url": url})()
            async with (
                broker_at(root, {"hk": partner}) as (broker, base),
                aiohttp.ClientSession(base) as http,
            ):
                ex, _ = await broker.submit(hk_submission("held-1"))
                held = await attempts_at_least(broker, ex.id, 4)
                async with http.get("/v1/partners") as r:
                    hk: dict[str, Any] = {p["id"]: p for p in (await r.json())["partners"]}["hk"]
                fix(root)
                done = await wait_for(
                    lambda: broker.get(ex.id),
                    lambda ex: ex is not None and ex.state is State.DELIVERED,
                    what="delivered",
                    timeout=20,
                )
    assert hk["breaker"]["times_opened"] == 0 and hk["breaker"]["state"] == "closed", hk
    assert hk["breaker"]["consecutive_failures"] == 0, hk
    error = held.last_error or {}
    assert error["kind"] == "transient_error" and f"not sent: secret {said}" in error["message"]
    told = [e for e in logs if e.get("event") == "attempt_not_sent"]
    assert len(told) >= 4 and said in told[0]["error"], told[:1]
    assert TOKEN not in repr(logs)
    assert done.state is State.DELIVERED and len(seen) == 1
