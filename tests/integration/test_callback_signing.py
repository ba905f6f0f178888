"""Signed callbacks: a source that declared a callback_secret can tell tongban's callback from a
forged, altered or replayed one, checking it as the Standard Webhooks format says.

The receiver verifies with code of its own written from the format's text (no tongban code):
HMAC-SHA256 over ``<webhook-id>.<webhook-timestamp>.<raw body>`` under the key that follows
``whsec_`` (base64), compared in constant time with each ``v1,`` signature, and a timestamp more
than five minutes from its clock refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from federation.api.net import start_site
from federation.cli.main import main
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from tests.conftest import hk_submission
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_inbound import INBOUND, LOCAL, MAPPING
from tests.waiting import wait_for

TOLERANCE = 5 * 60  # seconds, as the format recommends
NAME = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """A receiver's check of a Standard Webhooks signature, written from the format's text."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures) or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > TOLERANCE:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class Receiver:
    """A source system's callback endpoint that accepts only what it can verify (else 401)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.got: list[tuple[dict[str, str], bytes, bool]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = verify(self.secret, headers, body, time.time())
        self.got.append((headers, body, ok))
        return web.Response(status=204 if ok else 401)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver on loopback, with a fresh secret of 32 random bytes."""
    r = Receiver("whsec_" + base64.b64encode(os.urandom(32)).decode())
    app = web.Application()
    app.router.add_post("/outcomes", r.handle)
    runner, r.url = await start_site(app)
    yield r
    await runner.cleanup()


def with_source(root: Path, lines: str) -> Path:
    """The test catalogue with ``lines`` (YAML, indented for it) added to gd-portal."""
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8").replace(NAME, NAME + lines, 1)
    partners.write_text(text, encoding="utf-8")
    return root


async def events_of(broker: Broker, xid: str, kind: str) -> Exchange:
    """The exchange once it has an event of ``kind``."""
    found: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and any(e.kind == kind for e in ex.events),
        what=f"a {kind} event of {xid}",
    )
    return found


async def post(url: str, headers: Mapping[str, str], body: bytes) -> int:
    """POST ``body`` with ``headers`` as a forger would; the receiver's status."""
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status


async def test_a_signed_callback_verifies_and_a_forgery_does_not(
    make_config, simulators, broker_at, receiver: Receiver, journal_of: Any, monkeypatch
) -> None:
    """With callback_secret the callback carries webhook-id (its idempotency key),
    webhook-timestamp and a v1 signature the receiver verifies on its own; the same request with
    its body altered, or its timestamp moved to now, or received ten minutes late, is refused,
    and the secret is nowhere in the journal."""
    monkeypatch.setenv("TB_CALLBACK_SECRET", receiver.secret)
    url = f"{receiver.url}/outcomes"
    root = with_source(
        make_config(),
        f'    callback: {url}\n    callback_secret: "{{env:TB_CALLBACK_SECRET}}"\n',
    )
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
        ex, _ = await broker.submit(hk_submission("signed-1"))
        await settle(broker, ex.id, DONE)
        done = await events_of(broker, ex.id, "callback_delivered")
    assert done.state is State.DELIVERED
    [(headers, body, ok)] = receiver.got
    assert ok
    assert headers["webhook-id"] == headers["idempotency-key"] == f"{ex.id}:delivered"
    assert headers["webhook-signature"].startswith("v1,")
    key = receiver.secret.removeprefix("whsec_")
    assert key not in repr(done) and receiver.secret not in repr(done)
    forged = {k: v for k, v in headers.items() if k.startswith("webhook-") or k == "content-type"}
    tampered = body.replace(b'"delivered"', b'"rejected"')
    assert tampered != body
    assert await post(url, forged, tampered) == 401
    moved = {**forged, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}
    assert await post(url, moved, body) == 401  # the timestamp is signed too
    assert await post(url, forged, body) == 204  # as sent, it still verifies
    assert not verify(receiver.secret, forged, body, time.time() + 600)  # replayed too late


async def test_a_secret_that_cannot_be_read_holds_the_callback_rather_than_send_it_unsigned(
    make_config, simulators, broker_at, receiver: Receiver, monkeypatch
) -> None:
    """callback_secret names an unset variable: nothing goes out unsigned; the try is a
    callback_failed naming the reference (retried later), never the secret."""
    monkeypatch.delenv("TB_CALLBACK_UNSET", raising=False)
    root = with_source(
        make_config(),
        f'    callback: {receiver.url}/outcomes\n    callback_secret: "{{env:TB_CALLBACK_UNSET}}"\n',
    )
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, _):
        ex, _ = await broker.submit(hk_submission("held-1"))
        held = await events_of(broker, ex.id, "callback_failed")
    assert receiver.got == []
    failed = next(e for e in held.events if e.kind == "callback_failed")
    assert "not sent: secret {env:TB_CALLBACK_UNSET}" in failed.data["error"]
    assert held.notify_state is not None  # still owed


