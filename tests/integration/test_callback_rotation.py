"""Rotating a callback secret: while partners.yaml names the previous secret beside the current
one, every callback carries both signatures (the current one first), so the source's receiver
accepts it whether it has moved to the new secret yet or not. Verified with the
``standardwebhooks`` package and with an HMAC computed here from the format's text."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from federation.cli.main import main
from federation.domain.webhooks import signed_headers
from replay.journal import Journal
from tests.integration.test_callback_resend import (
    Receiver,
    ended,
    listening,
    new_secret,
    notified,
    source_config,
)
from tests.integration.test_callback_signing import line_of


@pytest.fixture
async def rotating() -> AsyncIterator[Receiver]:
    """Two receivers' worth of secrets in one: the new secret, then the old one."""
    async with listening(Receiver(secrets=[new_secret(), new_secret()])) as r:
        yield r


def rotation(receiver: Receiver, monkeypatch: Any) -> str:
    """gd-portal's callback lines: the receiver's first secret current, its second previous."""
    monkeypatch.setenv("TB_CB_NEW", receiver.secrets[0])
    monkeypatch.setenv("TB_CB_OLD", receiver.secrets[1])
    return (
        f"    callback: {receiver.url}/outcomes\n"
        '    callback_secret: "{env:TB_CB_NEW}"\n'
        '    callback_secret_previous: "{env:TB_CB_OLD}"\n'
    )


def v1(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The v1 signature of a request under ``secret``, computed from the format's text."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


async def test_during_a_rotation_both_secrets_verify_the_callback(
    make_config: Any, rotating: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """callback_secret (new) and callback_secret_previous (old): the webhook-signature header
    holds two signatures, the new one first; the library verifies the callback with the old
    secret and with the new one, and refuses it with a third."""
    catalogue = source_config(make_config, rotation(rotating, monkeypatch))
    xid = await ended(journal, "rotate-1")
    await notified(journal, catalogue, xid, "callback_delivered")
    [(headers, body, ok)] = rotating.got
    assert ok and rotating.verifies(headers, body) == [True, True]
    new, old = rotating.secrets
    assert headers["webhook-signature"] == f"{v1(new, headers, body)} {v1(old, headers, body)}"
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers)["exchange_id"] == xid
    assert Receiver(secrets=[new_secret()]).verifies(headers, body) == [False]


async def test_a_previous_secret_that_cannot_be_read_holds_the_callback(
    make_config: Any, rotating: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """The old secret's variable is gone while partners.yaml still names it: the callback is
    held (callback_failed naming the reference), never sent with one signature only."""
    catalogue = source_config(make_config, rotation(rotating, monkeypatch))
    monkeypatch.delenv("TB_CB_OLD")
    xid = await ended(journal, "rotate-2")
    held = await notified(journal, catalogue, xid, "callback_failed")
    assert rotating.got == []
    failed = next(e for e in held.events if e.kind == "callback_failed")
    assert "not sent: secret {env:TB_CB_OLD}" in failed.data["error"]


def test_signatures_are_space_separated_the_first_key_first() -> None:
    """One v1 signature per key, in the order given, separated by a space."""
    a, b = b"a" * 32, b"b" * 32
    one = signed_headers([a], msg_id="x:delivered", timestamp=1, body=b"{}")
    two = signed_headers([a, b], msg_id="x:delivered", timestamp=1, body=b"{}")
    other = signed_headers([b], msg_id="x:delivered", timestamp=1, body=b"{}")
    sig = "webhook-signature"
    assert two[sig] == f"{one[sig]} {other[sig]}" and two[sig].count("v1,") == 2


def check(root: Any, language: str = "en") -> tuple[int, str]:
    """``tongban check`` of the catalogue at ``root`` in ``language``."""
    result = CliRunner().invoke(main, ["--lang", language, "check", "--config", str(root)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (
            '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "{env:TB_CB_GOOD}"\n'
            '    callback_secret_previous: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"\n',
            "secrets never go in configuration files",
        ),
        (
            "    callback: https://zwfw.gd.gov.cn/cb\n"
            '    callback_secret_previous: "{env:TB_CB_GOOD}"\n',
            "callback_secret_previous is the secret callback_secret replaces: give "
            "callback_secret too",
        ),
        (
            '    callback: https://zwfw.gd.gov.cn/cb\n    callback_secret: "{env:TB_CB_GOOD}"\n'
            '    callback_secret_previous: "{env:TB_CB_PLAIN}"\n',
            "secret {env:TB_CB_PLAIN} is no Standard Webhooks signing secret",
        ),
    ],
)
def test_a_previous_secret_that_cannot_sign_is_an_error_at_its_line(
    make_config: Any, monkeypatch: Any, lines: str, words: str
) -> None:
    """A literal previous secret, a previous one without a current one, one that is no whsec_
    secret: each an error at the callback_secret_previous line, the value never repeated."""
    monkeypatch.setenv("TB_CB_GOOD", new_secret())
    monkeypatch.setenv("TB_CB_PLAIN", "plain-shared-secret-value")
    catalogue_root = make_config()
    partners = catalogue_root / "partners.yaml"
    name = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
    text = partners.read_text(encoding="utf-8").replace(name, name + lines, 1)
    partners.write_text(text, encoding="utf-8")
    code, out = check(catalogue_root)
    assert code == 1
    line = line_of(catalogue_root, "callback_secret_previous:")
    assert f"partners.yaml:{line}: sources[0].callback_secret_previous: " in out and words in out
    assert "c2VjcmV0" not in out and "plain-shared-secret-value" not in out
    _, zh = check(catalogue_root, "zh-Hans")
    assert f"partners.yaml:{line}: sources[0].callback_secret_previous: " in zh
    assert words not in zh  # said in 简体


def test_a_rotation_passes_check(make_config: Any, monkeypatch: Any) -> None:
    """Both secrets readable whsec_ secrets: check says not a word about the callback."""
    monkeypatch.setenv("TB_CB_NEW", new_secret())
    monkeypatch.setenv("TB_CB_OLD", new_secret())
    lines = (
        "    callback: https://zwfw.gd.gov.cn/cb\n"
        '    callback_secret: "{env:TB_CB_NEW}"\n'
        '    callback_secret_previous: "{env:TB_CB_OLD}"\n'
    )
    _, out = check(source_config(make_config, lines).config.root)
    assert "callback" not in out, out
