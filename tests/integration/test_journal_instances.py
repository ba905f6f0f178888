"""Operational state the journal keeps outside its chain, on every backend: which instances share
it and which configuration version each serves (announced, refreshed, withdrawn, forgotten a day
after they were last seen), and the console's sessions (by their token's hash)."""

from __future__ import annotations

import struct
from dataclasses import replace

from replay.instances import EVERY, Instance
from replay.journal import Backend
from replay.sessions import StoredSession

NOW = 1_790_000_000.0


def instance(n: int, version: str, seen: float) -> Instance:
    return Instance(
        id=f"host-{n}:{100 + n}:ABCDEF",
        host=f"host-{n}",
        pid=100 + n,
        config_version=version,
        started_at=NOW - 60,
        seen_at=seen,
    )


async def test_each_instance_is_listed_with_the_version_it_last_announced(journal: Backend) -> None:
    """Two instances announce; one reloads to a new version: each is listed once, with its own
    latest version and its start time kept."""
    await journal.announce(instance(1, "sha256:aaaa", NOW))
    await journal.announce(instance(2, "sha256:aaaa", NOW))
    await journal.announce(replace(instance(2, "sha256:bbbb", NOW + EVERY), started_at=NOW))
    seen = await journal.instances(seen_since=NOW - 3600)
    assert [(i.host, i.config_version) for i in seen] == [
        ("host-1", "sha256:aaaa"),
        ("host-2", "sha256:bbbb"),
    ]
    assert seen[1].started_at == NOW - 60 and seen[1].seen_at == NOW + EVERY
    assert seen[0].running(NOW + EVERY) and not seen[0].running(NOW + 10 * EVERY)


async def test_a_withdrawn_or_long_gone_instance_is_not_listed(journal: Backend) -> None:
    """A clean stop withdraws its instance; one not seen for over a day is dropped at the next
    announcement of any instance; `seen_since` leaves out older ones."""
    await journal.announce(instance(1, "v1", NOW - 2 * 86_400))
    await journal.announce(instance(2, "v1", NOW - 600))
    await journal.announce(instance(3, "v1", NOW))
    await journal.withdraw(instance(3, "v1", NOW).id)
    assert [i.host for i in await journal.instances(seen_since=0)] == ["host-2"]
    assert await journal.instances(seen_since=NOW - 60) == []


async def test_console_sessions_are_found_by_hash_until_they_end_or_expire(
    journal: Backend,
) -> None:
    """A session is found by its token's hash while live; not once ended or expired; opening a
    new one drops the expired."""
    live = StoredSession(
        token_hash=b"\x01" * 32, principal="hk-support", role="support", expires_at=NOW + 60
    )
    old = StoredSession(
        token_hash=b"\x02" * 32, principal="gd-viewer", role="viewer", expires_at=NOW + 5
    )
    await journal.open_session(live, now=NOW)
    await journal.open_session(old, now=NOW)
    assert await journal.session(live.token_hash, now=NOW + 1) == live
    assert await journal.session(old.token_hash, now=NOW + 10) is None  # expired
    assert await journal.session(b"\x03" * 32, now=NOW) is None
    await journal.end_session(live.token_hash)
    assert await journal.session(live.token_hash, now=NOW + 1) is None
    await journal.open_session(replace(live, token_hash=b"\x04" * 32), now=NOW + 10)
    assert await journal.session(old.token_hash, now=NOW) is None  # dropped, not only hidden


async def test_a_console_session_is_vouched_for_under_the_journal_key(journal: Backend) -> None:
    """The MAC that binds a session's token to its row: under the journal's key (kept outside the
    journal), the same for the same parts, another for another role or end."""
    parts = (b"nonce-1", b"hk-support", b"support", struct.pack(">d", NOW + 60))
    mac = journal.session_mac(parts)
    assert mac is not None and len(mac) == 32
    assert journal.session_mac(parts) == mac
    assert journal.session_mac((*parts[:2], b"operator", parts[3])) != mac
    assert journal.session_mac((*parts[:3], struct.pack(">d", NOW + 6000))) != mac
