"""The container image: its Dockerfile's rules everywhere; built and started where a daemon is.

The rules: every base image pinned (an exact version tag or a digest, never ``latest``), the final
stage runs as a non-root user, no secret baked in (no ENV or ARG that names a key, secret, token
or password with a value, no key file copied, keys and journals kept out of the build context),
a health check and a drain-friendly stop. compose.yaml: PostgreSQL and two brokers, secrets only
from files or the environment at run time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import pytest
import yaml

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
SECRETISH = re.compile(r"(?i)(key|secret|token|passw|credential)")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# How many numbers an exact release has: python 3.11.11 (3.11 moves with each patch release),
# postgres 16.6 (its releases have two).
RELEASE_PARTS = {"postgres": 2}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def pinned(image: str) -> bool:
    """A digest, or a tag that names one exact release; never latest, a bare name or a series."""
    if DIGEST.search(image):
        return True
    name, _, tag = image.partition(":")
    version = re.match(r"\d+(\.\d+)*", tag)
    if version is None:
        return False
    parts = RELEASE_PARTS.get(name.rsplit("/", 1)[-1], 3)
    return len(version.group().split(".")) >= parts


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for word, rest in steps:
        if word == "FROM":
            out.append([])
        out[-1].append((word, rest))
    return out


def test_every_base_image_is_pinned() -> None:
    """FROM names an exact tag or digest in every stage."""
    froms = [
        rest.split()[0] for word, rest in instructions(DOCKERFILE.read_text()) if word == "FROM"
    ]
    assert froms, "no FROM"
    assert [image for image in froms if not pinned(image)] == []
    assert not pinned("python:3.11-slim") and not pinned("python:latest") and not pinned("python")
    assert pinned("python:3.11.11-slim-bookworm") and pinned("postgres:16.6-bookworm")


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    """The last USER of the last stage is a numeric uid other than 0."""
    final = stages(instructions(DOCKERFILE.read_text()))[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage never leaves root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]


def test_no_secret_is_baked_into_the_image() -> None:
    """No ENV/ARG that looks like a secret carries a value; no key or journal file is copied;
    the build context leaves keys, journals, environments and .git out."""
    steps = instructions(DOCKERFILE.read_text())
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", rest):
                assert not (SECRETISH.search(name) and value), f"{word} {name} has a value"
        if word in ("COPY", "ADD"):
            assert not re.search(r"\.(key|keys|pem|sqlite)\b|\.env\b|secrets", rest), rest
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "*.sqlite", "*.key", "*.keys", ".env", "secrets"} <= ignored


def test_the_image_stops_by_draining_and_reports_health() -> None:
    """SIGTERM is the stop signal (the broker drains on it) and /readyz is the health check."""
    final = dict(stages(instructions(DOCKERFILE.read_text()))[-1])
    assert final.get("STOPSIGNAL") == "SIGTERM"
    assert "/readyz" in final.get("HEALTHCHECK", "")


def test_compose_runs_postgresql_and_two_brokers_without_secrets_in_it() -> None:
    """compose.yaml: a pinned PostgreSQL, a migration before the brokers, two brokers with
    checkpoints of their own; passwords only as secret files, keys only from the environment."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    brokers = {name: s for name, s in services.items() if name.startswith("broker-")}
    assert len(brokers) == 2
    assert pinned(services["postgres"]["image"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    checkpoints = {b["environment"]["TONGBAN_JOURNAL_CHECKPOINTS"] for b in brokers.values()}
    assert len(checkpoints) == 1  # the same path, each on a volume of its own
    assert len({tuple(b["volumes"]) for b in brokers.values()}) == 2
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if SECRETISH.search(name) and not name.endswith(("_FILE", "PASSFILE")):
                assert str(value).startswith("${"), f"{name} is written in compose.yaml"
    assert all(s["file"].startswith("./secrets/") for s in compose["secrets"].values())


def docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not docker_daemon(), reason="no container daemon reachable")
def test_the_image_builds_starts_as_non_root_and_answers_readyz() -> None:
    """docker build, then the broker in a container on its starter configuration (loopback
    inside the container): not root, /readyz 200, and SIGTERM ends it with status 0."""
    tag = f"tongban-test:{uuid.uuid4().hex[:8]}"
    name = f"tongban-test-{uuid.uuid4().hex[:8]}"
    built = subprocess.run(
        ["docker", "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1800
    )
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        uid = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert uid.stdout.strip() not in ("", "0")
        subprocess.run(
            ["docker", "run", "-d", "--name", name, tag, "serve", "--config", "/etc/tongban"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        probe = [
            "python",
            "-c",
            "import urllib.request as u; print(u.urlopen("
            "'http://127.0.0.1:8080/readyz', timeout=4).status)",
        ]
        deadline = time.monotonic() + 120
        while True:
            ready = subprocess.run(
                ["docker", "exec", name, *probe], capture_output=True, text=True, timeout=30
            )
            if ready.stdout.strip() == "200":
                break
            assert time.monotonic() < deadline, ready.stderr[-2000:]
            time.sleep(1)
        stopped = subprocess.run(["docker", "stop", "-t", "45", name], timeout=120)
        assert stopped.returncode == 0
        status = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.stdout.strip() == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
