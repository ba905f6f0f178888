"""Secret files are read at every attempt, but never on the event loop: a slow file system (NFS, a
failing disk) holds the attempt that needs the secret while the loop serves everything else. REST
``auth:`` (bearer, OAuth2 client secret) and SOAP (WS-Security password, WS-Security signing key)
against partners on loopback; the rotation tests of test_partner_auth and test_soap_adapter show a
rotated file still applies to the next attempt. A secret too short to be a credential is never
sent."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from adapters.rest import RestAdapter
from federation.api.net import start_site
from federation.config import secrets
from federation.config.secrets import SecretRef
from federation.domain.errors import NotSent, TransientError
from tests.integration.test_notices_soap import file_one, mo_config, spyne_mo
from tests.integration.test_partner_auth import hk, request, with_auth
from tests.integration.test_partner_auth_tls import write_key
from tests.integration.test_soap_adapter import mo_keeping, running, serve, soap_root
from tests.integration.test_soap_adapter import request as soap_request
from tests.waiting import wait_for

__all__ = ["mo_config", "soap_root", "spyne_mo"]  # the fixtures

TOKEN = "tb-bearer-6f0c2a91d4"


def on_loop() -> bool:
    """Whether an asyncio event loop runs in the calling thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SlowFiles:
    """Reads of the files under ``folder`` (stat and read), each held until the event loop has
    run once more; records each as (name, in the loop's thread, the loop ran meanwhile)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.reads: list[tuple[str, bool, bool]] = []
        self.active = False
        self.reading = threading.Event()
        self.loop_ran = threading.Event()
        real_read, real_stat = Path.read_bytes, Path.stat

        def read_bytes(path: Path) -> bytes:
            self._held(path)
            return real_read(path)

        def stat(path: Path, **kwargs: Any) -> Any:
            self._held(path)
            return real_stat(path, **kwargs)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        monkeypatch.setattr(Path, "stat", stat)

    def _held(self, path: Path) -> None:
        if not self.active or not path.is_relative_to(self.folder) or path.suffix == ".wsdl":
            return
        self.loop_ran.clear()
        self.reading.set()
        # on the loop's own thread this waits in vain (the loop is stuck here) and gives up
        ran = self.loop_ran.wait(timeout=2)
        self.reads.append((path.name, on_loop(), ran))

    @contextlib.asynccontextmanager
    async def watched(self) -> AsyncIterator[None]:
        """While the block runs, tell each held read that the loop ran (it can only if the read
        is not on the loop); reads before the block are forgotten."""
        self.reads.clear()

        async def ticker() -> None:
            while True:
                await asyncio.sleep(0.005)
                if self.reading.is_set():
                    self.reading.clear()
                    self.loop_ran.set()

        task = asyncio.create_task(ticker())
        self.active = True
        try:
            yield
        finally:
            self.active = False
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def slow_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SlowFiles:
    """Slow reads of the test's files."""
    return SlowFiles(tmp_path, monkeypatch)


