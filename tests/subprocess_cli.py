"""``tongban`` run as its own process, as an operator runs it: for tests of what a command prints
and exits with, and of a journal a running broker has open meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tongban(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tongban ARGS`` to completion from the repository, in English unless ``--lang`` says
    otherwise."""
    return subprocess.run(
        [sys.executable, "-m", "federation", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TONGBAN_LANG": "en"},
        check=False,
    )
