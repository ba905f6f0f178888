"""Outbound credentials against a gateway that verifies them with its own code: signed requests
(HMAC-SHA256, HMAC-SM3, timestamp window, nonce replay), OAuth2 tokens that expire mid-run, and
secrets that are missing, wrong or readable by others."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from adapters.auth.oauth import token_lifetime
from adapters.base import OutboundRequest
from adapters.registry import protocols
from adapters.rest import RestAdapter
from federation.cli.main import main
from federation.config import Partner, load_config
from federation.domain.errors import ConfigError, PermanentError, TransientError
from federation.sim.gateway import AppKey, Gateway

SECRET = "gw-secret-7f3a9c"  # what must never be found anywhere but on the wire
SM3_SECRET = "gw-sm3-secret-51c2"
CLIENT_SECRET = "oauth-client-secret-88d1"
PAYLOAD = {"application_type": "VLR", "owner": {"name_en": "CHAN, Tai Man"}}


def with_auth(make_config: Callable[..., Path], auth: str) -> Path:
    """A catalogue whose hk partner carries ``auth`` (YAML lines under ``auth:``)."""
    root = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    block = "    auth:\n" + "".join(f"      {line}\n" for line in auth.strip().splitlines())
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + block, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    return root


def hk(root: Path, endpoint: str) -> Partner:
    partner = load_config(root, protocols()).partners["hk"]
    return replace(partner, endpoint=endpoint)


def request(attempt: int = 1) -> OutboundRequest:
    return OutboundRequest(
        exchange_id="01JD0000000000000000000000",
        idempotency_key="key-1",
        service="TD-VL-RENEW",
        payload=PAYLOAD,
        attempt=attempt,
    )


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A gateway knowing two app keys (SHA-256 and SM3) and one OAuth2 client."""
    gw = Gateway(
        app_keys={
            "ak-sha": AppKey(secret=SECRET.encode()),
            "ak-sm3": AppKey(secret=SM3_SECRET.encode(), hash="sm3"),
        },
        oauth_clients={"tongban": CLIENT_SECRET.encode()},
    )
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Set an environment variable for one test."""
    return lambda name, value: monkeypatch.setenv(name, value)


async def send(partner: Partner, *requests: OutboundRequest) -> list[Any]:
    """Send each request through a started REST adapter; replies or errors, in order."""
    adapter = RestAdapter(partner)
    await adapter.start()
    out: list[Any] = []
    try:
        for r in requests:
            try:
                out.append(await adapter.send(r))
            except (TransientError, PermanentError) as exc:
                out.append(exc)
    finally:
        await adapter.close()
    return out


SIGNING_SHA = """
signing:
  app_key: ak-sha
  secret: "{env:TB_GW_SECRET}"
  names: {app_key: X-Ca-Key, timestamp: X-Ca-Timestamp, nonce: X-Ca-Nonce, signature: X-Ca-Signature}
"""

SIGNING_SM3 = """
signing:
  app_key: ak-sm3
  secret: "{file:secrets/gw-sm3}"
  algorithm: hmac-sm3
  body_digest: sm3
  encoding: base64
  names: {app_key: X-Ca-Key, timestamp: X-Ca-Timestamp, nonce: X-Ca-Nonce, signature: X-Ca-Signature}
"""


async def test_hmac_sha256_attempts_are_each_signed_afresh(make_config, gateway, env) -> None:
    """Two attempts of one request both pass the gateway: new nonce, new signature, no secret kept."""
    env("TB_GW_SECRET", SECRET)
    partner = hk(with_auth(make_config, SIGNING_SHA), gateway.url + "/signed")
    first, second = await send(partner, request(1), request(2))
    assert gateway.verdicts() == ["ok", "ok"]
    nonces = {a.headers["X-Ca-Nonce"] for a in gateway.log}
    assert len(nonces) == 2
    for reply in (first, second):
        assert reply.status == 200
        shown = reply.transcript.request["headers"]
        assert shown["X-Ca-Signature"] == "<redacted>"
        assert SECRET not in repr(reply.transcript)
    sigs = [a.headers["X-Ca-Signature"] for a in gateway.log]
    assert not any(s in repr(first.transcript) + repr(second.transcript) for s in sigs)


async def test_hmac_sm3_from_an_owner_only_file(make_config, gateway) -> None:
    """An SM3 app key whose secret is a 0600 file is accepted by the gateway's SM3 check."""
    root = with_auth(make_config, SIGNING_SM3)
    secret = root / "secrets" / "gw-sm3"
    secret.parent.mkdir()
    secret.write_text(SM3_SECRET + "\n", encoding="utf-8")
    secret.chmod(0o600)
    (reply,) = await send(hk(root, gateway.url + "/signed"), request())
    assert gateway.verdicts() == ["ok"]
    assert reply.status == 200


