"""A SOAP partner that authenticates with its own WSDL header element (``AuthHeader`` with
``AppKey`` and ``AppSecret``), onboarded with ``soap: headers:`` values given by reference and
driven through a real broker: the spyne service checks the pair itself, and its own log says what
it received. The secrets are read at every attempt, held while they cannot be read, and appear
nowhere staff can read: the journal file, the API's transcript, ``journal show`` and the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from federation.api.server import running_broker
from federation.cli.main import main
from federation.domain.models import Exchange, State
from federation.logging import capture_logs
from federation.runtime.broker import Broker, Submission
from tests.foreign.spyne_auth_header import ShenQingFuWu
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

PARTNER, SERVICE = "gd-kstb", "440000-KSTB-HJQY"
NS = "http://kstb.gdzwfw.gov.cn/ws/2026"
APP_KEY = "tongban-gz-7c31"
SECRET = "Gd-AppSecret-4b0e9f2a71d6"
ENV = "TONGBAN_TEST_GD_APP_SECRET"
PARTNERS_YAML = f"""\
version: 1
defaults:
  timeouts: {{connect: 1s, read: 5s, total: 10s}}
  retry: {{max_attempts: 200, backoff_base: 50ms, backoff_cap: 100ms, jitter: 0}}
sources:
  - id: gz-citizen-centre
    name: {{zh: 广州市政务服务中心, en: Guangzhou Government Services Centre}}
partners:
  - id: {PARTNER}
    name: {{zh: 广东省跨省通办平台, en: Guangdong cross-province services platform}}
    region: {{code: "44", iso: CN-GD}}
    protocol: soap
    endpoint: https://kstb.gdzwfw.example.gov.cn/ShenQingFuWu
    soap:
      wsdl: kstb.wsdl
      idempotency: {{body: shenQing/qqbh}}
      headers:
        "{{{NS}}}AuthHeader/AppKey": "{{file:secrets/gd-app-key}}"
        "{{{NS}}}AuthHeader/AppSecret": "{{env:{ENV}}}"
    reply:
      success: [{{path: huiZhi.slbh, exists: true}}]
      faults: {{permanent: ["Client.*"], transient: ["Server.*"]}}
    services:
      {SERVICE}:
        mapping: mappings/hjqy.yaml
        operation: TiJiaoShenQing
"""
MAPPING = f"""\
mapping: 1
partner: {PARTNER}
service: {SERVICE}
names:
  - applicant.name
request:
  shenQing.sqrxm: {{from: applicant.name, required: true}}
  shenQing.sfzhm: {{from: applicant.documents.cn_id_card.number, required: true}}
  shenQing.sxbm: {{value: "11440000MB2C92227Y4440111001000"}}
response:
  receipt_number: {{from: huiZhi.slbh, required: true}}
"""
Run = Callable[..., contextlib.AbstractAsyncContextManager[tuple[ShenQingFuWu, Broker, str]]]


def configuration(root: Path, fuwu: ShenQingFuWu) -> Path:
    """partners.yaml, the mapping, the published WSDL and the app key's file (owner-only)."""
    (root / "mappings").mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / "partners.yaml").write_text(PARTNERS_YAML, encoding="utf-8")
    (root / "mappings" / "hjqy.yaml").write_text(MAPPING, encoding="utf-8")
    fuwu.save_wsdl(root / "kstb.wsdl")
    key = root / "secrets" / "gd-app-key"
    key.write_text(APP_KEY + "\n", encoding="utf-8")
    key.chmod(0o600)
    return root


@pytest.fixture
def gd(tmp_path: Path) -> Run:
    """The Guangdong service on loopback and a broker on a configuration that names its
    credentials by reference."""

    @contextlib.asynccontextmanager
    async def run(
        app_secret: str = SECRET, echo: bool = False
    ) -> AsyncIterator[tuple[ShenQingFuWu, Broker, str]]:
        with ShenQingFuWu(app_key=APP_KEY, app_secret=app_secret, echo=echo) as fuwu:
            root = configuration(tmp_path / "config", fuwu)
            async with running_broker(
                root=root,
                journal_path=tmp_path / "journal.sqlite",
                port=0,
                endpoints={PARTNER: fuwu.url},
                poll_interval=0.05,
            ) as (broker, url):
                yield fuwu, broker, url

    return run


def application(key: str) -> Submission:
    """A household registration move filed in Guangzhou (domain.md's example 12's applicant)."""
    applicant = {"name": "余丽萍", "documents": {"cn_id_card": {"number": "510104199307070153"}}}
    return Submission(
        source="gz-citizen-centre",
        partner=PARTNER,
        service=SERVICE,
        idempotency_key=key,
        application={"applicant": applicant},
    )


async def settled(
    broker: Broker, xid: str, until: Callable[[Exchange], bool], what: str
) -> Exchange:
    """The exchange once ``until`` holds of it (fails the test at the deadline)."""
    ex: Exchange = await wait_for(
        lambda: broker.get(xid), lambda ex: ex is not None and until(ex), what=what, timeout=20
    )
    return ex


