"""Resending a source's JSON callback: one the notifier abandoned while the source's system was
down is re-armed in the journal (who and why), and the notifier sends it again, signed, under the
same idempotency key; on SQLite, PostgreSQL and the in-memory journal alike.

The source's receiver verifies with the ``standardwebhooks`` package (code we did not write).
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from federation.api.i18n import translations
from federation.api.net import start_site
from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, Exchange, NewExchange, State, StateChange
from federation.domain.retry import RetryStrategy, stop_after_attempt, wait_fixed
from federation.runtime.callbacks import NotResent, resend_callback
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.lifecycle import record_lifecycle
from federation.runtime.notifier import Notifier
from replay.journal import Journal
from tests.integration.notice_helpers import Steps
from tests.waiting import wait_for

NAME = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
QUICK = RetryStrategy(stop=stop_after_attempt(2), wait=wait_fixed(0.05))  # abandoned at once


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Receiver:
    """A source's callback endpoint: down (503) while ``down``; else it accepts only what one of
    its ``secrets`` verifies (401 otherwise)."""

    secrets: list[str]
    down: bool = False
    url: str = ""
    got: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)

    def verifies(self, headers: dict[str, str], body: bytes) -> list[bool]:
        """Whether each of its secrets verifies the request (the library's own check)."""
        results = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                results.append(True)
            except WebhookVerificationError:
                results.append(False)
        return results

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = not self.down and any(self.verifies(headers, body))
        self.got.append((headers, body, ok))
        return web.Response(status=503 if self.down else 204 if ok else 401)


@contextlib.asynccontextmanager
async def listening(r: Receiver) -> AsyncIterator[Receiver]:
    """``r`` on loopback (POST /outcomes) until the block ends."""
    app = web.Application()
    app.router.add_post("/outcomes", r.handle)
    runner, r.url = await start_site(app)
    try:
        yield r
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The source's receiver on loopback, knowing one fresh secret."""
    async with listening(Receiver(secrets=[new_secret()])) as r:
        yield r


def source_config(make_config: Any, lines: str) -> Catalogue:
    """The test catalogue with ``lines`` (YAML, indented for it) added to source gd-portal."""
    root: Path = make_config()
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8").replace(NAME, NAME + lines, 1)
    partners.write_text(text, encoding="utf-8")
    return load_catalogue(root)


def signed_source(make_config: Any, receiver: Receiver, monkeypatch: Any) -> Catalogue:
    """gd-portal with its callback at ``receiver``, signed with the receiver's secret."""
    monkeypatch.setenv("TB_RESEND_SECRET", receiver.secrets[0])
    lines = (
        f'    callback: {receiver.url}/outcomes\n    callback_secret: "{{env:TB_RESEND_SECRET}}"\n'
    )
    return source_config(make_config, lines)


async def ended(
    journal: Journal,
    key: str,
    state: State = State.DELIVERED,
    last_error: dict[str, Any] | None = None,
) -> str:
    """An exchange from gd-portal to hk that ended in ``state`` (with ``last_error``, if given),
    its callback due; its id."""
    at = time.time()
    new = NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"applicant": {"name": "陳大文"}},
        received_at=at,
    )
    ex, _ = await journal.create(new, owner="w1", lease_until=at + 30)
    for step in (State.QUEUED, State.DELIVERING):
        await journal.record(ex.id, [], StateChange(state=step, attempts=1), owner="w1")
    done = StateChange(state=state, notify=True, receipt={"ref": "HK-1"}, last_error=last_error)
    await journal.record(ex.id, [], done, owner="w1")
    return ex.id


def notifier(
    journal: Journal,
    catalogue: Catalogue,
    owner: str = "n1",
    clock: Callable[[], float] = time.time,
) -> Notifier:
    """The broker's callback loop on ``journal`` as instance ``owner``, giving a callback up after
    two tries."""
    return Notifier(
        journal=journal,
        catalogue=lambda: catalogue,
        owner=owner,
        poll_interval=0.05,
        timeout=5.0,
        retry=QUICK,
        clock=clock,
    )


async def until_quiet(journal: Journal, catalogue: Catalogue, xid: str) -> Exchange:
    """Run the notifier until no callback of ``xid`` is pending; the exchange then."""
    loop = notifier(journal, catalogue)
    loop.start()
    try:
        done: Exchange = await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.notify_state is None,
            what=f"no callback of {xid} pending",
        )
    finally:
        await loop.stop()
    return done


