"""Redirects are never followed: a 3xx is no yes, and nothing goes to the host it points at.

Every outbound call meets a redirector on 127.0.0.1 that answers 301, 302, 303, 307 or 308 (the
code ``RD3xx`` in the request's path or body picks which) with a Location on a sink at 127.0.0.2,
which answers whatever reaches it as a yes would. Following the redirect would hand the
application to the sink (or, after a 301/302/303, a bodiless GET whose 200 reads as delivered);
instead the sink hears nothing and the journal says which status pointed where.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from adapters.registry import protocols
from adapters.soap import SoapAdapter
from federation.api.net import start_site
from federation.config import load_config
from federation.domain.errors import TransientError, UnknownOutcomeError
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from tests.conftest import hk_submission
from tests.integration.test_delivery import DONE, SOAP_YAML, renewal, settle
from tests.integration.test_guarantees import with_breaker
from tests.integration.test_notices import file_one, notice_config, notice_events
from tests.integration.test_partner_auth import CLIENT_SECRET, OAUTH, hk, request, send, with_auth
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent.parent
STATUSES = (301, 302, 303, 307, 308)
QUERY_SECRET = "sig=q5-7fd2c1"  # a query a Location may carry: never written down
PICK = re.compile(rb"RD(3\d\d)")


@dataclass
class Sink:
    """The host a redirect points at: records whatever reaches it and says yes to it."""

    calls: list[tuple[str, str, bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.method, request.path, await request.read()))
        return web.json_response(
            {
                "ref_no": "SINK-0001",
                "status": "RECEIVED",
                "result_code": "0000",
                "access_token": "sink-token",
                "token_type": "Bearer",
                "expires_in": 3600,
            }
        )


@dataclass
class Redirector:
    """Answers every request with a redirect to the sink: ``RD3xx`` in the path or body picks
    the status (307 otherwise)."""

    sink: Sink
    seen: list[int] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        found = PICK.search(request.path.encode() + b" " + body)
        status = int(found.group(1)) if found else 307
        self.seen.append(status)
        location = f"{self.sink.url}/landing{request.path}?{QUERY_SECRET}"
        return web.Response(status=status, headers={"Location": location}, text="moved")


@contextlib.asynccontextmanager
async def redirecting() -> AsyncIterator[Redirector]:
    """A redirector on 127.0.0.1 pointing at a sink on 127.0.0.2."""
    sink = Sink()
    sink_app = web.Application()
    sink_app.router.add_route("*", "/{tail:.*}", sink.handle)
    sink_runner, sink.url = await start_site(sink_app, host="127.0.0.2")
    redirector = Redirector(sink)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirector.handle)
    runner, redirector.url = await start_site(app)
    try:
        yield redirector
    finally:
        await runner.cleanup()
        await sink_runner.cleanup()


def assert_refused_redirect(error: Any, status: int, redirector: Redirector, path: str) -> None:
    """The error names the status and where it pointed, the Location's query masked."""
    assert error is not None
    text = error["message"] if isinstance(error, dict) else str(error)
    assert f"HTTP {status} redirecting to {redirector.sink.url}/landing{path}?<redacted>" in text
    assert QUERY_SECRET not in repr(error)


