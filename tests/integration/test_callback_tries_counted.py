"""Every try at a JSON callback counts toward its retry policy, one whose journal write lost the
callback's lease to a replay too: a first callback (not a resend) tried while a replay lands is
not tried more times than the policy allows. Through the worker, the replay service and the
notifier, to the source's receiver on loopback; on SQLite, PostgreSQL and the in-memory journal
alike.
"""

from __future__ import annotations

from typing import Any

from federation.domain.models import State
from federation.testing import MockAdapter, permanent, sequence
from replay.journal import Journal
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import Stepping, listening, new_secret, signed_source
from tests.integration.test_callback_resend_replay import worked
from tests.integration.test_callback_resend_told import replay_in_flight, sent, tried


async def test_a_first_callback_tried_as_a_replay_lands_gets_no_try_past_its_policy(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The source is down; the first try at `rejected` fails while the replay lands (its
    outcome journalled without the row's count): it counts, so the callback is abandoned at
    its second try, as the policy (two tries) says, not a third."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()], down=True)
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "lost-try")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        done = await replay_in_flight(journal, catalogue, receiver, partner, xid)
    assert [key for key, _ in sent(receiver)] == [f"{xid}:rejected"] * 2
    assert tried(done) == [
        ("callback_failed", "rejected"),
        ("callback_abandoned", "rejected"),
    ]
