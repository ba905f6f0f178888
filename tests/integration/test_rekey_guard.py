"""`tongban journal rekey` refuses while brokers announce themselves on the journal.

A running broker goes on sealing with the key it loaded; rekey retires that key from the key file,
so what the broker writes afterwards could not be read once it restarts. Brokers announce
themselves every 15 s (replay/instances.py); one heard from in the last 45 s counts as running.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from replay.factory import open_journal
from replay.instances import Instance
from tests.unit.test_cli_help import LOCALES, sealed_journal, tongban


def announce(path: str, seen_ago: float, pid: int = 4242) -> str:
    """A broker instance that last announced itself ``seen_ago`` seconds ago; its id."""
    now = time.time()
    instance = Instance(
        id=f"gz-01:{pid}:ab12",
        host="gz-01",
        pid=pid,
        config_version="sha256:1",
        started_at=now - 600,
        seen_at=now - seen_ago,
    )

    async def go() -> None:
        j = open_journal(path)
        await j.open()
        try:
            await j.announce(instance)
        finally:
            await j.close()

    asyncio.run(go())
    return instance.id


def current_key(path: str) -> str:
    return str(json.loads(Path(path + ".keys").read_text())["current"])


def test_rekey_is_refused_while_a_broker_announces_itself_and_force_overrides(
    tmp_path: Path,
) -> None:
    path = sealed_journal(tmp_path)
    running = announce(path, seen_ago=5)
    before = current_key(path)
    refused = tongban("journal", "rekey", "--journal", path)
    assert refused.exit_code == 2, refused.output
    assert running in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert current_key(path) == before  # nothing rekeyed
    forced = tongban("journal", "rekey", "--journal", path, "--force")
    assert forced.exit_code == 0, forced.output
    assert current_key(path) != before


def test_a_broker_not_heard_from_for_45_s_does_not_hold_rekey_back(tmp_path: Path) -> None:
    """An instance killed without withdrawing stops counting once it misses three announcements."""
    path = sealed_journal(tmp_path)
    announce(path, seen_ago=60)
    done = tongban("journal", "rekey", "--journal", path)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("rekeyed: ")


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_the_refusal_is_said_in_the_readers_language(
    tmp_path: Path, locale: str, language: str
) -> None:
    path = sealed_journal(tmp_path)
    running = announce(path, seen_ago=1)
    refused = tongban("journal", "rekey", "--journal", path, env={"LANG": locale})
    expected = {
        "zh_Hans": "请先停止它们",
        "zh_Hant": "請先停止它們",
        "en": "Stop them first",
    }[language]
    assert refused.exit_code == 2
    assert expected in refused.stderr and running in refused.stderr