async def test_a_redirected_delivery_is_not_delivered_and_says_where_it_pointed(
    make_config, broker_at, journal_of: Any
) -> None:
    """Each 3xx on a REST delivery: no request reaches the other host, each attempt is an
    unknown outcome naming the status and Location, and the exchange ends failed (replayable
    by support staff once the endpoint is corrected), never delivered."""
    root = make_config(max_attempts=2)
    with_breaker(root, "    breaker: {failures: 50, cool_down: 1s}\n")  # five exchanges, ten 3xx
    async with redirecting() as rd:
        partner = SimpleNamespace(url=f"{rd.url}/tongban")
        async with broker_at(root, {"hk": partner}, journal_obj=journal_of) as (broker, _):
            ids = {}
            for status in STATUSES:
                application = {
                    **hk_submission().application,
                    "vehicle": {"registration_mark": f"RD{status}"},
                }
                ex, _ = await broker.submit(hk_submission(f"rd-{status}", application=application))
                ids[status] = ex.id
            done = {s: await settle(broker, xid, DONE) for s, xid in ids.items()}
    assert rd.sink.calls == []
    assert sorted(set(rd.seen)) == list(STATUSES)
    for status, ex in done.items():
        assert ex.state is State.FAILED, (status, ex.state)
        assert ex.last_error is not None and ex.last_error["status"] == status
        assert_refused_redirect(ex.last_error, status, rd, "/tongban/vehicle-licences/renewals")
        history = ex.attempt_history()
        assert [a.outcome.value for a in history if a.outcome] == ["unknown_outcome"] * 2
        response = history[0].response or {}
        assert response["status"] == status
        assert response["location"].endswith("/vehicle-licences/renewals?<redacted>")


@contextlib.asynccontextmanager
async def soap_adapter(tmp_path: Path, endpoint: str) -> AsyncIterator[SoapAdapter]:
    """A started SOAP adapter for TD (SOAP 1.1) sending to ``endpoint``."""
    (tmp_path / "hk.yaml").write_text("mapping: 1\n", encoding="utf-8")
    shutil.copy(REPO / "partners" / "wsdl" / "hk-td-vehicle-licensing.wsdl", tmp_path / "hk.wsdl")
    reply = textwrap.indent("success: {status: [200]}\n", " " * 6)
    (tmp_path / "partners.yaml").write_text(SOAP_YAML.format(reply=reply), encoding="utf-8")
    config = load_config(tmp_path, protocols())
    adapter = SoapAdapter(config.with_endpoints({"hk": endpoint}).partners["hk"])
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest.mark.parametrize("status", STATUSES)
async def test_a_redirected_soap_call_is_an_unknown_outcome(tmp_path: Path, status: int) -> None:
    """A SOAP partner's 3xx is not followed, whatever its reply rules say of a 200: an unknown
    outcome (retried with the same key) that names the status and the masked Location."""
    async with redirecting() as rd, soap_adapter(tmp_path, f"{rd.url}/RD{status}/soap") as adapter:
        with pytest.raises(UnknownOutcomeError) as info:
            await adapter.send(renewal(f"soap-{status}"))
    assert rd.sink.calls == [] and rd.seen == [status]
    assert info.value.status == status
    assert_refused_redirect(info.value, status, rd, f"/RD{status}/soap")
    assert (info.value.transcript.response or {})["location"].endswith("?<redacted>")


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirected_token_endpoint_holds_the_exchange(
    make_config, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """The OAuth2 token endpoint answering a redirect: the client credentials go nowhere else,
    nothing is sent to the partner, and the error is transient (the exchange waits), naming
    the status and where it pointed."""
    monkeypatch.setenv("TB_OAUTH_SECRET", CLIENT_SECRET)
    async with redirecting() as rd:
        root = with_auth(make_config, OAUTH.format(url=f"{rd.url}/RD{status}"))
        (error,) = await send(hk(root, f"{rd.url}/RD{status}/api"), request())
    assert rd.sink.calls == [] and rd.seen == [status]
    assert type(error) is TransientError and error.status == status
    assert_refused_redirect(error, status, rd, f"/RD{status}/oauth/token")


def with_callback(root: Path, url: str) -> Path:
    """The test catalogue with gd-portal's callback at ``url``."""
    partners = root / "partners.yaml"
    name = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
    text = partners.read_text(encoding="utf-8").replace(name, f"{name}    callback: {url}\n")
    partners.write_text(text, encoding="utf-8")
    return root


async def events_of(broker: Broker, xid: str, kind: str, count: int = 1) -> Exchange:
    """The exchange once it has ``count`` events of ``kind``."""
    found: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and [e.kind for e in ex.events].count(kind) >= count,
        what=f"{count} {kind} event(s) of {xid}",
    )
    return found


