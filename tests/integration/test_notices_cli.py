"""``tongban notice resend`` as support staff run it: a subprocess on the journal file, then the
broker sending the same notice again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import protocols
from federation.cli.audit import os_user
from federation.config import load_config
from federation.sim.rest import PartnerSimulator
from replay.factory import open_journal
from tests.integration.test_notices import (
    file_one,
    notice_config,
    notice_events,
    notices_at,
)
from tests.subprocess_cli import tongban
from tests.waiting import wait_for


@pytest.fixture
async def notice_sim(make_config: Any) -> AsyncIterator[PartnerSimulator]:
    """hk's notice API: a REST partner simulator in Hong Kong's dialect."""
    partner = load_config(notice_config(make_config), protocols()).partners["hk"]
    sim = PartnerSimulator(partner, seed=11)
    await sim.start()
    yield sim
    await sim.stop()


async def test_support_staff_resend_a_refused_notice(
    make_config: Any, simulators: Any, broker_at: Any, notice_sim: PartnerSimulator, tmp_path: Path
) -> None:
    """HK refused a notice (E2001) until it fixed its side: `tongban notice resend` re-arms it with
    a reason (exit 0, journalled who and why), and the broker sends the same notice, same key."""
    root = notice_config(make_config)
    journal = tmp_path / "support.sqlite"
    sims = {**await simulators(root), "hk:callback": notices_at(notice_sim)}
    notice_sim.behaviour.notice_refusal = "E2001"
    async with broker_at(root, sims, journal=journal) as (broker, url):
        xid = await file_one(url, "HKDPO-2026-0201")
        await notice_events(broker, xid, "notice_rejected")
    no_reason = tongban("notice", "resend", xid, "--reason", " ", "--journal", str(journal))
    unknown = tongban(
        "notice", "resend", "01JD0000000000000000000000", "--reason", "x", "--journal", str(journal)
    )
    done = tongban(
        "notice", "resend", xid, "--reason", "DPO fixed E2001",
        "--journal", str(journal),
    )  # fmt: skip
    assert (no_reason.returncode, unknown.returncode, done.returncode) == (2, 1, 0), done.stderr
    assert "no application a partner filed" in unknown.stderr
    unknown_zh = tongban(
        "--lang", "zh-Hant", "notice", "resend", "01JD0000000000000000000000", "--reason", "x",
        "--journal", str(journal),
    )  # fmt: skip
    assert unknown_zh.returncode == 1
    assert "沒有協作方提交的編號為 01JD0000000000000000000000 的申請" in unknown_zh.stderr
    assert f"notice {xid}:delivered queued again" in done.stdout
    stored = open_journal(journal)
    await stored.open()
    try:
        armed = await stored.get(xid)
    finally:
        await stored.close()
    assert armed is not None and armed.notify_state == "delivered"
    [replayed] = [e for e in armed.events if e.kind == "notice_replayed"]
    assert (replayed.data["by"], replayed.data["reason"]) == (os_user(), "DPO fixed E2001")
    notice_sim.behaviour.notice_refusal = None
    async with broker_at(root, sims, journal=journal) as (broker, _url):
        await wait_for(
            lambda: broker.get(xid),
            lambda ex: ex is not None and any(e.kind == "notice_delivered" for e in ex.events),
            what="the resent notice to be delivered",
        )
    assert notice_sim.seen[f"{xid}:delivered"].count == 2  # the same key, sent again
