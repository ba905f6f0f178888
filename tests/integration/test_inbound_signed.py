"""Partners that sign their calls to us: signature, timestamp window and nonce checked on arrival.

The caller's signature is computed here with the standard library's hmac and hashlib, as a
partner's own code would, not with tongban's signer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest

from federation.config import secrets
from federation.config.secrets import SecretRef
from tests.integration.test_inbound import APPLICATION, auth, inbound_config  # noqa: F401
from tests.integration.test_secret_reads import on_loop, secret_file, slow_files

__all__ = ["slow_files"]  # the fixture

SECRET = "hk-gateway-signing-secret-7f3a"
SIGNING = """\
      signing:
        app_key: hk-immd-gw
        secret: "{env:TB_TEST_HK_INBOUND_SECRET}"
        window: 120
"""


@pytest.fixture
def signed_config(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The inbound test catalogue with hk signing its calls (HMAC-SHA256, default parts)."""
    root: Path = request.getfixturevalue("inbound_config")
    text = (root / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("    inbound:\n", "    inbound:\n" + SIGNING, 1)
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("TB_TEST_HK_INBOUND_SECRET", SECRET)
    return root


def sign(
    body: bytes,
    *,
    path: str = "/v1/partners/hk/applications",
    at: float | None = None,
    nonce: str | None = None,
    secret: str = SECRET,
    app_key: str = "hk-immd-gw",
) -> dict[str, str]:
    """The headers a partner's gateway client adds: method, path, query, body digest, time, nonce."""
    stamp = str(int((time.time() if at is None else at) * 1000))
    nonce = nonce or uuid.uuid4().hex
    text = "\n".join(["POST", path, "", hashlib.sha256(body).hexdigest(), stamp, nonce])
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"X-App-Key": app_key, "X-Timestamp": stamp, "X-Nonce": nonce, "X-Signature": mac}


def headers_for(body: bytes, key: str, **kw: object) -> dict[str, str]:
    """A filing's headers: the partner's key, an Idempotency-Key and the signature headers."""
    made = sign(body, **kw)  # type: ignore[arg-type]
    return {**auth(), "Idempotency-Key": key, "Content-Type": "application/json", **made}


BODY = orjson.dumps({"service": "GD-GA-RP-HK", "application": APPLICATION})


async def test_a_signed_call_is_filed_and_a_replayed_one_refused(signed_config, broker_at) -> None:
    """The partner's valid signature files the application; the same call again (same nonce) is
    a replay: 401 signature-invalid, journalled as a refusal, nothing filed twice."""
    headers = headers_for(BODY, "signed-1")
    async with broker_at(signed_config) as (broker, url), aiohttp.ClientSession(url) as http:
        async with http.post("/v1/partners/hk/applications", data=BODY, headers=headers) as r:
            first = r.status, await r.json()
        async with http.post("/v1/partners/hk/applications", data=BODY, headers=headers) as r:
            again = r.status, await r.json()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert first[0] == 202, first
    assert again[0] == 401
    assert again[1]["type"] == "urn:tongban:problem:signature-invalid"
    assert "nonce was already used" in again[1]["detail"]
    assert [r.problem for r in refusals] == ["signature-invalid"]
    assert sum(counts.values()) == 1


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"secret": "another-partners-secret"}, "signature does not match"),
        ({"at": time.time() - 600}, "from our clock"),
        ({"app_key": "gd-someone-else"}, "is not hk's app key"),
        ({"path": "/v1/partners/hk/status"}, "signature does not match"),
        ({"drop": True}, "not signed"),
    ],
    ids=["wrong-secret", "stale-timestamp", "other-app-key", "signed-another-path", "unsigned"],
)
async def test_a_call_with_a_bad_signature_is_refused_and_journalled(
    signed_config, broker_at, change: dict[str, object], says: str
) -> None:
    """Each way a signature can be wrong is a 401 with its reason and a refusal row."""
    if change.get("drop"):
        headers = {**auth(), "Idempotency-Key": "bad-1", "Content-Type": "application/json"}
    else:
        headers = headers_for(BODY, "bad-1", **change)
    async with broker_at(signed_config) as (broker, url), aiohttp.ClientSession(url) as http:
        async with http.post("/v1/partners/hk/applications", data=BODY, headers=headers) as r:
            status, problem = r.status, await r.json()
        refusals = await broker.journal.refusals()
        counts = await broker.journal.counts()
    assert status == 401, problem
    assert says in problem["detail"]
    assert SECRET not in orjson.dumps(problem).decode()
    assert [r.problem for r in refusals] == ["signature-invalid"]
    assert counts == {}