async def with_event(journal: Journal, xid: str, kind: str, count: int = 1) -> Exchange:
    """The exchange once it has ``count`` events of ``kind``."""
    found: Exchange = await wait_for(
        lambda: journal.get(xid),
        lambda ex: ex is not None and [e.kind for e in ex.events].count(kind) >= count,
        what=f"{count} {kind} event(s) of {xid}",
    )
    return found


async def notified(journal: Journal, catalogue: Catalogue, xid: str, kind: str) -> Exchange:
    """Run the notifier until ``xid`` has an event of ``kind``; the exchange then."""
    loop = notifier(journal, catalogue)
    loop.start()
    try:
        return await with_event(journal, xid, kind)
    finally:
        await loop.stop()


async def test_an_abandoned_callback_is_resent_signed_with_the_same_key(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """The source was down past every retry (callback_abandoned, naming its mark); support staff
    resend it: callback_replayed says who and why, the notifier sends it again with the same
    Idempotency-Key and webhook-id, signed so that the source's library verifies it."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = await ended(journal, "resend-1")
    receiver.down = True
    loop = notifier(journal, catalogue)
    loop.start()
    try:
        abandoned = await with_event(journal, xid, "callback_abandoned")
        receiver.down = False
        mark = await resend_callback(
            journal, catalogue.config, xid, reason="portal back up", by="support-1", clock=time.time
        )
        armed = await journal.get(xid)
        done = await with_event(journal, xid, "callback_delivered")
    finally:
        await loop.stop()
    [gave_up] = [e for e in abandoned.events if e.kind == "callback_abandoned"]
    assert gave_up.data["state"] == "delivered" and abandoned.notify_state is None
    assert mark == "delivered"
    assert armed is not None and armed.notify_state == "delivered" and armed.notify_attempts == 0
    [replayed] = [e for e in done.events if e.kind == "callback_replayed"]
    # the message it sends again is kept with it: the end as it was when the resend was asked
    told = {"at": abandoned.updated_at, "state": "delivered", "receipt": {"ref": "HK-1"}}
    assert replayed.data == {
        "state": "delivered",
        "reason": "portal back up",
        "by": "support-1",
        "resends": told,  # no error: the exchange had none
    }
    assert done.state is State.DELIVERED and done.notify_state is None
    keys = {h["idempotency-key"] for h, _, _ in receiver.got}
    assert keys == {f"{xid}:delivered"}  # every try, before and after the resend
    headers, _body, ok = receiver.got[-1]
    assert ok and headers["webhook-id"] == f"{xid}:delivered"
    assert [ok for _, _, ok in receiver.got] == [False, False, True]


async def test_a_delivered_callback_can_be_sent_again(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """A failed exchange whose callback was delivered (the source says it lost it): resent,
    it goes out a second time under the same key, the same message (its ``at`` the end's time,
    not the resend's)."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = await ended(journal, "resend-2", State.FAILED)
    loop = notifier(journal, catalogue)
    loop.start()
    try:
        await with_event(journal, xid, "callback_delivered")
        mark = await resend_callback(
            journal, catalogue.config, xid, reason="lost it", by="s", clock=time.time
        )
        await with_event(journal, xid, "callback_delivered", count=2)
    finally:
        await loop.stop()
    assert mark == "failed"
    assert [h["idempotency-key"] for h, _, _ in receiver.got] == [f"{xid}:failed"] * 2
    assert all(ok for _, _, ok in receiver.got)
    first, again = (orjson.loads(body) for _, body, _ in receiver.got)
    assert again == first  # the same message under the same key, its time included


async def refusal(journal: Journal, catalogue: Catalogue, xid: str, reason: str = "x") -> str:
    """Why resend_callback refuses ``xid`` (it must)."""
    with pytest.raises(NotResent) as caught:
        await resend_callback(
            journal, catalogue.config, xid, reason=reason, by="s", clock=time.time
        )
    return str(caught.value)


async def test_resend_refuses_what_it_cannot_resend(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """No reason, no such exchange, one that has not ended, one whose callback is still pending,
    one never told: each refused with why, and nothing is written."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    pending = await ended(journal, "pending")
    ex, _ = await journal.create(
        NewExchange(
            id=new_id(time.time()),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key="open",
            request_hash="sha256:open",
            application={},
            received_at=time.time(),
        ),
        owner="w1",
        lease_until=time.time() + 30,
    )
    untold = await ended(journal, "untold")
    claimed = await journal.claim_notifications(
        owner="n1", now=time.time() + 1, lease_until=time.time() + 30, limit=10
    )
    assert {c.id for c in claimed} == {pending, untold}
    await journal.finish_notification(untold, [], owner="n1", done=True, next_at=None)
    assert "needs a reason" in await refusal(journal, catalogue, pending, reason=" ")
    assert await refusal(journal, catalogue, "01JD0000000000000000000000") == (
        "no exchange 01JD0000000000000000000000"
    )
    assert "is received: it has not ended" in await refusal(journal, catalogue, ex.id)
    assert f"the callback {pending}:delivered is still pending" in await refusal(
        journal, catalogue, pending
    )
    assert "has had no callback yet" in await refusal(journal, catalogue, untold)
    unchanged = await journal.get(pending)
    assert unchanged is not None and "callback_replayed" not in [e.kind for e in unchanged.events]


async def test_a_source_without_callback_is_refused(make_config: Any, journal: Journal) -> None:
    """gd-portal declares no callback: there is nothing to resend to."""
    catalogue = source_config(make_config, "")
    xid = await ended(journal, "nocallback")
    assert "source gd-portal declares no callback" in await refusal(journal, catalogue, xid)


def step_after_read(journal: Journal, monkeypatch: Any, step: str, *, claim: bool) -> None:
    """The partner's lifecycle ``step`` journalled, as a status update does (its callback armed),
    right after the next read of the journal: between a resend's check and its write. With
    ``claim``, the notifier (n1) leases that callback at once."""
    read = journal.get

    async def get(exchange_id: str) -> Exchange | None:
        monkeypatch.setattr(journal, "get", read)  # one read only
        got = await read(exchange_id)
        assert got is not None
        event = Event(exchange_id=exchange_id, kind="lifecycle", at=time.time(), data={})
        change = StateChange(
            state=State.DELIVERED,
            expect=frozenset({State.DELIVERED}),
            notify=True,
            notify_as=f"lifecycle:{step}",
            lifecycle_state=step,
            expect_lifecycle=got.lifecycle_state,
        )
        await journal.record(exchange_id, [replace(event, data={"lifecycle": step})], change)
        if claim:
            now = time.time() + 1
            await journal.claim_notifications(owner="n1", now=now, lease_until=now + 30, limit=5)
        return got

    monkeypatch.setattr(journal, "get", get)


async def told(journal: Journal, xid: str, mark: str) -> None:
    """The notifier (n0) delivered ``xid``'s callback ``mark``: nothing is pending."""
    now = time.time() + 1
    claimed = await journal.claim_notifications(owner="n0", now=now, lease_until=now + 30, limit=5)
    assert [c.id for c in claimed] == [xid]
    event = Event(exchange_id=xid, kind="callback_delivered", at=now, data={"state": mark})
    await journal.finish_notification(xid, [event], owner="n0", done=True)


@pytest.mark.parametrize(
    ("before", "claim"), [(None, False), (None, True), ("accepted", False), ("accepted", True)]
)
async def test_a_step_that_comes_during_a_resend_keeps_its_callback(
    make_config: Any,
    receiver: Receiver,
    journal: Journal,
    monkeypatch: Any,
    before: str | None,
    claim: bool,
) -> None:
    """The partner reports `completed` between the resend's check and its write (its first
    step, or one after `accepted`; the notifier may have leased its callback already): the
    resend is refused, said in the reader's language, and writes nothing; the `completed`
    callback stays pending and the notifier's lease with it."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = await ended(journal, f"race-{before}-{claim}")
    await told(journal, xid, "delivered")
    if before is not None:
        step = StateChange(
            state=State.DELIVERED,
            notify=True,
            notify_as="lifecycle:accepted",
            lifecycle_state=before,
        )
        lifecycle = Event(
            exchange_id=xid, kind="lifecycle", at=time.time(), data={"lifecycle": before}
        )
        await journal.record(xid, [lifecycle], step)
        await told(journal, xid, "lifecycle:accepted")
    step_after_read(journal, monkeypatch, "completed", claim=claim)
    with pytest.raises(NotResent) as caught:
        await resend_callback(
            journal, catalogue.config, xid, reason="lost it", by="s", clock=time.time
        )
    hant = caught.value.text.render(translations("zh_Hant", "cli").gettext)
    assert f"exchange {xid} changed while its callback was being queued again" in str(caught.value)
    assert hant.startswith(f"交換 {xid} 在其回呼重新排隊時發生了變化")
    after = await journal.get(xid)
    assert after is not None and after.notify_state == "lifecycle:completed"
    assert after.notify_attempts == 0
    assert "callback_replayed" not in [e.kind for e in after.events]
    if claim:  # the notifier that leased the step's callback still holds it
        await journal.finish_notification(xid, [], owner="n1", done=True)


@pytest.mark.parametrize("up", [True, False])
async def test_a_step_read_before_a_resend_and_written_after_it_keeps_the_resend(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any, up: bool
) -> None:
    """A status update reads the exchange, a callback resend writes its mark, then the update's
    step is written over it: the resent callback still goes out under its own key, then the
    step's, each with its full retries (a source that stays down has each abandoned after two)."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = await ended(journal, f"reverse-{up}")
    await told(journal, xid, "delivered")
    read = await journal.get(xid)  # the status update's read, before the resend
    assert read is not None
    mark = await resend_callback(
        journal, catalogue.config, xid, reason="lost it", by="s", clock=time.time
    )
    update = {"status": "accepted"}
    assert await record_lifecycle(journal, catalogue, read, {"lifecycle": "accepted"}, update) == (
        "accepted",
        True,
    )
    receiver.down = not up
    done = await until_quiet(journal, catalogue, xid)
    assert mark == "delivered"
    kinds = [e.kind for e in done.events]
    after = done.events[kinds.index("callback_replayed") + 1 :]
    tries = [(e.kind, e.data["state"], e.data.get("attempts")) for e in after if "state" in e.data]
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    if up:
        assert keys == [f"{xid}:delivered", f"{xid}:lifecycle:accepted"]
        assert tries == [
            ("callback_delivered", "delivered", None),
            ("callback_delivered", "lifecycle:accepted", None),
        ]
    else:
        assert keys == [f"{xid}:delivered"] * 2 + [f"{xid}:lifecycle:accepted"] * 2
        assert tries == [
            ("callback_failed", "delivered", None),
            ("callback_abandoned", "delivered", 2),
            ("callback_failed", "lifecycle:accepted", None),
            ("callback_abandoned", "lifecycle:accepted", 2),
        ]
    _, body, _ = receiver.got[0]
    assert orjson.loads(body)["lifecycle"] is None  # the outcome, as the resend queued it


@dataclass
class Stepping(Steps, Receiver):
    """A receiver that, as it takes the next callback, first runs ``step`` (once)."""


async def test_a_step_that_comes_while_the_resent_callback_is_in_flight_follows_it(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The partner's step is journalled (taking the notifier's lease) while the resent callback
    is on its way: the resent callback's delivery is journalled all the same, and the step's
    callback follows it under its own key."""
    async with listening(Stepping(secrets=[new_secret()])) as receiver:
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await ended(journal, "in-flight")
        await told(journal, xid, "delivered")
        read = await journal.get(xid)  # the status update's read, before the resend
        assert read is not None
        await resend_callback(
            journal, catalogue.config, xid, reason="lost it", by="s", clock=time.time
        )
        accepted = {"lifecycle": "accepted"}
        receiver.step = lambda: record_lifecycle(journal, catalogue, read, accepted, accepted)
        done = await until_quiet(journal, catalogue, xid)
    kinds = [e.kind for e in done.events]
    after = done.events[kinds.index("callback_replayed") + 1 :]
    assert [(e.kind, e.data.get("state")) for e in after] == [
        ("lifecycle", None),
        ("callback_delivered", "delivered"),
        ("callback_delivered", "lifecycle:accepted"),
    ]
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    assert keys == [f"{xid}:delivered", f"{xid}:lifecycle:accepted"]
