"""The ``tongban`` command as a user runs it: a subprocess against real files and loopback servers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.acceptance.conftest import Proc, http, run
from tests.catalogue_facts import check_summary, demo_examples, example_count
from tests.conftest import HK_APPLICATION, REPO
from tests.waiting import wait_for_sync


def test_check_accepts_the_shipped_catalogue() -> None:
    """`tongban check` on the repository's partners.yaml and mappings exits 0 and counts them."""
    result = run("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == check_summary(REPO)


def test_check_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    """A broken partners.yaml: every mistake on its own line as file:line: path: message, exit 1."""
    (tmp_path / "partners.yaml").write_text(
        "version: 1\n"
        "partners:\n"
        "  - id: hk\n"
        "    name: {zh: 香港, en: Hong Kong}\n"
        "    region: {code: '81', iso: CN-MO}\n"
        "    protocol: rest\n"
        "    endpoint: ftp://example.org\n"
        "    concurency: 4\n"
        "    services:\n"
        "      TD-VL-RENEW: mappings/missing.yaml\n",
        encoding="utf-8",
    )
    result = run("check", "--config", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.endswith(
            "partners.yaml:5: partners[0].region.iso: 'CN-MO' does not match region code 81 (CN-HK)"
        )
        for line in lines
    ), lines
    assert any(
        line.endswith("partners.yaml:7: partners[0].endpoint: not an http(s) URL") for line in lines
    ), lines
    assert any(
        "partners.yaml:8: partners[0].concurency: unknown key (did you mean 'concurrency'?)" in line
        for line in lines
    ), lines
    assert any(
        "partners.yaml:10: partners[0].services.TD-VL-RENEW.mapping: mapping file "
        "'mappings/missing.yaml' not found" in line
        for line in lines
    ), lines
    assert lines[-1] == "4 error(s)"


def test_check_reports_mapping_errors(tmp_path: Path, make_config) -> None:
    """A mapping with mistakes is reported with the mapping's file and line."""
    root = make_config(hk_mapping="mapping: 1\nrequest:\n  a: {from: x, vaule: 1}\n  b: {}\n")
    result = run("check", "--config", str(root))
    assert result.returncode == 1
    assert (
        "mappings/hk-vl.yaml:3: request.a.vaule: unknown key (did you mean 'value'?)"
        in result.stderr
    )
    assert "mappings/hk-vl.yaml:4: request.b: give exactly one of 'from'" in result.stderr


def test_demo_delivers_every_sample_application() -> None:
    """`tongban demo` delivers every sample both ways and takes applications through correction
    rounds: with a partner that calls back (hi) and with one that is polled over SOAP (hk)."""
    result = run("demo", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applications delivered" in result.stdout
    delivered, total = result.stdout.split(" applications delivered")[0].split()[-3::2]
    assert delivered == total
    assert int(total) == len(demo_examples(REPO))
    # Both directions: partners file with us, and applications go through 补正 to completion.
    assert "→ local" in result.stdout
    rounds = [line for line in result.stdout.splitlines() if line.startswith("correction round")]
    assert [line.split()[2:4] for line in rounds] == [["hi", "(by"], ["hk", "(polled)"]]
    for line in rounds:
        assert "submitted → correction_required → submitted" in line
        assert line.endswith("completed")
    # Guangdong's decisions on what hk and mo filed, as each partner reads them back with its key
    back = [line for line in result.stdout.splitlines() if line.startswith("decision back to")]
    assert [line.split()[3] for line in back] == ["hk", "mo"]
    assert back[0].endswith(  # hk is asked for more first and supplies it
        "submitted → correction_required → submitted → accepted → approved → completed"
    )
    assert back[1].endswith(": submitted → accepted → approved → completed")


def test_serve_then_restart_resumes_delivery(
    tmp_path: Path, make_config, procs: list[Proc]
) -> None:
    """serve + simulate as processes: accepted while the partner was down, delivered after restarts."""
    root = make_config(max_attempts=100)
    journal = tmp_path / "serve.sqlite"
    dead_port = "1"  # nothing listens on port 1 of loopback
    broker = Proc(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(journal),
        "--port",
        "0",
        "--endpoint",
        f"hk=http://127.0.0.1:{dead_port}",
        "--poll-interval",
        "0.1",
        log=tmp_path / "serve1.log",
    )
    procs.append(broker)
    assert broker.first_line.startswith("tongban listening on http://127.0.0.1:"), broker.first_line
    url = broker.first_line.rsplit(" ", 1)[1]
    body = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": HK_APPLICATION,
    }
    status, answer = http("POST", f"{url}/v1/exchanges", body, {"Idempotency-Key": "cli-1"})
    assert status == 202
    assert broker.stop() == 0

    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    again = Proc(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(journal),
        "--port",
        "0",
        "--endpoint",
        f"hk={sim_url}",
        "--poll-interval",
        "0.1",
        log=tmp_path / "serve2.log",
    )
    procs.append(again)
    url2 = again.first_line.rsplit(" ", 1)[1]
    wait_for_sync(
        lambda: http("GET", f"{url2}/v1/exchanges/{answer['id']}")[1]["state"],
        lambda state: state == "delivered",
        what="the application to be delivered after the restart",
        timeout=30,
    )
    _, seen = http("GET", f"{sim_url}/_sim/requests")
    assert answer["id"] in seen["keys"]  # the partner is sent the exchange id as the key
    assert again.stop() == 0


def test_serve_with_broken_config_exits_with_the_problems(tmp_path: Path) -> None:
    """`tongban serve` refuses to start on an invalid partners.yaml and says why."""
    (tmp_path / "partners.yaml").write_text("version: 1\npartners: []\n", encoding="utf-8")
    result = run("serve", "--config", str(tmp_path), "--port", "0", timeout=30)
    assert result.returncode == 2
    assert "partners.yaml:2: partners: lists no partner" in result.stderr


def test_sighup_reloads_mappings(tmp_path: Path, make_config, procs: list[Proc]) -> None:
    """Editing a mapping and sending SIGHUP changes what the next application is mapped to."""
    root = make_config()
    sim = Proc("simulate", "--config", str(root), "--partner", "hk", log=tmp_path / "sim.log")
    procs.append(sim)
    sim_url = json.loads(sim.first_line)["hk"]
    broker = Proc(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(tmp_path / "j.sqlite"),
        "--port",
        "0",
        "--endpoint",
        f"hk={sim_url}",
        log=tmp_path / "serve.log",
    )
    procs.append(broker)
    url = broker.first_line.rsplit(" ", 1)[1]
    mapping = root / "mappings" / "hk-vl.yaml"
    mapping.write_text(
        mapping.read_text().replace("value: VLR", "value: VLR-NEW"), encoding="utf-8"
    )
    broker.popen.send_signal(signal.SIGHUP)
    body = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": HK_APPLICATION,
    }
    # The reload runs in the background: submit until an application is mapped the new way.
    mapped_type = None
    deadline = time.monotonic() + 20
    i = 0
    while time.monotonic() < deadline and mapped_type != "VLR-NEW":
        i += 1
        status, answer = http("POST", f"{url}/v1/exchanges", body, {"Idempotency-Key": f"hup-{i}"})
        assert status == 202
        for _ in range(50):
            _, view = http("GET", f"{url}/v1/exchanges/{answer['id']}?include=payloads")
            if view["mapped"] is not None:
                break
            time.sleep(0.05)
        mapped_type = view["mapped"]["application_type"]
    assert mapped_type == "VLR-NEW"
    assert "catalogue_reloaded" in (tmp_path / "serve.log").read_text()


def test_mapping_test_prints_request_or_errors(tmp_path: Path) -> None:
    """`tongban mapping test` prints the mapped request (exit 0) or every error with its line (exit 1)."""
    mapping = REPO / "mappings" / "hk" / "td-vehicle-licence-renewal.yaml"
    example = sorted((mapping.parent / "td-vehicle-licence-renewal.examples").glob("*.json"))[0]
    application = json.loads(example.read_text(encoding="utf-8"))["application"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(application, ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text('{"applicant": {}}', encoding="utf-8")
    ok = run("mapping", "test", str(mapping), str(good))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == json.loads(example.read_text(encoding="utf-8"))["expected"]
    fail = run("mapping", "test", str(mapping), str(bad))
    assert fail.returncode == 1
    assert "td-vehicle-licence-renewal.yaml:" in fail.stderr
    assert "required, but missing" in fail.stderr
    assert fail.stderr.strip().endswith("error(s)")


def test_mapping_test_all_runs_every_golden_example() -> None:
    """`tongban mapping test --all` passes on the shipped catalogue and counts the examples."""
    result = run("mapping", "test", "--all")
    assert result.returncode == 0, result.stdout[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"{example_count(REPO)} golden examples, 0 failed"
