"""A resent notice overtaken by a replay's end: support staff resend the latest notice of an
application a partner filed (``tongban notice resend``), and before the notifier sends it the
application is replayed to the local system and ends anew. The resent notice goes out as the
notice it resends (the local system's receipt and time as they were, under its key), and the
new end as a notice of its own, under its own key. Through the broker's worker and notifier, the
replay service and the partner's notice API on loopback; on SQLite, PostgreSQL and the
in-memory journal alike. Also: a resend asked for long after the end is retried by the
partner's policy from the time it was asked for, not given up at its first failure.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.base import Reply
from federation.cli.journal import masked_exchange
from federation.config import LOCAL as LOCAL_TARGET
from federation.domain.errors import AdapterError
from federation.domain.models import Exchange, State
from federation.domain.texts import said
from federation.runtime.callbacks import rearm
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.notices import resend_notice
from federation.runtime.notifier import Notifier
from federation.runtime.worker import Worker
from federation.testing import MockAdapter, permanent, reply, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.notice_helpers import hk_filing, notice_answer, notice_endpoint
from tests.integration.test_callback_resend_replay import replayed
from tests.integration.test_inbound import APPLICATION, MAPPING
from tests.integration.test_notices import notice_config
from tests.waiting import wait_for

DAY = 86400.0
REPORT = """\
report:
  reference_no: {from: application.reference, required: true}
  notice_type:
    switch: step
    cases: {submitted: RECEIVED, accepted: ACCEPTED, rejected: REFUSED, failed: FAILED}
    required: true
  gd_ref: original.receipt.receipt_number
  notice_time: {from: at, required: true}
"""


@dataclass
class NoticeApi:
    """HK's notice API on loopback: each request's key and body, answering 503 to the first
    ``failures`` of them."""

    failures: int = 0
    got: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = 503 if len(self.got) < self.failures else 200
        self.got.append((request.headers.get("Idempotency-Key", ""), body, status))
        return notice_answer(status)


@pytest.fixture
async def notice_api() -> AsyncIterator[tuple[NoticeApi, str]]:
    """The endpoint on loopback and its base URL (hk's inbound.callback)."""
    api = NoticeApi()
    async with notice_endpoint(api.handle) as url:
        yield api, url


def catalogue_at(make_config: Any, url: str) -> Catalogue:
    """hk files GD-GA-RP-HK and hears back at ``url`` in its own JSON, the local system's
    reference among what it hears."""
    root: Path = notice_config(make_config)
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    partners.write_text(
        text.replace("https://gateway.example.gov.hk/tongban/notices", url), encoding="utf-8"
    )
    mapping = MAPPING.replace("from: resultCode", "from: ref_no")  # the local system's reference
    (root / "mappings" / "inbound-rp.yaml").write_text(mapping + REPORT, encoding="utf-8")
    return load_catalogue(root)


async def filed(journal: Journal, key: str) -> str:
    """An application hk filed, its lease run out: any worker takes it. Its id."""
    at = time.time()
    new = hk_filing(key, APPLICATION, at)
    ex, _ = await journal.create(new, owner="intake", lease_until=at - 1)
    return ex.id


async def worked(
    journal: Journal, catalogue: Catalogue, local: MockAdapter, xid: str, state: State
) -> None:
    """Run the worker (the local system answering as ``local``) until ``xid`` is ``state``."""
    worker = Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={LOCAL_TARGET: local},
        owner="w1",
        lease=5.0,
        poll_interval=0.05,
    )
    worker.start()
    try:
        await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.state is state,
            what=f"{xid} {state.value}",
        )
    finally:
        await worker.stop()


async def quiet(
    journal: Journal, catalogue: Catalogue, xid: str, clock: Callable[[], float] = time.time
) -> Exchange:
    """Run the notifier (its clock ``clock``) until no notice of ``xid`` is pending."""
    loop = Notifier(
        journal=journal, catalogue=lambda: catalogue, owner="n1", poll_interval=0.05, clock=clock
    )
    loop.start()
    try:
        done: Exchange | None = await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.notify_state is None,
            what=f"no notice of {xid} pending",
        )
    finally:
        await loop.stop()
    assert done is not None
    return done