async def test_a_secret_file_others_may_read_is_refused_and_nothing_is_sent(
    make_config, gateway
) -> None:
    """A 0644 secret file holds the exchange (transient, naming the file) and nothing is sent."""
    root = with_auth(make_config, SIGNING_SM3)
    secret = root / "secrets" / "gw-sm3"
    secret.parent.mkdir()
    secret.write_text(SM3_SECRET, encoding="utf-8")
    secret.chmod(0o644)
    config = load_config(root, protocols())
    assert any("may be read by group or others" in str(w) for w in config.warnings)
    (err,) = await send(hk(root, gateway.url + "/signed"), request())
    assert isinstance(err, TransientError)
    assert "{file:secrets/gw-sm3}" in str(err) and "group or others" in str(err)
    assert SM3_SECRET not in str(err)
    assert gateway.log == []


async def test_a_missing_secret_is_named_and_holds_the_exchange(make_config, gateway) -> None:
    """With the variable unset, the error names it, the attempt is transient, nothing is sent."""
    os.environ.pop("TB_GW_SECRET", None)
    root = with_auth(make_config, SIGNING_SHA)
    warnings = [str(w) for w in load_config(root, protocols()).warnings]
    assert any("{env:TB_GW_SECRET}" in w and "is not set" in w for w in warnings)
    (err,) = await send(hk(root, gateway.url + "/signed"), request())
    assert isinstance(err, TransientError) and "TB_GW_SECRET is not set" in str(err)
    assert gateway.log == []


async def test_a_wrong_secret_is_refused_by_the_gateway_and_rejected(
    make_config, gateway, env
) -> None:
    """A secret the gateway does not know: signature_mismatch, a permanent refusal."""
    env("TB_GW_SECRET", "not-the-secret")
    (err,) = await send(hk(with_auth(make_config, SIGNING_SHA), gateway.url + "/signed"), request())
    assert isinstance(err, PermanentError) and err.status == 401
    assert gateway.verdicts() == ["signature_mismatch"]


async def test_a_rotated_secret_file_is_used_by_the_next_attempt(make_config, gateway) -> None:
    """Rewriting the secret file changes what the next attempt signs with, without a restart."""
    root = with_auth(make_config, SIGNING_SM3)
    secret = root / "secrets" / "gw-sm3"
    secret.parent.mkdir()
    secret.write_text("old-secret", encoding="utf-8")
    secret.chmod(0o600)
    adapter = RestAdapter(hk(root, gateway.url + "/signed"))
    await adapter.start()
    try:
        with pytest.raises(PermanentError):
            await adapter.send(request(1))
        secret.write_text(SM3_SECRET, encoding="utf-8")
        reply = await adapter.send(request(2))
    finally:
        await adapter.close()
    assert reply.status == 200
    assert gateway.verdicts() == ["signature_mismatch", "ok"]


async def test_a_replayed_nonce_and_a_stale_timestamp_are_refused(
    make_config, gateway, env
) -> None:
    """The same signed request sent again is nonce_replayed; a clock 10 minutes off is refused."""
    env("TB_GW_SECRET", SECRET)
    await send(hk(with_auth(make_config, SIGNING_SHA), gateway.url + "/signed"), request())
    first = gateway.log[0]
    keep = ("X-Ca-Key", "X-Ca-Timestamp", "X-Ca-Nonce", "X-Ca-Signature", "Content-Type")
    async with aiohttp.ClientSession() as s:
        url = gateway.url + first.path
        headers = {k: first.headers[k] for k in keep}
        async with s.post(url, data=first.body, headers=headers) as resp:
            assert resp.status == 401
        now = gateway.clock
        gateway.clock = lambda: now() + 600
        async with s.post(url, data=first.body, headers=headers) as resp:
            assert resp.status == 401
    assert gateway.verdicts() == ["ok", "nonce_replayed", "timestamp_out_of_window"]