@contextlib.asynccontextmanager
async def rest_partner(seen: list[dict[str, str]]) -> AsyncIterator[str]:
    """A REST partner on loopback that takes everything (and hands out OAuth2 tokens)."""

    async def handle(req: web.Request) -> web.Response:
        await req.read()
        if req.path.endswith("/oauth/token"):
            return web.json_response({"access_token": "tb-token-0a7e55c1", "expires_in": 3600})
        seen.append(dict(req.headers))
        return web.json_response({"ref_no": "HK-1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, url = await start_site(app)
    try:
        yield url
    finally:
        await runner.cleanup()


def secret_file(root: Path, name: str, value: str) -> None:
    path = root / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


AUTH = {
    "bearer": ('bearer: "{{file:secrets/token}}"', "token"),
    "oauth2": (
        "oauth2:\n  token_url: {url}/oauth/token\n  client_id: tongban\n"
        '  client_secret: "{{file:secrets/client}}"',
        "client",
    ),
}


@pytest.mark.parametrize("scheme", sorted(AUTH))
async def test_a_rest_secret_file_is_read_while_the_loop_runs_on(
    make_config, slow_files: SlowFiles, scheme: str
) -> None:
    """A bearer token file and an OAuth2 client secret file are read outside the event loop,
    which keeps running while the read is held; the partner gets the request. Before, each
    was read on the loop, which stood still until the read ended."""
    seen: list[dict[str, str]] = []
    async with rest_partner(seen) as url:
        text, name = AUTH[scheme]
        root = with_auth(make_config, text.format(url=url))
        secret_file(root, name, TOKEN)
        adapter = RestAdapter(hk(root, url))
        await adapter.start()
        try:
            async with slow_files.watched():
                reply = await adapter.send(request())
        finally:
            await adapter.close()
    assert reply.status == 200 and len(seen) == 1
    assert {read[0] for read in slow_files.reads} == {name}
    assert all(not loop and ran for _, loop, ran in slow_files.reads), slow_files.reads


async def test_soap_secret_and_key_files_are_read_while_the_loop_runs_on(
    soap_root, slow_files: SlowFiles
) -> None:
    """The WS-Security password file (mo) and the signing key and certificate (hk) are read
    outside the event loop, which keeps running while each read is held; both partners get
    their envelopes. Before, they were read (and the envelope signed) on the loop."""
    ours = trustme.CA().issue_cert("tongban.example")
    root = soap_root(
        hk_extra="    auth:\n      ws_signature: {cert: certs/ours.pem, key: '{file:certs/ours.key}'}",
        mo_extra='      ws_security: {username: u, password: "{file:secrets/mo-password}"}',
    )
    (root / "certs").mkdir()
    ours.cert_chain_pems[0].write_to_path(str(root / "certs" / "ours.pem"))
    write_key(root / "certs" / "ours.key", ours.private_key_pem)
    secret_file(root, "mo-password", "mo-pass-5e1d")
    got: list[bytes] = []
    handler = mo_keeping(got)

    async with serve(handler) as url, running(root, endpoints={"mo": url}) as rig:
        async with slow_files.watched():
            await rig.adapters["mo"].send(soap_request("mo"))
            signed = await rig.adapters["hk"].send(soap_request("hk"))
    assert signed.status == 200 and b"mo-pass-5e1d" in got[0]
    assert {read[0] for read in slow_files.reads} == {"mo-password", "ours.key", "ours.pem"}
    assert all(not loop and ran for _, loop, ran in slow_files.reads), slow_files.reads


async def test_a_secret_too_short_to_be_a_credential_is_never_sent(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bearer token of three characters (too short to be scrubbed from a reply that quotes it)
    holds the attempt, naming the reference and not the value; nothing reaches the partner; with
    a real token the next attempt goes out. Before, it was sent."""
    monkeypatch.delenv("TB_SHORT_BEARER", raising=False)
    seen: list[dict[str, str]] = []
    async with rest_partner(seen) as url:
        root = with_auth(make_config, 'bearer: "{env:TB_SHORT_BEARER}"')
        adapter = RestAdapter(hk(root, url))  # (check would refuse it: test_secret_files)
        monkeypatch.setenv("TB_SHORT_BEARER", "a1b")
        await adapter.start()
        try:
            with pytest.raises(TransientError) as held:
                await adapter.send(request())
            monkeypatch.setenv("TB_SHORT_BEARER", TOKEN)
            await adapter.send(request(2))
        finally:
            await adapter.close()
    assert "{env:TB_SHORT_BEARER}: shorter than 4 characters" in str(held.value)
    assert "a1b" not in str(held.value)
    assert [headers["Authorization"] for headers in seen] == [f"Bearer {TOKEN}"]


async def test_a_bearer_token_on_a_hung_file_system_holds_the_attempt(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bearer token file whose read hangs holds the attempt (NotSent); nothing is sent."""
    release = threading.Event()
    real = SecretRef.read_bytes

    def hung(ref: SecretRef) -> bytes:
        if ref.name.endswith("token") and not release.is_set() and not on_loop():
            release.wait(timeout=30)
        return real(ref)

    seen: list[dict[str, str]] = []
    async with rest_partner(seen) as url:
        root = with_auth(make_config, 'bearer: "{file:secrets/token}"')
        secret_file(root, "token", TOKEN)
        adapter = RestAdapter(hk(root, url))
        monkeypatch.setattr(SecretRef, "read_bytes", hung)
        monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
        await adapter.start()
        held = []
        try:
            for n in (1, 2):
                with pytest.raises(NotSent) as exc:
                    await asyncio.wait_for(adapter.send(request(n)), 3)
                held.append(str(exc.value))
        finally:
            release.set()
            await adapter.close()
    assert "{file:secrets/token}: no answer from the file system" in held[0]
    assert "{file:secrets/token}: a read in its folder has not returned" in held[1]
    assert seen == []


async def test_a_soap_secret_file_is_read_in_its_own_folders_threads(
    soap_root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the shared threads hung (signing with a key file on a stuck mount), a SOAP partner's
    WS-Security password file is still read, in its own folder's threads, and sent."""
    monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
    root = soap_root(
        mo_extra='      ws_security: {username: u, password: "{file:secrets/mo-password}"}'
    )
    secret_file(root, "mo-password", "mo-pass-5e1d")
    got: list[bytes] = []
    handler = mo_keeping(got)

    release = threading.Event()
    stuck = [asyncio.ensure_future(secrets.off_loop(lambda: release.wait(30))) for _ in range(2)]
    try:
        await asyncio.sleep(0.4)  # past the timeout: the shared threads count as hung
        async with serve(handler) as url, running(root, endpoints={"mo": url}) as rig:
            reply = await asyncio.wait_for(rig.adapters["mo"].send(soap_request("mo")), 3)
    finally:
        release.set()
        await asyncio.gather(*stuck, return_exceptions=True)
    assert reply.status == 200 and b"mo-pass-5e1d" in got[0]


async def test_a_signing_key_on_a_hung_file_system_holds_the_exchange(
    soap_root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WS-Security signing key file whose read hangs holds the exchange (NotSent naming the
    key's reference, twice), and a key file in another folder still signs."""
    monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
    ours = trustme.CA().issue_cert("tongban.example")
    signing = "    auth:\n      ws_signature: {cert: certs/ours.pem, key: '{file:%s/ours.key}'}"
    root = soap_root(hk_extra=signing % "stuck", mo_extra=signing % "keys")
    for folder in ("certs", "stuck", "keys"):
        (root / folder).mkdir()
    ours.cert_chain_pems[0].write_to_path(str(root / "certs" / "ours.pem"))
    write_key(root / "stuck" / "ours.key", ours.private_key_pem)
    write_key(root / "keys" / "ours.key", ours.private_key_pem)
    release = threading.Event()
    real = SecretRef.read_bytes

    def hung(ref: SecretRef) -> bytes:
        if ref.name.startswith("stuck/") and not on_loop():
            release.wait(timeout=30)
        return real(ref)

    monkeypatch.setattr(SecretRef, "read_bytes", hung)
    got: list[bytes] = []
    handler = mo_keeping(got)

    held = []
    try:
        async with serve(handler) as url, running(root, endpoints={"mo": url}) as rig:
            for n in (1, 2):
                with pytest.raises(NotSent) as exc:
                    await asyncio.wait_for(
                        rig.adapters["hk"].send(soap_request("hk", f"key-{n}")), 3
                    )
                held.append(str(exc.value))
            reply = await asyncio.wait_for(rig.adapters["mo"].send(soap_request("mo")), 3)
    finally:
        release.set()
    assert "{file:stuck/ours.key}: no answer from the file system" in held[0]
    assert "{file:stuck/ours.key}: a read in its folder has not returned" in held[1]
    assert reply.status == 200 and len(got) == 1 and b"Signature" in got[0]


@pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning")  # spyne, Macao's stack
async def test_a_notice_signed_with_a_key_on_a_hung_file_system_is_held(
    mo_config: Path, spyne_mo, simulators, broker_at, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SOAP notice whose signing key file hangs is held, naming the key; Macao hears nothing."""
    monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
    ours = trustme.CA().issue_cert("tongban.example")
    for folder in ("certs", "keys"):
        (mo_config / folder).mkdir()
    ours.cert_chain_pems[0].write_to_path(str(mo_config / "certs" / "ours.pem"))
    write_key(mo_config / "keys" / "ours.key", ours.private_key_pem)
    yaml = mo_config / "partners.yaml"
    signing = "    auth:\n      ws_signature: {cert: certs/ours.pem, key: '{file:keys/ours.key}'}\n"
    text = yaml.read_text(encoding="utf-8")
    yaml.write_text(text.replace("    services:\n", signing + "    services:\n", 1), "utf-8")
    armed, release = threading.Event(), threading.Event()  # armed once the broker has started
    real = SecretRef.read_bytes

    def hung(ref: SecretRef) -> bytes:
        if ref.name.startswith("keys/") and armed.is_set() and not on_loop():
            release.wait(timeout=30)
        return real(ref)

    monkeypatch.setattr(SecretRef, "read_bytes", hung)
    _, log = spyne_mo
    sims = {"local": (await simulators(mo_config))["local"]}

    def held(ex: Any) -> bool:
        attempts = [e for e in ex.events if e.kind == "notice_attempt"] if ex else []
        return any("{file:keys/ours.key}" in str(e.data.get("error")) for e in attempts)

    try:
        async with broker_at(mo_config, sims) as (broker, url):
            armed.set()
            xid = await file_one(url, "SAFP-HQ-2026-0011", "SAFP-HQ-2026-0011")
            view = await wait_for(lambda: broker.get(xid), held, what="a held notice")
    finally:
        release.set()
    attempt = next(e for e in view.events if e.kind == "notice_attempt")
    assert attempt.data["error"]["kind"] == "transient_error"
    assert "no answer from the file system" in attempt.data["error"]["message"]
    assert log == []
