"""A source's callback secret given as a file is read off the event loop: a slow or hung file
system holds that callback (callback_failed naming the reference), never the broker; on SQLite,
PostgreSQL and the in-memory journal."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.config import secrets
from federation.config.secrets import SecretRef
from federation.runtime.catalogue import Catalogue, load_catalogue
from replay.journal import Journal
from tests.integration.test_callback_resend import (
    NAME,
    Receiver,
    ended,
    listening,
    new_secret,
    notified,
    notifier,
    with_event,
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The source's receiver on loopback, knowing one fresh secret."""
    async with listening(Receiver(secrets=[new_secret()])) as r:
        yield r


def from_file(make_config: Any, receiver: Receiver) -> Catalogue:
    """gd-portal's callback at ``receiver``, its secret in the file secrets/callback."""
    root: Path = make_config()
    (root / "secrets").mkdir(exist_ok=True)
    kept = root / "secrets" / "callback"
    kept.write_text(receiver.secrets[0], encoding="utf-8")
    kept.chmod(0o600)
    partners = root / "partners.yaml"
    lines = (
        f'    callback: {receiver.url}/outcomes\n    callback_secret: "{{file:secrets/callback}}"\n'
    )
    partners.write_text(partners.read_text(encoding="utf-8").replace(NAME, NAME + lines, 1))
    return load_catalogue(root)


def on_loop() -> bool:
    """Whether an event loop runs in the calling thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_the_secret_file_is_read_off_the_loop_and_the_callback_signed(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read of the callback's secret file happens outside the event loop's thread; the
    callback goes out signed and the receiver verifies it."""
    catalogue = from_file(make_config, receiver)
    where: list[bool] = []
    real = SecretRef.read_bytes

    def read_bytes(ref: SecretRef) -> bytes:
        if ref.kind == "file":
            where.append(on_loop())
        return real(ref)

    monkeypatch.setattr(SecretRef, "read_bytes", read_bytes)
    xid = await ended(journal, "cb-file")
    await notified(journal, catalogue, xid, "callback_delivered")
    assert where and not any(where), where
    assert [ok for _, _, ok in receiver.got] == [True]


async def test_a_hung_secret_file_holds_the_callback(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of the secret file that never returns: the callback is held (callback_failed naming
    the reference, nothing sent) after the read timeout, and the loop runs on meanwhile."""
    catalogue = from_file(make_config, receiver)
    release = threading.Event()
    real = SecretRef.read_bytes

    def hung(ref: SecretRef) -> bytes:
        if ref.kind == "file" and not on_loop():
            release.wait(timeout=30)
        return real(ref)

    monkeypatch.setattr(SecretRef, "read_bytes", hung)
    monkeypatch.setattr(secrets.READERS, "timeout", 0.3, raising=False)
    xid = await ended(journal, "cb-hung")
    loop = notifier(journal, catalogue)
    loop.start()
    try:
        failed = await with_event(journal, xid, "callback_failed")
    finally:
        release.set()
        await loop.stop()
    [event] = [e for e in failed.events if e.kind == "callback_failed"]
    assert "{file:secrets/callback}" in str(event.data.get("error")), event.data
    assert receiver.got == []