def journal_bytes(folder: Path) -> bytes:
    """The SQLite journal's files as they lie on disk."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("journal.sqlite*")))


async def test_the_partner_receives_the_referenced_credentials_and_no_one_else_sees_them(
    gd: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AppKey from a file and AppSecret from the environment reach the service, which accepts
    them; the transcript shows both as <redacted>; neither value is in the journal file, the
    API's answer, journal show --reveal or the logs."""
    monkeypatch.setenv(ENV, SECRET)
    with capture_logs() as logs:
        async with gd() as (fuwu, broker, url), aiohttp.ClientSession(url) as http:
            ex, _ = await broker.submit(application("gd-auth-1"))
            done = await settled(broker, ex.id, lambda ex: ex.state is State.DELIVERED, "delivered")
            async with http.get(f"/v1/exchanges/{ex.id}?include=payloads") as r:
                assert r.status == 200
                answer = await r.text()
    assert [(e["app_key"], e["app_secret"], e["qqbh"], e["jieguo"]) for e in fuwu.read_log()] == [
        (APP_KEY, SECRET, ex.id, "shouli")
    ]
    assert done.receipt is not None and done.receipt["receipt_number"] == "GD-KSTB-000001"
    [sent] = [a["request"] for a in json.loads(answer)["attempts"]]
    assert sent["soap_headers"] == {
        "AuthHeader.AppKey": "<redacted>",
        "AuthHeader.AppSecret": "<redacted>",
    }
    assert sent["body_sha256_of"] == "envelope without its header blocks that carry secrets"
    journal = ["--journal", str(tmp_path / "journal.sqlite"), "--config", str(tmp_path / "config")]
    show = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["journal", "show", ex.id, "--format", "json", *journal, "--reveal", "--reason", "audit"],
    )
    assert show.exit_code == 0, show.output
    assert "AuthHeader.AppSecret" in show.output  # the transcript is there to read
    assert any(e.get("event") == "exchange_delivered" for e in logs)  # the logs were captured
    places = {
        "journal file": journal_bytes(tmp_path).decode("latin-1"),
        "API answer": answer,
        "journal show": show.output,
        "logs": repr(logs),
    }
    for where, content in places.items():
        for value in (SECRET, APP_KEY):
            assert value not in content, f"a secret ({len(value)} chars) found in the {where}"