OAUTH = """
oauth2:
  token_url: {url}/oauth/token
  client_id: tongban
  client_secret: "{{env:TB_OAUTH_SECRET}}"
"""


async def test_oauth2_token_is_cached_and_renewed_once_after_a_401(
    make_config, gateway, env
) -> None:
    """Two sends share one token; after the gateway expires it, a 401 brings one new token."""
    env("TB_OAUTH_SECRET", CLIENT_SECRET)
    partner = hk(with_auth(make_config, OAUTH.format(url=gateway.url)), gateway.url + "/api")
    adapter = RestAdapter(partner)
    await adapter.start()
    try:
        await adapter.send(request(1))
        await adapter.send(request(2))
        assert gateway.tokens_issued == 1
        gateway.expire_tokens()
        reply = await adapter.send(request(3))
    finally:
        await adapter.close()
    assert reply.status == 200
    assert gateway.tokens_issued == 2
    assert gateway.verdicts() == ["ok", "ok", "invalid_token", "ok"]
    assert reply.transcript.request["headers"]["Authorization"] == "<redacted>"


async def test_token_endpoint_failures_are_classified(make_config, gateway, env) -> None:
    """The token endpoint's 503 holds the exchange; refused client credentials reject it."""
    env("TB_OAUTH_SECRET", CLIENT_SECRET)
    partner = hk(with_auth(make_config, OAUTH.format(url=gateway.url)), gateway.url + "/api")
    gateway.token_status = 503
    (down,) = await send(partner, request())
    assert isinstance(down, TransientError) and "HTTP 503" in str(down)
    gateway.token_status = None
    env("TB_OAUTH_SECRET", "wrong")
    (refused,) = await send(partner, request())
    assert isinstance(refused, PermanentError) and "invalid_client" in str(refused)
    assert CLIENT_SECRET not in str(refused) and "wrong" not in repr(refused.transcript)
    assert gateway.log == []  # nothing reached the API without a token


async def test_a_token_lifetime_written_as_a_string_is_read_as_a_number(
    make_config, gateway, env
) -> None:
    """Some token servers write expires_in as "3599": the token is used and kept like any other."""
    env("TB_OAUTH_SECRET", CLIENT_SECRET)
    partner = hk(with_auth(make_config, OAUTH.format(url=gateway.url)), gateway.url + "/api")
    gateway.ttl_as_text = True
    first, second = await send(partner, request(1), request(2))
    assert first.status == 200 and second.status == 200
    assert gateway.tokens_issued == 1
    assert gateway.verdicts() == ["ok", "ok"]


async def test_a_token_shorter_lived_than_the_early_margin_is_still_reused(
    make_config, gateway, env
) -> None:
    """A 20 s token with 30 s of margin is renewed half way through, not before every delivery."""
    env("TB_OAUTH_SECRET", CLIENT_SECRET)
    partner = hk(with_auth(make_config, OAUTH.format(url=gateway.url)), gateway.url + "/api")
    gateway.token_ttl = 20
    replies = await send(partner, request(1), request(2), request(3))
    assert [r.status for r in replies] == [200, 200, 200]
    assert gateway.tokens_issued == 1


@pytest.mark.parametrize("ttl", [0, -5])
async def test_a_token_that_never_lives_holds_the_exchange_with_its_reason(
    make_config, gateway, env, ttl: int
) -> None:
    """expires_in 0 or negative is no token to use: transient, named as such, nothing sent."""
    env("TB_OAUTH_SECRET", CLIENT_SECRET)
    partner = hk(with_auth(make_config, OAUTH.format(url=gateway.url)), gateway.url + "/api")
    gateway.token_ttl = ttl
    (held,) = await send(partner, request())
    assert isinstance(held, TransientError)
    assert "expires_in that is not a positive number of seconds" in str(held)
    assert gateway.log == []


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (3600, 3600.0),
        (0.5, 0.5),
        ("3599", 3599.0),
        ("007", 7.0),
        (True, None),
        ("1.5", None),
        ("", None),
        ("-5", None),
        ("٣٦٠٠", None),
        ("1e3", None),
        (None, None),
        ([60], None),
        (float("inf"), None),
        ("9" * 10, None),
        (0, None),
    ],
)
def test_token_lifetimes_as_token_servers_write_them(
    written: object, seconds: float | None
) -> None:
    assert token_lifetime(written) == seconds


