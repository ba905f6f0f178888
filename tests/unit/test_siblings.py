"""A worker of `tongban serve --workers N` knows its parent only while it runs under it."""

from __future__ import annotations

import os

import pytest

from federation.runtime import siblings


def test_a_process_without_the_variable_is_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(siblings.PARENT_ENV, raising=False)
    assert siblings.parent() is None
    assert siblings.restart_all() is False


def test_a_parent_named_is_believed_only_when_it_is_the_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The variable inherited by a grandchild, or left by a parent that died (the worker now
    reparented), names a process that is not this one's parent: no signal goes anywhere."""
    monkeypatch.setenv(siblings.PARENT_ENV, str(os.getppid()))
    assert siblings.parent() == os.getppid()
    monkeypatch.setenv(siblings.PARENT_ENV, str(os.getpid()))  # anything but the parent
    assert siblings.parent() is None
    monkeypatch.setenv(siblings.PARENT_ENV, "not-a-pid")
    assert siblings.parent() is None


def test_a_parent_gone_before_the_signal_leaves_the_reload_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent died between the check and the signal: the reload stands, nothing raises."""
    monkeypatch.setenv(siblings.PARENT_ENV, str(os.getppid()))

    def gone(pid: int, sig: int) -> None:
        raise ProcessLookupError(pid)

    monkeypatch.setattr(siblings.os, "kill", gone)
    assert siblings.restart_all() is False