async def test_a_secret_the_partner_quotes_back_is_kept_nowhere(
    gd: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service expects another AppSecret and its fault quotes the one it received: the
    exchange is rejected with the fault's words, the secret in them <redacted>; the value is in
    no journal byte, API answer (in clear or masked), journal show (with or without --reveal) or
    the exchange's last error. Before, the fault's reason kept it in all of them."""
    monkeypatch.setenv(ENV, SECRET)
    answers: list[str] = []
    async with (
        gd(app_secret="Gd-AppSecret-expected-9d0c", echo=True) as (fuwu, broker, url),
        aiohttp.ClientSession(url) as http,
    ):
        ex, _ = await broker.submit(application("gd-echo-1"))
        done = await settled(broker, ex.id, lambda ex: ex.state is State.REJECTED, "rejected")
        for query in ("?include=payloads", "", "?reveal=true&reason=audit"):
            async with http.get(f"/v1/exchanges/{ex.id}{query}") as r:
                assert r.status == 200, await r.text()
                answers.append(await r.text())
    assert [e["app_secret"] for e in fuwu.read_log()] == [SECRET]  # it was sent, and quoted
    error = done.last_error or {}
    assert error.get("partner_message") == "AppSecret '<redacted>' 错误", error
    journal = ["--journal", str(tmp_path / "journal.sqlite"), "--config", str(tmp_path / "config")]
    shows = [
        await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["journal", "show", ex.id, "--format", "json", *journal, *more],
        )
        for more in ([], ["--reveal", "--reason", "audit"])
    ]
    assert all(show.exit_code == 0 for show in shows), [show.output for show in shows]
    assert "AppSecret '<redacted>'" in shows[1].output  # the partner's words are there to read
    places = {
        "journal file": journal_bytes(tmp_path).decode("latin-1"),
        "API answers": "".join(answers),
        "journal show": shows[0].output,
        "journal show --reveal": shows[1].output,
        "last error": json.dumps(error, ensure_ascii=False),
    }
    for where, content in places.items():
        assert SECRET not in content, f"the echoed secret found in the {where}"


async def test_an_unreadable_reference_holds_the_delivery_until_it_can_be_read(
    gd: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the variable unset, nothing reaches the service and the exchange waits with a
    transient error naming the reference; once it is set, the next attempt is delivered."""
    monkeypatch.delenv(ENV, raising=False)
    async with gd() as (fuwu, broker, _):
        ex, _ = await broker.submit(application("gd-held-1"))
        # between attempts: an attempt still on its way could read the variable set below
        held = await settled(
            broker,
            ex.id,
            lambda ex: ex.attempts >= 2 and ex.state is State.RETRY_WAIT,
            "two attempts held",
        )
        assert fuwu.read_log() == []
        error = held.last_error or {}
        assert error["kind"] == "transient_error", error
        assert f"not sent: secret {{env:{ENV}}}: environment variable {ENV} is not set" in str(
            error["message"]
        )
        monkeypatch.setenv(ENV, SECRET)
        done = await settled(broker, ex.id, lambda ex: ex.state is State.DELIVERED, "delivered")
    assert [(e["app_secret"], e["jieguo"]) for e in fuwu.read_log()] == [(SECRET, "shouli")]
    assert done.attempts > held.attempts


async def test_a_rotated_secret_file_applies_to_the_next_attempt(
    gd: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app key's file is read at every send: after the service and the file both change,
    the next application carries the new value, with no restart."""
    monkeypatch.setenv(ENV, SECRET)
    async with gd() as (fuwu, broker, _):
        first, _ = await broker.submit(application("gd-rot-1"))
        await settled(broker, first.id, lambda ex: ex.state is State.DELIVERED, "delivered")
        fuwu.app_key = "tongban-gz-rotated-91aa"
        key = tmp_path / "config" / "secrets" / "gd-app-key"
        key.write_text("tongban-gz-rotated-91aa", encoding="utf-8")
        second, _ = await broker.submit(application("gd-rot-2"))
        await settled(broker, second.id, lambda ex: ex.state is State.DELIVERED, "delivered")
    assert [(e["app_key"], e["jieguo"]) for e in fuwu.read_log()] == [
        (APP_KEY, "shouli"),
        ("tongban-gz-rotated-91aa", "shouli"),
    ]


def tongban(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``tongban ARGS --config root`` with only ``env`` choosing the language and the secret."""
    keep = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", ENV)}
    keep.pop("TONGBAN_LANG", None)
    return subprocess.run(
        [sys.executable, "-m", "federation", *args, "--config", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**keep, "LANG": "C", **env},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The configuration of the tests above, the WSDL saved from the running service."""
    with ShenQingFuWu(app_key=APP_KEY, app_secret=SECRET) as fuwu:
        return configuration(tmp_path / "config", fuwu)


def _line(file: Path, text: str) -> int:
    return next(i for i, line in enumerate(file.read_text().splitlines(), 1) if text in line)


def test_check_accepts_references_and_warns_of_those_it_cannot_read(config: Path) -> None:
    """References pass check; an unset variable and a key file the group may read are warnings at
    their lines naming the reference (the deliveries wait for them), never the value."""
    clean = tongban(config, "check", **{ENV: SECRET})
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "warning" not in clean.stdout + clean.stderr
    (config / "secrets" / "gd-app-key").chmod(0o640)
    partners = config / "partners.yaml"
    for lang, said in [
        ("C", "environment variable {env} is not set; what needs it is held until it can be read"),
        ("zh_CN.UTF-8", "环境变量 {env} 未设置"),
        ("zh_HK.UTF-8", "環境變數 {env} 未設定"),
    ]:
        check = tongban(config, "check", LANG=lang)
        out = check.stdout + check.stderr
        assert check.returncode == 0, out
        secret_line = f"partners.yaml:{_line(partners, 'AuthHeader/AppSecret')}: "
        key_line = f"partners.yaml:{_line(partners, 'AuthHeader/AppKey')}: "
        assert secret_line in out and said.format(env=ENV) in out, out
        assert key_line in out and "{file:secrets/gd-app-key}" in out and "640" in out, out
        assert APP_KEY not in out


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("C", "header AppSecret carries credentials, and secrets never go in configuration files"),
        ("zh_CN.UTF-8", "标头 AppSecret 携带凭据，而密钥绝不能写在配置文件中"),
        ("zh_HK.UTF-8", "標頭 AppSecret 攜帶認證資料，而密鑰絕不能寫在設定檔中"),
    ],
)
def test_check_refuses_a_literal_credential_in_a_soap_header(
    config: Path, lang: str, said: str
) -> None:
    """AppSecret written in partners.yaml is an error at its line, in the reader's language,
    pointing to a reference; the value is never repeated."""
    partners = config / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    partners.write_text(text.replace(f'"{{env:{ENV}}}"', f'"{SECRET}"'), encoding="utf-8")
    check = tongban(config, "check", LANG=lang, **{ENV: SECRET})
    out = check.stdout + check.stderr
    assert check.returncode == 1, out
    line = _line(partners, "AuthHeader/AppSecret")
    assert f"partners.yaml:{line}: partners[0].soap.headers.{{{NS}}}AuthHeader/AppSecret: " in out
    assert said in out and "'{env:NAME}'" in out, out
    assert SECRET not in out
