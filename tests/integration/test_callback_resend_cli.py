"""``tongban callback resend`` as support staff run it: a subprocess on the journal file, then the
running broker sending the source's callback again, signed, under the same key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.cli.audit import os_user
from federation.domain.models import Event
from replay.factory import open_journal
from tests.integration.test_callback_resend import (
    Receiver,
    ended,
    listening,
    new_secret,
    signed_source,
    with_event,
)
from tests.subprocess_cli import tongban


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The portal's callback receiver on loopback, knowing one fresh secret."""
    async with listening(Receiver(secrets=[new_secret()])) as r:
        yield r


async def abandoned_and_pending(path: Path) -> tuple[str, str]:
    """In the SQLite journal at ``path``: one delivered exchange whose callback was abandoned
    (as the notifier leaves it) and one whose callback is still due; their ids."""
    journal = open_journal(path)
    await journal.open()
    try:
        gone = await ended(journal, "cli-abandoned")
        pending = await ended(journal, "cli-pending")
        now = time.time() + 1
        await journal.claim_notifications(owner="n1", now=now, lease_until=now + 30, limit=1)
        event = Event(
            exchange_id=gone,
            kind="callback_abandoned",
            at=now,
            data={"state": "delivered", "attempts": 12, "error": "callback answered HTTP 503"},
        )
        await journal.finish_notification(gone, [event], owner="n1", done=True, next_at=None)
    finally:
        await journal.close()
    return gone, pending


async def test_support_staff_resend_an_abandoned_callback(
    make_config: Any, broker_at: Any, receiver: Receiver, tmp_path: Path, monkeypatch: Any
) -> None:
    """The portal was down for a day: `tongban callback resend` re-arms its callback with a
    reason (exit 0, who and why journalled); refusals exit 1 with why (2 without a reason or
    with a config that does not load); the broker then sends it, signed, under the same key."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    root = str(catalogue.config.root)
    journal = tmp_path / "support.sqlite"
    gone, pending = await abandoned_and_pending(journal)
    where = ("--config", root, "--journal", str(journal))
    no_reason = tongban("callback", "resend", gone, "--reason", " ", *where)
    unknown = tongban("callback", "resend", "01JD0000000000000000000000", "--reason", "x", *where)
    busy = tongban("callback", "resend", pending, "--reason", "x", *where)
    busy_zh = tongban("--lang", "zh-Hant", "callback", "resend", pending, "--reason", "x", *where)
    no_config = tongban(
        "callback", "resend", gone, "--reason", "x", "--config", str(tmp_path / "nowhere"),
        "--journal", str(journal),
    )  # fmt: skip
    done = tongban("callback", "resend", gone, "--reason", "portal back after outage", *where)
    codes = [r.returncode for r in (no_reason, unknown, busy, busy_zh, no_config, done)]
    assert codes == [2, 1, 1, 1, 2, 0], done.stderr
    assert "Error: no exchange 01JD0000000000000000000000" in unknown.stderr
    assert f"the callback {pending}:delivered is still pending" in busy.stderr
    assert f"回呼 {pending}:delivered 仍在等待發送" in busy_zh.stderr
    assert f"callback {gone}:delivered queued again" in done.stdout
    stored = open_journal(journal)
    await stored.open()
    try:
        armed = await stored.get(gone)
    finally:
        await stored.close()
    assert armed is not None and armed.notify_state == "delivered"
    [replayed] = [e for e in armed.events if e.kind == "callback_replayed"]
    assert (replayed.data["by"], replayed.data["reason"]) == (os_user(), "portal back after outage")
    async with broker_at(catalogue.config.root, journal=journal) as (broker, _url):
        await with_event(broker.journal, gone, "callback_delivered")
    sent = [(h, ok) for h, _, ok in receiver.got if h["idempotency-key"] == f"{gone}:delivered"]
    assert len(sent) == 1 and sent[0][1] and sent[0][0]["webhook-id"] == f"{gone}:delivered"