async def test_a_redirected_callback_is_a_failed_try_not_a_told_source(
    make_config, simulators, broker_at, journal_of: Any
) -> None:
    """A source's callback answering 303 or 307: its body goes nowhere else, the try is a
    callback_failed naming the status and Location, retried later; never callback_delivered."""
    async with redirecting() as rd:
        root = with_callback(make_config(), f"{rd.url}/outcomes")
        sims = await simulators(root)
        async with broker_at(root, sims, journal_obj=journal_of) as (broker, _):
            xids = []
            for key in ("RD303", "RD307"):
                ex, _ = await broker.submit(hk_submission(key))
                xids.append(ex.id)
            seen = [await events_of(broker, xid, "callback_failed") for xid in xids]
    assert rd.sink.calls == []
    for ex, status in zip(seen, (303, 307), strict=True):
        assert ex.state is State.DELIVERED
        kinds = [e.kind for e in ex.events]
        assert "callback_delivered" not in kinds and "callback_abandoned" not in kinds
        failed = next(e for e in ex.events if e.kind == "callback_failed")
        assert failed.data["status"] == status
        assert_refused_redirect(failed.data["error"], status, rd, "/outcomes")
        assert ex.notify_state is not None  # still to be told


async def test_a_redirected_notice_is_retried_then_abandoned_not_delivered(
    make_config, simulators, broker_at, journal_of: Any
) -> None:
    """HK's notice API answering 308: the notice reaches no other host; each try is an unknown
    outcome naming the status and Location, and after the retry policy it is abandoned."""
    root = notice_config(make_config, max_attempts=2)
    async with redirecting() as rd:
        notices = SimpleNamespace(url=f"{rd.url}/RD308/notices")
        sims = {**await simulators(root), "hk:callback": notices}
        async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
            xid = await file_one(url, "HKDPO-2026-0308")
            ex = await notice_events(broker, xid, "notice_abandoned")
    assert rd.sink.calls == [] and set(rd.seen) == {308}
    kinds = [e.kind for e in ex.events]
    assert "notice_delivered" not in kinds
    tries = [e for e in ex.events if e.kind == "notice_attempt"]
    assert [t.data["outcome"] for t in tries] == ["unknown_outcome"] * 2
    assert_refused_redirect(tries[0].data["error"], 308, rd, "/RD308/notices/residence-permits")


@pytest.mark.parametrize("status", [302, 303])
async def test_a_redirected_local_system_gets_no_bodiless_get_and_hk_no_notice(
    make_config, simulators, broker_at, journal_of: Any, status: int
) -> None:
    """The local system's endpoint answering 302/303: no GET without the application reaches
    another host and reads as delivered; the exchange ends failed, and HK is never told it was
    received."""
    root = notice_config(make_config, max_attempts=2)
    async with redirecting() as rd:
        sims = await simulators(root)
        notices = SimpleNamespace(url=f"{rd.url}/notices-must-not-be-sent")
        local = SimpleNamespace(url=f"{rd.url}/RD{status}/inbound")
        endpoints = {**sims, "local": local, "hk:callback": notices}
        async with broker_at(root, endpoints, journal_obj=journal_of) as (broker, url):
            xid = await file_one(url, f"HKDPO-2026-{status}")
            ex = await settle(broker, xid, DONE)
    assert rd.sink.calls == []
    assert set(rd.seen) == {status}  # nothing reached the notice path
    assert ex.state is State.FAILED
    assert ex.last_error is not None and ex.last_error["status"] == status
    assert_refused_redirect(
        ex.last_error, status, rd, f"/RD{status}/inbound/applications/residence-permits"
    )
    kinds = {e.kind for e in ex.events}
    assert not kinds & {"notice_attempt", "notice_delivered"}  # no RECEIVED went to HK