def test_a_literal_secret_in_partners_yaml_is_an_error(make_config) -> None:
    """A secret written into partners.yaml is refused at its line, without echoing it."""
    root = with_auth(make_config, "bearer: plain-token-value-123")
    with pytest.raises(ConfigError) as caught:
        load_config(root, protocols())
    text = str(caught.value)
    assert "auth.bearer: secrets never go in configuration files" in text
    assert "plain-token-value-123" not in text


def test_check_names_an_unreadable_secret_and_never_prints_one(make_config, monkeypatch) -> None:
    """`tongban check` warns naming the unset variable; with it set, nothing about it is printed.
    (The test catalogue's mappings fail check's format rule on their own: only the lines matter.)"""
    monkeypatch.delenv("TB_GW_SECRET", raising=False)
    root = with_auth(make_config, SIGNING_SHA)
    missing = CliRunner().invoke(main, ["check", "--config", str(root)])
    assert "auth.signing.secret: secret {env:TB_GW_SECRET}: environment variable" in missing.output
    monkeypatch.setenv("TB_GW_SECRET", SECRET)
    present = CliRunner().invoke(main, ["check", "--config", str(root)])
    assert "TB_GW_SECRET" not in present.output
    assert SECRET not in missing.output + present.output


async def test_a_service_item_may_carry_its_own_credentials(make_config, gateway, env) -> None:
    """The service item's auth: is used instead of the partner's (whose secret is not even set)."""
    env("TB_GW_SECRET", SECRET)
    root = with_auth(make_config, 'bearer: "{env:TB_NEVER_SET_FOR_THIS_TEST}"')
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    own = (
        '        auth:\n          signing: {app_key: ak-sha, secret: "{env:TB_GW_SECRET}", '
        "names: {app_key: X-Ca-Key, timestamp: X-Ca-Timestamp, nonce: X-Ca-Nonce, "
        "signature: X-Ca-Signature}}\n"
    )
    text = text.replace(
        "path: /vehicle-licences/renewals\n", "path: /vehicle-licences/renewals\n" + own
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (reply,) = await send(hk(root, gateway.url + "/signed"), request())
    assert reply.status == 200
    assert gateway.verdicts() == ["ok"]
    assert "Authorization" not in gateway.log[0].headers


async def test_each_partner_signs_with_its_own_credentials_only(
    make_config, gateway, env, monkeypatch
) -> None:
    """hk and sc sign with their own app keys; sc without its secret is held, never sent as hk."""
    env("TB_GW_SECRET", SECRET)
    root = with_auth(make_config, SIGNING_SHA)
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    sc_auth = (
        '    auth:\n      signing: {app_key: ak-sm3, secret: "{env:TB_SC_SECRET}", '
        "algorithm: hmac-sm3, body_digest: sm3, names: {app_key: X-Ca-Key, "
        "timestamp: X-Ca-Timestamp, nonce: X-Ca-Nonce, signature: X-Ca-Signature}}\n"
    )
    marker = '    services:\n      "115101000000000000-HF-WITHDRAW"'
    (root / "partners.yaml").write_text(text.replace(marker, sc_auth + marker), encoding="utf-8")
    sc_request = replace(request(), service="115101000000000000-HF-WITHDRAW")
    config = load_config(root, protocols())
    sc = replace(config.partners["sc"], endpoint=gateway.url + "/signed/hf")
    monkeypatch.delenv("TB_SC_SECRET", raising=False)
    (held,) = await send(sc, sc_request)
    assert isinstance(held, TransientError) and "TB_SC_SECRET is not set" in str(held)
    env("TB_SC_SECRET", SM3_SECRET)
    (hk_reply,) = await send(hk(root, gateway.url + "/signed"), request())
    (sc_reply,) = await send(sc, sc_request)
    assert hk_reply.status == 200 and sc_reply.status == 200
    assert [a.headers["X-Ca-Key"] for a in gateway.log] == ["ak-sha", "ak-sm3"]
    assert gateway.verdicts() == ["ok", "ok"]