# (the local system's answers, the replay's end, the key of the replay's end's notice)
CASES: dict[str, tuple[tuple[Reply | AdapterError, ...], State, str]] = {
    "delivered, then delivered anew": (
        (reply({"status": "ok", "ref_no": "GD-1"}), reply({"status": "ok", "ref_no": "GD-2"})),
        State.DELIVERED,
        "delivered:2",
    ),
    "delivered, then refused": (
        (reply({"status": "ok", "ref_no": "GD-1"}), permanent(422)),
        State.REJECTED,
        "rejected",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_resent_notice_overtaken_by_a_replay_is_the_notice_it_resends(
    make_config: Any, journal: Journal, notice_api: tuple[NoticeApi, str], case: str
) -> None:
    """The resend is pending, the application is replayed and ends anew before the notifier
    runs: the resent notice is the first one again, body and key alike (the local system's
    reference as it was), and the replay's end goes out after it under its own key."""
    api, url = notice_api
    answers, then, new_key = CASES[case]
    local = MockAdapter(sequence(*answers))
    catalogue = catalogue_at(make_config, url)
    xid = await filed(journal, f"HKDPO-overtaken-{case}")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    await quiet(journal, catalogue, xid)
    mark = await resend_notice(journal, xid, reason="hk lost it", by="s1", clock=time.time)
    assert mark == "delivered"
    await replayed(journal, xid, Mode.RESEND)
    await worked(journal, catalogue, local, xid, then)
    done = await quiet(journal, catalogue, xid)
    keys = [k for k, _, _ in api.got]
    assert keys == [f"{xid}:delivered"] * 2 + [f"{xid}:{new_key}"]
    (_, told, _), (_, resent, _), (_, outcome, _) = api.got
    assert resent == told  # the same notice: a partner that applies it changes nothing
    assert told["gd_ref"] == "GD-1"
    assert outcome["notice_time"] != told["notice_time"]
    assert done.state is then and done.notify_state is None


async def test_a_resend_keeps_the_receipt_where_readers_see_it_masked(
    make_config: Any, journal: Journal, notice_api: tuple[NoticeApi, str]
) -> None:
    """The notice a resend keeps holds the local system's receipt, in the event's data (sealed
    as every event's is); a reader who may not reveal sees it masked."""
    _, url = notice_api
    local = MockAdapter(sequence(reply({"status": "ok", "ref_no": "GD-陳大文-1"})))
    catalogue = catalogue_at(make_config, url)
    xid = await filed(journal, "HKDPO-masked")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    before = await quiet(journal, catalogue, xid)
    await resend_notice(journal, xid, reason="hk lost it", by="s1", clock=time.time)
    ex = await journal.get(xid)
    assert ex is not None
    [resend] = [e for e in ex.events if e.kind == "notice_replayed"]
    assert resend.data["resends"] == {
        "at": before.updated_at,
        "state": "delivered",
        "receipt": before.receipt,
    }
    shown = masked_exchange(ex)
    assert "陳大文" not in repr([e.data for e in shown.events])


async def test_a_resend_journalled_by_the_earlier_release_is_read_as_before(
    make_config: Any, journal: Journal, notice_api: tuple[NoticeApi, str]
) -> None:
    """A ``notice_replayed`` journalled before resends kept their notice (the mark, who and why
    only) and overtaken by a replay is still sent first under its key, as that release sent it
    (the application as it stands), then the replay's end under its own."""
    api, url = notice_api
    local = MockAdapter(
        sequence(
            reply({"status": "ok", "ref_no": "GD-1"}), reply({"status": "ok", "ref_no": "GD-2"})
        )
    )
    catalogue = catalogue_at(make_config, url)
    xid = await filed(journal, "HKDPO-legacy")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    before = await quiet(journal, catalogue, xid)
    await rearm(
        journal, before, "notice_replayed", "delivered", said("moved"), reason="r", by="s", at=1.0
    )
    await replayed(journal, xid, Mode.RESEND)
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    done = await quiet(journal, catalogue, xid)
    assert [k for k, _, _ in api.got] == [f"{xid}:delivered"] * 2 + [f"{xid}:delivered:2"]
    [legacy] = [e for e in done.events if e.kind == "notice_replayed"]
    assert legacy.data == {"state": "delivered", "reason": "r", "by": "s"}
    assert api.got[1][1]["gd_ref"] == "GD-2"  # as that release sent it


async def test_a_late_resend_is_retried_from_when_it_was_asked_for(
    make_config: Any, journal: Journal, notice_api: tuple[NoticeApi, str]
) -> None:
    """Two days after the notice went out (hk's policy gives a notice up 24 h after it was
    due), support staff resend it and hk's API answers 503 once: the resend is tried again
    and delivered, not abandoned at its first failure."""
    api, url = notice_api
    local = MockAdapter(sequence(reply({"status": "ok", "ref_no": "GD-1"})))
    catalogue = catalogue_at(make_config, url)
    assert catalogue.config.partners["hk"].retry.max_elapsed == DAY
    xid = await filed(journal, "HKDPO-late")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    await quiet(journal, catalogue, xid)

    def later() -> float:
        return time.time() + 2 * DAY

    await resend_notice(journal, xid, reason="hk lost it", by="s1", clock=later)
    api.failures = len(api.got) + 1
    done = await quiet(journal, catalogue, xid, clock=later)
    assert [s for _, _, s in api.got] == [200, 503, 200]
    assert "notice_abandoned" not in [e.kind for e in done.events]
    assert done.events[-1].kind == "notice_delivered"
