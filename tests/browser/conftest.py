"""The console in a real headless Chromium (Debian's, driven by Playwright): the demo as a
subprocess (``tongban demo --keep-running``), a broker with principals (``tongban serve``), and
screenshots of each page written for review (``TONGBAN_SCREENSHOTS``, else a temporary folder).

Without Chromium the tests are skipped with the reason, except when ``CI`` is set: then they fail
(``make test`` installs Debian's chromium first)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
TONGBAN = Path(sys.executable).with_name("tongban")
# The flags Chromium needs on a machine without a network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEYS = {role: f"console-test-{role}-key" for role in ("viewer", "support", "operator", "auditor")}


@dataclass(frozen=True)
class Server:
    """A broker process on loopback: its base URL, and (the demo's) the exchange left to replay."""

    url: str
    left: str = ""
    root: Path = Path()  # the configuration directory it serves


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="package")
def demo() -> Iterator[Server]:
    """``tongban demo --keep-running``: the demo's traffic, one exchange left rejected."""
    proc = subprocess.Popen(
        [str(TONGBAN), "demo", "--keep-running"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            found = re.search(r"console: (\S+)/console/ \(exchange (\w+) is left", line)
            if found:
                server = Server(url=found.group(1), left=found.group(2))
                break
        else:
            raise AssertionError("the demo ended without its console line:\n" + "".join(seen))
        for line in proc.stdout:
            if "still running" in line:
                break
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="package")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``tongban serve`` on the shipped configuration plus a principal of each staff role."""
    root = tmp_path_factory.mktemp("guarded")
    for name in ("mappings", "partners"):
        shutil.copytree(REPO / name, root / name)
    text = (REPO / "partners.yaml").read_text(encoding="utf-8")
    lines = [
        f"  - {{id: test-{role}, role: {role}, key_sha256: {hashlib.sha256(key.encode()).hexdigest()}}}"
        for role, key in KEYS.items()
    ]
    (root / "partners.yaml").write_text(text + "\nprincipals:\n" + "\n".join(lines) + "\n")
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(str(TONGBAN), "serve", "--config", str(root), "--journal", str(root / "j.sqlite")),
            *("--port", str(port), "--endpoint", "hk=http://127.0.0.1:9/"),
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("tongban serve did not become ready") from None
            time.sleep(0.1)
    try:
        yield Server(url=url, root=root)
    finally:
        _stop(proc)  # type: ignore[arg-type]


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, under Playwright (never a browser Playwright downloads)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots() -> Path:
    """Where the run writes its screenshots."""
    folder = Path(os.environ.get("TONGBAN_SCREENSHOTS") or REPO / ".pytest_cache" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
