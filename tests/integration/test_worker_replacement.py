"""`tongban serve --workers 2`: a worker that exits is replaced on the configuration in force.

A refused reload (partners.yaml broken mid-edit, `POST /v1/admin/reload` answered 422) followed by
one worker's crash used to take the whole service down: the parent started the replacement from
the broken file, and when it did not start, stopped the healthy worker too and exited. And with a
valid file not yet reloaded, the replacement silently ran it beside a worker on the old one. Now
one crash costs at most that worker: its replacement must run the version its predecessor ran,
the surviving worker keeps serving while it cannot, and the parent tries again, with a growing
wait, until it can (the file put back) or a restart of every worker loads the new files (SIGHUP).
Real processes on loopback.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.acceptance.conftest import Proc, http, procs, serve  # noqa: F401 (procs: a fixture)
from tests.waiting import wait_until


def workers_of(parent: Proc) -> list[int]:
    pid = parent.popen.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(p) for p in text.split())


def events(parent: Proc, name: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in parent.log.read_text().splitlines() if line[:1] == "{")
    return [line for line in lines if line.get("event") == name]


def start(tmp_path: Path, root: Path, procs: list[Proc]) -> tuple[Proc, str]:  # noqa: F811
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    parent = serve(
        root,
        tmp_path / "workers.sqlite",
        sim_url,
        tmp_path / "parent.log",
        "--workers",
        "2",
        "--log-level=info",
        "--log-format=json",
    )
    procs.append(parent)
    assert parent.first_line.startswith("tongban listening on "), parent.log.read_text()
    return parent, parent.first_line.rsplit(" ", 1)[1]


def healthy(url: str) -> bool:
    """/healthz answers 200 on a new connection, three times in a row (whichever worker)."""
    try:
        return all(http("GET", f"{url}/healthz")[0] == 200 for _ in range(3))
    except OSError:
        return False


@pytest.mark.slow
async def test_a_crash_after_a_refused_reload_costs_one_worker_not_the_service(
    tmp_path: Path,
    make_config,
    procs: list[Proc],  # noqa: F811
) -> None:
    root = make_config()
    parent, url = start(tmp_path, root, procs)
    config = root / "partners.yaml"
    good = config.read_text(encoding="utf-8")
    config.write_text("partners: [", encoding="utf-8")  # an operator's half-finished edit
    status, _ = http("POST", f"{url}/v1/admin/reload")
    assert status == 422
    victim, survivor = workers_of(parent)
    os.kill(victim, signal.SIGKILL)
    await wait_until(
        lambda: parent.popen.poll() is not None or len(events(parent, "worker_not_restarted")) >= 2,
        timeout=120,
        what="the replacement refused and tried again",
    )
    assert parent.popen.poll() is None  # the service is still up
    assert survivor in workers_of(parent)  # (beside it, at times, a replacement trying)
    assert healthy(url)
    config.write_text(good, encoding="utf-8")  # put back: the version in force again
    await wait_until(
        lambda: bool(events(parent, "worker_restarted")),
        timeout=180,
        what="the empty slot filled again",
    )
    assert len(workers_of(parent)) == 2
    assert survivor in workers_of(parent)
    assert healthy(url)
    assert parent.stop(signal.SIGTERM) == 0


@pytest.mark.slow
async def test_a_replacement_does_not_run_files_nobody_reloaded(
    tmp_path: Path,
    make_config,
    procs: list[Proc],  # noqa: F811
) -> None:
    """A valid new partners.yaml on disk, not reloaded: the crashed worker's replacement refuses
    it (the survivor runs the old one) until SIGHUP restarts every worker on the new one."""
    root = make_config()
    parent, url = start(tmp_path, root, procs)
    config = root / "partners.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    victim, survivor = workers_of(parent)
    os.kill(victim, signal.SIGKILL)
    await wait_until(
        lambda: (
            bool(events(parent, "worker_restarted"))  # on files nobody reloaded
            or (
                bool(events(parent, "worker_config_not_in_force"))
                and bool(events(parent, "worker_not_restarted"))
            )
        ),
        timeout=120,
        what="the replacement refusing the files not reloaded",
    )
    assert survivor in workers_of(parent)
    assert not events(parent, "worker_restarted")
    assert healthy(url)
    parent.popen.send_signal(signal.SIGHUP)
    await wait_until(
        lambda: bool(events(parent, "workers_restarted")),
        timeout=180,
        what="every worker restarted on the new files",
    )
    assert len(workers_of(parent)) == 2 and survivor not in workers_of(parent)
    assert healthy(url)
    assert parent.stop(signal.SIGTERM) == 0
