"""A resent SOAP notice overtaken by a replay's end: Macao hears NotificarDecisao (an operation
of its own WSDL, served by spyne and checked in spyne's own log); support staff resend the
notice of the application's delivery, and before the notifier sends it the application is
replayed and the local system accepts it anew under another number. The resent call is the
first one again (the local system's number and the time as they were, the same key), the new
delivery a call of its own under its own key. Through the worker, the replay service and the
notifier, on SQLite, PostgreSQL and the in-memory journal alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from federation.config import LOCAL
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State
from federation.runtime.catalogue import load_catalogue
from federation.runtime.notices import resend_notice
from federation.testing import MockAdapter, reply, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_callback_resend_replay import replayed
from tests.integration.test_notice_resend_overtaken import quiet, worked
from tests.integration.test_notices_soap import mo_config, spyne_mo  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]


async def filed(journal: Journal, key: str) -> str:
    """A branch registration Macao filed, its lease run out: any worker takes it. Its id."""
    at = time.time()
    new = NewExchange(
        id=new_id(at),
        direction=Direction.INBOUND,
        source="mo",
        target=LOCAL,
        service="GD-HQ-BR-MO",
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"numeroReferencia": key, "requerente": {"nomeChines": "黃志明"}},
        received_at=at,
    )
    ex, _ = await journal.create(new, owner="intake", lease_until=at - 1)
    return ex.id


async def test_a_resent_soap_notice_overtaken_by_a_replay_is_the_call_it_resends(
    mo_config: Path,  # noqa: F811 (the fixture)
    spyne_mo: tuple[str, list[dict[str, Any]]],  # noqa: F811 (the fixture)
    journal: Journal,
) -> None:
    """Delivered as GD-1 and told; resent; replayed and delivered as GD-2: spyne logs the
    delivery's call twice, the same both times, then the new delivery's under its own key."""
    _, log = spyne_mo
    catalogue = load_catalogue(mo_config)
    local = MockAdapter(
        sequence(reply({"acceptance_no": "GD-1"}), reply({"acceptance_no": "GD-2"}))
    )
    xid = await filed(journal, "SAFP-HQ-2026-0042")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    await quiet(journal, catalogue, xid)
    await resend_notice(journal, xid, reason="mo lost it", by="s1", clock=time.time)
    await replayed(journal, xid, Mode.RESEND)
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    done = await quiet(journal, catalogue, xid)
    assert [n["key"] for n in log] == [f"{xid}:delivered"] * 2 + [f"{xid}:delivered:2"]
    told, resent, outcome = log
    assert resent == told
    assert told["processo"] == "GD-1" and outcome["processo"] == "GD-2"
    assert done.notify_state is None