async def test_a_tampered_body_is_refused(signed_config, broker_at) -> None:
    """The body digest is signed: the same headers with another body do not pass."""
    headers = headers_for(BODY, "tamper-1")
    other = BODY.replace(b"CHAN, Tai Man", b"WONG, Siu Ming")
    async with broker_at(signed_config) as (_, url), aiohttp.ClientSession(url) as http:
        async with http.post("/v1/partners/hk/applications", data=other, headers=headers) as r:
            status, problem = r.status, await r.json()
    assert status == 401
    assert "signature does not match" in problem["detail"]


async def test_a_missing_signing_secret_is_ours_to_fix(
    signed_config, broker_at, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With our copy of the secret unset the call cannot be checked: 503, never accepted unchecked."""
    headers = headers_for(BODY, "nosecret-1")
    async with broker_at(signed_config) as (broker, url), aiohttp.ClientSession(url) as http:
        monkeypatch.delenv("TB_TEST_HK_INBOUND_SECRET")
        async with http.post("/v1/partners/hk/applications", data=BODY, headers=headers) as r:
            status, problem = r.status, await r.json()
        counts = await broker.journal.counts()
    assert status == 503
    assert problem["type"] == "urn:tongban:problem:signature-unverifiable"
    assert "TB_TEST_HK_INBOUND_SECRET" not in problem["detail"]
    assert counts == {}


def test_a_bad_window_is_a_configuration_error_at_its_line(signed_config: Path) -> None:
    """inbound.signing.window out of range is refused at file:line."""
    from adapters.registry import protocols
    from federation.config import load_config
    from federation.domain.errors import ConfigError

    text = (signed_config / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("        window: 120\n", "        window: 99999\n", 1)
    (signed_config / "partners.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("        window: 99999") + 1
    with pytest.raises(ConfigError) as err:
        load_config(signed_config, protocols())
    [problem] = err.value.problems
    assert problem.line == line
    assert problem.path.endswith("inbound.signing.window")


async def test_a_signing_secret_file_is_read_while_the_loop_runs_on(
    signed_config, broker_at, slow_files
) -> None:
    """Our copy of the partner's signing secret, in a file, is read outside the event loop, which
    keeps running while the read is held, and the signed call is filed. Before, it was read on the
    loop at every call, which stood still until the read ended."""
    partners = signed_config / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    file_ref = text.replace('"{env:TB_TEST_HK_INBOUND_SECRET}"', '"{file:secrets/hk-inbound}"')
    partners.write_text(file_ref, encoding="utf-8")
    secret_file(signed_config, "hk-inbound", SECRET)
    headers = headers_for(BODY, "slow-secret-1")
    async with broker_at(signed_config) as (_, url), aiohttp.ClientSession(url) as http:
        async with slow_files.watched():
            async with http.post("/v1/partners/hk/applications", data=BODY, headers=headers) as r:
                status, answer = r.status, await r.json()
    assert status == 202, answer
    assert {read[0] for read in slow_files.reads} == {"hk-inbound"}
    assert all(not loop and ran for _, loop, ran in slow_files.reads), slow_files.reads


async def test_a_hung_signing_secret_file_is_a_503_after_the_timeout(
    signed_config, broker_at, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signing secret file whose read hangs answers 503 signature-unverifiable, twice."""
    partners = signed_config / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    file_ref = text.replace('"{env:TB_TEST_HK_INBOUND_SECRET}"', '"{file:secrets/hk-inbound}"')
    partners.write_text(file_ref, encoding="utf-8")
    secret_file(signed_config, "hk-inbound", SECRET)
    release = threading.Event()
    real = SecretRef.read_bytes

    def hung(ref: SecretRef) -> bytes:
        if ref.name.endswith("hk-inbound") and not release.is_set() and not on_loop():
            release.wait(timeout=30)
        return real(ref)

    monkeypatch.setattr(SecretRef, "read_bytes", hung)
    monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
    statuses = []
    try:
        async with broker_at(signed_config) as (_, url), aiohttp.ClientSession(url) as http:
            for n in range(2):
                headers = headers_for(BODY, f"hung-secret-{n}")
                post = http.post("/v1/partners/hk/applications", data=BODY, headers=headers)
                async with asyncio.timeout(3), post as r:
                    statuses.append((r.status, (await r.json())["type"]))
    finally:
        release.set()
    assert statuses == [(503, "urn:tongban:problem:signature-unverifiable")] * 2
