"""No secret anywhere it could leak: after signed, OAuth2 and refused deliveries through the broker,
the journal file, the logs, `journal show` and the API's answers hold no secret, token or signature."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from click.testing import CliRunner

from federation.api.server import running_broker
from federation.cli.main import main
from federation.domain.models import State
from federation.logging import configure
from federation.sim.gateway import AppKey, Gateway
from tests.conftest import HK_APPLICATION, SC_APPLICATION
from tests.integration.test_delivery import settle
from tests.integration.test_partner_auth import CLIENT_SECRET, SECRET, with_auth

SC_OAUTH = """\
    auth:
      oauth2:
        token_url: {url}/oauth/token
        client_id: tongban
        client_secret: "{{env:TB_OAUTH_SECRET}}"
"""
HK_SIGNING = """
signing:
  app_key: ak-sha
  secret: "{env:TB_GW_SECRET}"
  encoding: base64
  names: {app_key: X-Ca-Key, timestamp: X-Ca-Timestamp, nonce: X-Ca-Nonce, signature: X-Ca-Signature}
"""


def journal_bytes(folder: Path) -> bytes:
    """The SQLite journal's files (database, WAL, key) as they lie on disk."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("journal.sqlite*")))


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Every log line of the test, as JSON, at debug level; structlog's defaults restored after."""
    stream = io.StringIO()
    configure(level="debug", stream=stream, json=True)
    yield stream
    structlog.reset_defaults()


async def test_no_secret_in_journal_logs_show_or_answers(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    """Delivered (signed, OAuth2 with a renewed token), rejected (wrong secret) and resent (signed
    anew) exchanges leave no secret value, bearer token or signature where staff can read."""
    monkeypatch.setenv("TB_GW_SECRET", SECRET)
    monkeypatch.setenv("TB_OAUTH_SECRET", CLIENT_SECRET)
    gw = Gateway(
        app_keys={"ak-sha": AppKey(secret=SECRET.encode())},
        oauth_clients={"tongban": CLIENT_SECRET.encode()},
    )
    await gw.start()
    root = with_auth(make_config, HK_SIGNING)
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    marker = '"115101000000000000-HF-WITHDRAW"'
    sc_auth = SC_OAUTH.format(url=gw.url)
    text = text.replace(
        "    services:\n      " + marker, sc_auth + "    services:\n      " + marker
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    journal = tmp_path / "journal.sqlite"
    answers: list[str] = []
    try:
        async with (
            running_broker(
                root=root,
                journal_path=journal,
                port=0,
                endpoints={"hk": gw.url + "/signed", "sc": gw.url + "/api/hf"},
                poll_interval=0.05,
            ) as (broker, url),
            aiohttp.ClientSession(url) as http,
        ):

            async def submit(partner: str, service: str, app: object, key: str) -> str:
                body = {"source": "gd-portal", "partner": partner, "service": service}
                async with http.post(
                    "/v1/exchanges",
                    json={**body, "application": app},
                    headers={"Idempotency-Key": key},
                ) as r:
                    assert r.status == 202, await r.text()
                    return str((await r.json())["id"])

            hk1 = await submit("hk", "TD-VL-RENEW", HK_APPLICATION, "k-hk-1")
            sc1 = await submit("sc", "115101000000000000-HF-WITHDRAW", SC_APPLICATION, "k-sc-1")
            for xid in (hk1, sc1):
                assert (await settle(broker, xid, {State.DELIVERED})).state == State.DELIVERED
            gw.expire_tokens()
            sc2 = await submit("sc", "115101000000000000-HF-WITHDRAW", SC_APPLICATION, "k-sc-2")
            assert (await settle(broker, sc2, {State.DELIVERED})).state == State.DELIVERED
            monkeypatch.setenv("TB_GW_SECRET", "rotated-but-wrong-5e1d")
            hk2 = await submit("hk", "TD-VL-RENEW", HK_APPLICATION, "k-hk-2")
            assert (await settle(broker, hk2, {State.REJECTED})).state == State.REJECTED
            monkeypatch.setenv("TB_GW_SECRET", SECRET)  # fixed; a resend signs anew and passes
            resend = {"mode": "resend", "exchange_id": hk2, "reason": "gateway secret fixed"}
            async with http.post("/v1/replays", json=resend) as r:
                assert r.status < 300, await r.text()
            assert (await settle(broker, hk2, {State.DELIVERED})).state == State.DELIVERED
            for xid in (hk1, hk2, sc1, sc2):
                async with http.get(f"/v1/exchanges/{xid}?include=payloads") as r:
                    answers.append(await r.text())
            async with http.post("/v1/exchanges", data=b"{", headers={"Idempotency-Key": "x"}) as r:
                assert r.content_type == "application/problem+json"
                answers.append(await r.text())
    finally:
        await gw.stop()
    assert gw.verdicts() == ["ok", "ok", "invalid_token", "ok", "signature_mismatch", "ok"]
    refused, resent = gw.log[-2:]
    assert refused.headers["X-Ca-Nonce"] != resent.headers["X-Ca-Nonce"]
    show, reveal = ["journal", "show"], ["--reveal", "--reason", "secret scan"]
    shows = [  # the CLI runs its own event loop: in a thread, as from a terminal
        await asyncio.to_thread(
            CliRunner().invoke,
            main,
            # revealed: even in clear, the journal holds no secret to show
            [*show, xid, "--journal", str(journal), "--config", str(root), *reveal],
        )
        for xid in (hk1, hk2, sc1, sc2)
    ]
    assert all(s.exit_code == 0 for s in shows), [s.output for s in shows]
    assert "signature_mismatch" in shows[1].output  # the refusal is there to read
    secrets = {SECRET, CLIENT_SECRET, "rotated-but-wrong-5e1d"}
    for arrival in gw.log:
        auth = arrival.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            secrets.add(auth[7:])
        if "X-Ca-Signature" in arrival.headers:
            secrets.add(arrival.headers["X-Ca-Signature"])
    assert len(secrets) == 3 + 2 + 3  # two tokens (the first refused once expired), 3 signatures
    files = journal_bytes(tmp_path)
    places = {
        "journal file": files.decode("latin-1"),
        "logs": log_stream.getvalue(),
        "journal show": "".join(s.output for s in shows),
        "API answers": "".join(answers),
    }
    assert "exchange_delivered" in places["logs"]  # the logs were captured
    for where, content in places.items():
        for value in secrets:
            assert value not in content, f"a secret ({len(value)} chars) found in the {where}"
