"""The wheel on its own: it carries the starter configuration and the service unit, and
`tongban init` and `tongban check` work from it without the source checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# What a wheel is built from (the Dockerfile's build stage copies the same).
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "federation",
    "adapters",
    "replay",
    "partners.yaml",
    "mappings",
    "partners",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built by pip from a copy of the sources (the checkout is left untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [whl] = out.glob("tongban-*.whl")
    return whl


@pytest.mark.slow
def test_the_wheel_carries_the_starter_and_the_unit(wheel: Path) -> None:
    """partners.yaml, every mapping file and table, WSDLs, schemas, the SQL and the systemd unit."""
    names = set(zipfile.ZipFile(wheel).namelist())
    starter = {n.removeprefix("federation/starter/") for n in names if "/starter/" in n}
    shipped = {
        str(p.relative_to(REPO))
        for top in ("mappings", "partners")
        for p in (REPO / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "partners.yaml" in starter
    assert shipped <= starter
    assert "federation/deploy/tongban.service" in names
    assert any(n.startswith("replay/sql/postgresql/") for n in names)


@pytest.mark.slow
def test_init_and_check_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    """Unpacked and first on the path, outside the checkout: init writes the starter from the
    package data, and check accepts it."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def tongban(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "federation", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import federation; print(federation.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout  # the wheel's code, not the checkout's
    made = tongban("init", "etc")
    assert made.returncode == 0, made.stderr
    checked = tongban("check", "--config", "etc")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().splitlines()[-1].startswith("ok: 11 partners")
