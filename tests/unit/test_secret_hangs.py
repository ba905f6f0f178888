"""A secret file on a hung file system (a read that never returns) holds only what needs it: the
read is given up after the timeout as a SecretError, a further read in that folder is refused at
once, the threads stuck there stay few, and other folders' secrets are read as before."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from federation.config import secrets
from federation.config.secrets import SecretError, SecretRef, read_texts

TIMEOUT = 0.3  # seconds: the read timeout in these tests


class HungFolder:
    """Reads of files under ``folder`` block until released; counts the threads blocked."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.release = threading.Event()
        self.blocked = 0
        self._lock = threading.Lock()
        real = SecretRef.read_bytes

        def read_bytes(ref: SecretRef) -> bytes:
            if ref.kind == "file" and (ref.base / ref.name).parent == folder:
                with self._lock:
                    self.blocked += 1
                self.release.wait(timeout=30)
            return real(ref)

        monkeypatch.setattr(SecretRef, "read_bytes", read_bytes)


@pytest.fixture
def hung(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HungFolder]:
    """Folder ``a`` of the test hangs; the read timeout is short."""
    monkeypatch.setattr(secrets.READERS, "timeout", TIMEOUT, raising=False)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "token").write_text(f"token-of-{name}-4c1d\n")
        (tmp_path / name / "token").chmod(0o600)
    folder = HungFolder(tmp_path / "a", monkeypatch)
    yield folder
    folder.release.set()  # the stuck threads end


def ref(tmp_path: Path, folder: str) -> SecretRef:
    return SecretRef(kind="file", name=f"{folder}/token", base=tmp_path)


async def test_a_hung_folder_does_not_hold_another_folders_secret(
    tmp_path: Path, hung: HungFolder
) -> None:
    """With four reads hung in folder a, the secret in folder b is read at once."""
    stuck = [asyncio.ensure_future(read_texts([ref(tmp_path, "a")])) for _ in range(4)]
    await asyncio.sleep(0.05)
    got = await asyncio.wait_for(read_texts([ref(tmp_path, "b")]), 10)
    assert got == ["token-of-b-4c1d"]
    await asyncio.gather(*stuck, return_exceptions=True)


async def test_a_read_that_never_returns_is_a_secret_error_after_the_timeout(
    tmp_path: Path, hung: HungFolder
) -> None:
    """A read that never returns is a SecretError naming the reference after the timeout (the
    hung read itself would return only after 30 s, when the fixture releases it)."""
    with pytest.raises(SecretError, match=r"\{file:a/token\}: no answer from the file system"):
        await asyncio.wait_for(ref(tmp_path, "a").load(), 10)
    assert not hung.release.is_set()


async def test_a_hung_folder_is_refused_at_once_and_keeps_few_threads(
    tmp_path: Path, hung: HungFolder
) -> None:
    """A hung folder's further reads are refused at once, with at most two threads stuck there."""
    with pytest.raises(SecretError):
        await asyncio.wait_for(ref(tmp_path, "a").load(), 10)
    blocked = hung.blocked
    for _ in range(20):  # refused without trying: no read started, none waits for the timeout
        with pytest.raises(SecretError, match="has not returned for"):
            await asyncio.wait_for(ref(tmp_path, "a").load(), 10)
    assert hung.blocked == blocked <= secrets.PER_FOLDER
    hung.release.set()
    for _ in range(100):  # the stuck read returns: the folder is read again
        await asyncio.sleep(0.01)
        if secrets.READERS.hung(ref(tmp_path, "a").folder) is None:
            break
    assert await ref(tmp_path, "a").load() == b"token-of-a-4c1d"


async def test_a_hang_in_a_second_folder_is_charged_to_that_folder(
    tmp_path: Path, hung: HungFolder
) -> None:
    """Files of folders b and a read together, a hanging: b's threads stay free for b's readers."""
    with pytest.raises(SecretError, match=r"\{file:a/token\}: no answer from the file system"):
        await asyncio.wait_for(read_texts([ref(tmp_path, "b"), ref(tmp_path, "a")]), 10)
    assert await asyncio.wait_for(read_texts([ref(tmp_path, "b")]), 10) == ["token-of-b-4c1d"]


async def test_a_shutdown_cancel_as_the_timer_fires_stays_a_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task cancelled in the loop step in which its read times out is cancelled, not failed."""
    release = threading.Event()
    readers = secrets.Readers(timeout=TIMEOUT)
    real = secrets._expire
    task: asyncio.Task[bool] | None = None

    def expire_then_cancel(*args: object) -> None:
        real(*args)  # type: ignore[arg-type]
        assert task is not None
        task.cancel()  # a shutdown's cancel in the same step

    monkeypatch.setattr(secrets, "_expire", expire_then_cancel)
    task = asyncio.ensure_future(readers.run(lambda: release.wait(30), "/hung", "{file:/hung/t}"))
    try:
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()


def test_a_read_stuck_for_ever_does_not_keep_the_process_from_exiting() -> None:
    """A process whose secret read never returns still exits once its work is done."""
    script = (
        "import asyncio, time\n"
        "from federation.config.secrets import Readers, SecretError\n"
        "async def main():\n"
        "    try:\n"
        "        await Readers(timeout=0.2).run(lambda: time.sleep(3600), '/nfs', '{file:/nfs/t}')\n"
        "    except SecretError:\n"
        "        print('held', flush=True)\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=20
    )
    assert (done.returncode, done.stdout) == (0, "held\n"), done.stderr