def check(root: Path) -> tuple[int, str]:
    """``tongban check`` of the catalogue at ``root``, in English."""
    result = CliRunner().invoke(main, ["--lang", "en", "check", "--config", str(root)])
    return result.exit_code, result.output


def line_of(root: Path, text: str) -> int:
    """The line of partners.yaml that starts (after indentation) with ``text``."""
    lines = (root / "partners.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith(text))


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (
            '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "whsec_c2VjcmV0"\n',
            "secrets never go in configuration files",
        ),
        (
            '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "{env:TB_CB_PLAIN}"\n',
            "secret {env:TB_CB_PLAIN} is no Standard Webhooks signing secret: write whsec_",
        ),
        (
            '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "{env:TB_CB_SHORT}"\n',
            "is no Standard Webhooks signing secret",
        ),
        ('    callback_secret: "{env:TB_CB_GOOD}"\n', "give the callback URL too"),
    ],
)
def test_a_callback_secret_that_cannot_sign_is_an_error_at_its_line(
    make_config, monkeypatch, lines: str, words: str
) -> None:
    """A literal secret, one that is no whsec_ secret (or too short a key), a secret without a
    callback: each an error at the callback_secret line, the value never repeated."""
    monkeypatch.setenv("TB_CB_PLAIN", "plain-shared-secret-value")
    monkeypatch.setenv("TB_CB_SHORT", "whsec_" + base64.b64encode(b"16 bytes only!!!").decode())
    monkeypatch.setenv("TB_CB_GOOD", "whsec_" + base64.b64encode(os.urandom(32)).decode())
    root = with_source(make_config(), lines)
    code, out = check(root)
    assert code == 1
    line = line_of(root, "callback_secret:")
    assert f"partners.yaml:{line}: sources[0].callback_secret: " in out and words in out
    assert "c2VjcmV0" not in out and "plain-shared-secret-value" not in out


@pytest.mark.parametrize(
    ("callback", "warned"),
    [
        ("https://zwfw.gd.gov.cn/tongban/outcomes", True),
        ("http://127.0.0.1:8081/outcomes", False),
        ("http://localhost:8081/outcomes", False),
        ("http://[::1]:8081/outcomes", False),
    ],
)
def test_an_unsigned_callback_to_another_machine_is_warned_of(
    make_config, callback: str, warned: bool
) -> None:
    """No callback_secret: no error, a warning at the callback's line when it leaves
    this machine (its receiver cannot tell it from a forgery); a loopback one is not warned of."""
    root = with_source(make_config(), f"    callback: {callback}\n")
    _, out = check(root)  # (the test mappings fail the contract checks: errors of their own)
    assert [line for line in out.splitlines() if "callback" in line and "warning" not in line] == []
    line = line_of(root, "callback:")
    warning = f"partners.yaml:{line}: warning: sources[0].callback: callbacks to "
    assert (warning in out) is warned
    if warned:
        assert "zwfw.gd.gov.cn go unsigned" in out and "add a callback_secret" in out


def test_a_signed_callback_is_not_warned_of(make_config, monkeypatch) -> None:
    """A callback with a readable whsec_ secret: check says not a word about it."""
    monkeypatch.setenv("TB_CB_GOOD", "whsec_" + base64.b64encode(os.urandom(32)).decode())
    lines = '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "{env:TB_CB_GOOD}"\n'
    _, out = check(with_source(make_config(), lines))
    assert "callback" not in out, out


@pytest.mark.parametrize(("secret", "warned"), [(False, True), (True, False)])
def test_a_partners_unsigned_json_callback_is_warned_of(
    make_config, monkeypatch, secret: bool, warned: bool
) -> None:
    """A partner's inbound.callback that carries tongban's JSON (a service without report:) is
    warned of like a source's when unsigned; inbound.callback_secret signs it."""
    monkeypatch.setenv("TB_CB_GOOD", "whsec_" + base64.b64encode(os.urandom(32)).decode())
    root: Path = make_config()
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    extra = "      callback: https://gateway.example.gov.hk/tongban/outcomes\n"
    if secret:
        extra += '      callback_secret: "{env:TB_CB_GOOD}"\n'
    text = text.replace("partners:\n", LOCAL + "partners:\n", 1)
    text = text.replace("    concurrency: 8\n", "    concurrency: 8\n" + INBOUND + extra, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    (root / "mappings" / "inbound-rp.yaml").write_text(MAPPING, encoding="utf-8")
    _, out = check(root)
    assert [line for line in out.splitlines() if "callback" in line and "warning" not in line] == []
    assert ("inbound.callback: callbacks to gateway.example.gov.hk go unsigned" in out) is warned
