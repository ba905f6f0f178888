"""Support staff at the command line: `tongban journal search|show|verify|archive` and `tongban replay`.

Every command runs as a subprocess against real `tongban serve` and `tongban simulate` processes on
loopback. Read-only tests share one populated journal (``world``); tests that replay, tamper or
archive work on their own broker or on a snapshot of that journal.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import os
import pty
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from federation.cli.audit import os_user
from tests.acceptance.conftest import TONGBAN, Proc, http
from tests.conftest import (
    HK_APPLICATION,
    HK_MAPPING,
    PARTNERS_YAML,
    REPO,
    SC_APPLICATION,
    SC_MAPPING,
)
from tests.waiting import wait_for_sync

ENDED = {"delivered", "failed", "rejected", "unconfirmed"}  # replay.rules.ENDED
SECOND_SOURCE = (
    "  - id: hn-portal\n    name: {zh: 湖南政务服务网, en: Hunan Government Services Portal}\n"
)


def tongban(*args: str, stdin: str = "", cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run ``tongban ARGS`` with ``stdin`` as its (non-terminal) standard input."""
    return subprocess.run(
        [*TONGBAN, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def tongban_all(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run several read-only ``tongban`` commands side by side (each is mostly start-up time)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: tongban(*args), commands))


def catalogue(root: Path, *, hk_mapping: str = HK_MAPPING) -> Path:
    """The make_config catalogue (hk, sc; 2 attempts), plus a second source and applicant search."""
    (root / "mappings").mkdir(parents=True)
    partners = PARTNERS_YAML.format(read="2s", total="5s", max_attempts=2, hk_schema="")
    partners = partners.replace("\npartners:\n", "\n" + SECOND_SOURCE + "partners:\n", 1)
    partners += "search:\n  applicant_fields: [applicant.hkid]\n"
    (root / "partners.yaml").write_text(partners, encoding="utf-8")
    (root / "mappings" / "hk-vl.yaml").write_text(hk_mapping, encoding="utf-8")
    (root / "mappings" / "sc-hf.yaml").write_text(SC_MAPPING, encoding="utf-8")
    return root


def hk(hkid: str = "K802133(3)", mark: str | None = "AB1234") -> dict[str, Any]:
    """An hk application with the given HKID and registration mark (None: left out)."""
    app: dict[str, Any] = {"applicant": {**HK_APPLICATION["applicant"], "hkid": hkid}}
    if mark is not None:
        app["vehicle"] = {"registration_mark": mark}
    return app


def serve(root: Path, journal: Path, sim: dict[str, str], log: Path) -> Proc:
    """`tongban serve` sending to the simulators, polling the journal every 0.1 s."""
    proc = Proc(
        "serve",
        "--config",
        str(root),
        "--journal",
        str(journal),
        "--port",
        "0",
        *(arg for pid, url in sim.items() for arg in ("--endpoint", f"{pid}={url}")),
        "--poll-interval",
        "0.1",
        log=log,
    )
    assert proc.first_line.startswith("tongban listening on "), log.read_text()[-2000:]
    return proc


def submit(url: str, key: str, application: dict[str, Any], **fields: str) -> str:
    """POST one application; returns its exchange id."""
    body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW", **fields}
    status, answer = http(
        "POST",
        f"{url}/v1/exchanges",
        {**body, "application": application},
        {"Idempotency-Key": key},
    )
    assert status == 202, answer
    return str(answer["id"])


def settle(
    url: str, ids: list[str], states: set[str] = ENDED, timeout: float = 20
) -> dict[str, str]:
    """Wait until every exchange is in one of ``states``; returns id → state; fails at ``timeout``."""
    return wait_for_sync(
        lambda: {xid: http("GET", f"{url}/v1/exchanges/{xid}")[1]["state"] for xid in ids},
        lambda now: set(now.values()) <= states,
        what=f"{len(ids)} exchange(s) to be {states}",
        timeout=timeout,
    )


def snapshot(journal: Path, to: Path) -> Path:
    """A consistent copy of a journal a broker is writing (SQLite online backup), with its keys
    and checkpoints (copied first: a checkpoint must not be newer than the copy of the journal)."""
    for suffix in (".checkpoints", ".keys", ".key"):
        side = journal.with_name(journal.name + suffix)
        if side.exists():
            copy = to.with_name(to.name + suffix)
            copy.write_bytes(side.read_bytes())
            copy.chmod(0o600)
    src, dst = sqlite3.connect(journal), sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return to


def search(journal: Path, *args: str) -> list[dict[str, Any]]:
    """`tongban journal search --format json` → the exchanges."""
    result = tongban("journal", "search", "--journal", str(journal), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["exchanges"])


@dataclass
class World:
    root: Path
    journal: Path
    url: str
    sim: dict[str, str]
    ids: dict[str, str]  # idempotency key → exchange id, in submission order


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One `tongban simulate` process (hk, sc) for the module; every test uses its own keys."""
    root = catalogue(tmp_path_factory.mktemp("sim"))
    proc = Proc("simulate", "--config", str(root), log=root / "sim.log")
    try:
        yield json.loads(proc.first_line)
    finally:
        proc.stop()
        proc.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sim: dict[str, str]) -> Iterator[World]:
    """A running broker whose journal holds five ended exchanges (not to be changed by tests)."""
    root = catalogue(tmp_path_factory.mktemp("world"))
    journal = root / "world.sqlite"
    broker = serve(root, journal, sim, root / "serve.log")
    try:
        url = broker.first_line.rsplit(" ", 1)[1]
        ids = {
            "w-1": submit(url, "w-1", hk()),
            "w-2": submit(
                url, "w-2", SC_APPLICATION, partner="sc", service="115101000000000000-HF-WITHDRAW"
            ),
            "w-3": submit(url, "w-3", hk("C668668(E)", "CD5678"), source="hn-portal"),
            "w-4": submit(url, "w-4", hk(mark=None)),  # no registration mark: rejected
            "w-5": submit(url, "w-5", hk(mark="EF9012")),
        }
        states = settle(url, list(ids.values()))
        assert sorted(states.values()) == ["delivered"] * 4 + ["rejected"], states
        yield World(root=root, journal=journal, url=url, sim=sim, ids=ids)
    finally:
        broker.stop()
        broker.close()


# -- search -----------------------------------------------------------------------------------


def test_search_lists_newest_first_as_table_json_and_csv(world: World) -> None:
    """Every format lists the same exchanges, newest first; json and csv parse."""
    newest_first = list(reversed(world.ids.values()))
    base = ["journal", "search", "--journal", str(world.journal)]
    json_out, table, as_csv = tongban_all(
        [*base, "--format", "json"], base, [*base, "--format", "csv"]
    )
    as_json = json.loads(json_out.stdout)["exchanges"]
    assert [e["id"] for e in as_json] == newest_first
    assert [e["idempotency_key"] for e in as_json] == ["w-5", "w-4", "w-3", "w-2", "w-1"]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in rows] == newest_first
    assert rows[0]["partner"] == "hk" and rows[0]["state"] == "delivered"
    assert rows[0]["receipt_number"].startswith("HK")
    assert rows[1]["state"] == "rejected" and "failed the mapping" in rows[1]["last_error"]
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "state", "partner", "service"]
    assert [line.split()[0] for line in lines[1:6]] == newest_first
    assert lines[-1] == "5 exchange(s), newest first"


def test_search_filters_by_state_partner_source_key_error_time_and_id(world: World) -> None:
    """Each filter narrows the list to the exchanges it names, and filters combine."""
    w3_created = http("GET", f"{world.url}/v1/exchanges/{world.ids['w-3']}")[1]["created_at"]
    cases: list[tuple[list[str], list[str]]] = [
        (["--state", "rejected"], ["w-4"]),
        (["--state", "rejected", "--state", "failed"], ["w-4"]),
        (["--state", "delivered,rejected", "--partner", "sc"], ["w-2"]),
        (["--service", "TD-VL-RENEW", "--state", "delivered"], ["w-5", "w-3", "w-1"]),
        (["--source", "hn-portal"], ["w-3"]),
        (["--key", "w-5"], ["w-5"]),
        (["--error", "failed the mapping"], ["w-4"]),
        (["--since", w3_created], ["w-5", "w-4", "w-3"]),
        (["--until", w3_created, "--partner", "hk"], ["w-1"]),
        (["--id", world.ids["w-3"]], ["w-3"]),
        (["--partner", "mo"], []),
    ]
    results = tongban_all(
        *(
            ["journal", "search", "--journal", str(world.journal), "--format", "json", *args]
            for args, _ in cases
        )
    )
    for (args, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 0, result.stderr
        keys = [e["idempotency_key"] for e in json.loads(result.stdout)["exchanges"]]
        assert keys == expected, args


def test_search_pages_with_before(world: World) -> None:
    """--limit 2 pages through all five, newest first, following each page's next cursor."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        args = ["--limit", "2", *(["--before", cursor] if cursor else [])]
        result = tongban(
            "journal", "search", "--journal", str(world.journal), "--format", "json", *args
        )
        page = json.loads(result.stdout)
        seen += [e["id"] for e in page["exchanges"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert cursor == page["exchanges"][-1]["id"]
    assert seen == list(reversed(world.ids.values()))
    assert pages == 3


def test_search_by_applicant_finds_an_hkid_written_differently(world: World) -> None:
    """`k802133 (3)` finds the K802133(3) exchanges; the journal keeps only its keyed hash."""
    typed = "k802133 (3)"
    result = tongban(
        "journal",
        "search",
        "--journal",
        str(world.journal),
        "--format",
        "json",
        "--applicant",
        typed,
    )
    assert result.returncode == 0, result.stderr
    keys = [e["idempotency_key"] for e in json.loads(result.stdout)["exchanges"]]
    from_stdin = tongban(
        "journal",
        "search",
        "--journal",
        str(world.journal),
        "--format",
        "csv",
        "--applicant",
        "-",
        stdin="ｃ６６８６６８（Ｅ）\n",  # full-width, as typed on a Chinese keyboard
    )
    assert keys == ["w-5", "w-4", "w-1"]
    assert [r["idempotency_key"] for r in csv.DictReader(io.StringIO(from_stdin.stdout))] == ["w-3"]
    for out in (result, from_stdin):
        assert "802133" not in out.stdout + out.stderr and "668668" not in out.stdout + out.stderr
    # The search index holds HMACs under the journal's key, never the number itself. (The
    # application, which remap needs, keeps the HKID as submitted: "K802133(3)", never "K8021333".)
    files = [world.journal, *world.journal.parent.glob(world.journal.name + "-*")]
    stored = b"".join(f.read_bytes() for f in files)
    key = bytes.fromhex(world.journal.with_name("world.sqlite.key").read_text().strip())
    with sqlite3.connect(f"file:{world.journal}?mode=ro", uri=True) as db:
        refs = {bytes(r[0]) for r in db.execute("SELECT ref FROM exchange_refs")}
    assert hmac.new(key, b"K8021333", hashlib.sha256).digest()[:16] in refs  # 16 bytes kept
    assert len(refs) == 2  # two different HKIDs among the four hk applications
    for clear in (b"K8021333", b"C668668E", b"k802133 (3)", b"K802133 (3)", b"C668668 (E)"):
        assert clear not in stored


def test_search_mistakes_are_clear_errors(world: World, tmp_path: Path) -> None:
    """A bad state, time or limit, a missing journal or a missing search key: one line, exit 2."""
    keyless = snapshot(world.journal, tmp_path / "copy.sqlite")
    keyless.with_name("copy.sqlite.key").unlink()
    base = ["journal", "search", "--journal"]
    bad_state, bad_time, bad_limit, missing, no_key = tongban_all(
        [*base, str(world.journal), "--state", "lost"],
        [*base, str(world.journal), "--since", "last tuesday"],
        [*base, str(world.journal), "--limit", "0"],
        [*base, str(tmp_path / "nope.sqlite")],
        [*base, str(keyless), "--applicant", "K802133(3)"],
    )
    for result in (bad_state, bad_time, bad_limit, missing, no_key):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
    assert "'lost' is not a state" in bad_state.stderr
    assert "'last tuesday' is not a time" in bad_time.stderr
    assert "limit must be between 1 and 1000" in bad_limit.stderr
    assert "no journal at" in missing.stderr and not (tmp_path / "nope.sqlite").exists()
    assert "no search key" in no_key.stderr and "K802133" not in no_key.stderr
    assert not keyless.with_name("copy.sqlite.key").exists()  # no new, useless key was made


# -- replay -----------------------------------------------------------------------------------


def test_replay_mistakes_are_refused_and_change_nothing(world: World, tmp_path: Path) -> None:
    """No reason, no target, ID with filters, unknown ID, or a bulk replay without --yes off a terminal."""
    copy = str(snapshot(world.journal, tmp_path / "copy.sqlite"))
    w1, unknown_id = world.ids["w-1"], "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    j = ["--journal", copy]
    no_reason, no_target, both, unknown, bulk = tongban_all(
        ["replay", w1, "--mode", "resend", *j],
        ["replay", "--mode", "resend", "--reason", "r", *j],
        ["replay", w1, "--state", "failed", "--mode", "resend", "--reason", "r", *j],
        ["replay", unknown_id, "--mode", "resend", "--reason", "r", *j],
        ["replay", "--state", "delivered", "--mode", "resend", "--reason", "r", *j],
    )
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr
    assert no_target.returncode == 2 and "give an exchange ID, or filters" in no_target.stderr
    assert both.returncode == 2 and "not both" in both.stderr
    assert unknown.returncode == 1 and "no exchange 01ARZ3NDEKTSV4RRFFQ69G5FAV" in unknown.stderr
    assert bulk.returncode == 2, bulk.stdout + bulk.stderr
    assert "refusing a bulk replay of 4 exchange(s)" in bulk.stderr
    assert "add --yes" in bulk.stderr
    states = [e["state"] for e in search(Path(copy))]
    assert states == ["delivered", "rejected", "delivered", "delivered", "delivered"]


def test_bulk_replay_asks_at_a_terminal(world: World, tmp_path: Path) -> None:
    """At a terminal a bulk replay asks: 'no' replays nothing, typing the count replays them."""
    copy = snapshot(world.journal, tmp_path / "copy.sqlite")
    args = ["replay", "--state", "delivered", "--partner", "hk", "--mode", "resend"]
    args += ["--reason", "partner lost them", "--journal", str(copy)]

    def at_terminal(answer: str) -> subprocess.CompletedProcess[str]:
        leader, follower = pty.openpty()
        try:
            os.write(leader, answer.encode() + b"\n")
            return subprocess.run(
                [*TONGBAN, *args],
                cwd=REPO,
                stdin=follower,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            os.close(leader)
            os.close(follower)

    refused = at_terminal("no")
    assert refused.returncode == 1 and "not confirmed: nothing was replayed" in refused.stderr
    assert "Type 3 or 'yes'" in refused.stderr
    assert {e["state"] for e in search(copy, "--partner", "hk")} == {"delivered", "rejected"}
    confirmed = at_terminal("3")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "replayed 3 (resend)" in confirmed.stdout
    assert [e["state"] for e in search(copy, "--partner", "hk")] == [
        "queued",
        "rejected",
        "queued",
        "queued",
    ]


def test_resend_one_exchange_and_show_its_timeline(
    sim: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    """A failed exchange is resent once the partner is back, same key; show tells the whole story."""
    root = catalogue(tmp_path / "config")
    journal = tmp_path / "j.sqlite"
    broker = serve(root, journal, sim, tmp_path / "serve.log")
    procs.append(broker)
    url = broker.first_line.rsplit(" ", 1)[1]
    http("POST", f"{sim['hk']}/_sim/behaviour", {"fail_ratio": 1.0, "fail_status": 503})
    try:
        xid = submit(url, "resend-1", hk())
        assert settle(url, [xid]) == {xid: "failed"}
    finally:
        http("POST", f"{sim['hk']}/_sim/behaviour", {})
    replayed = tongban(
        "replay",
        xid,
        "--mode",
        "resend",
        "--reason",
        "TD gateway back",
        "--journal",
        str(journal),
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 (resend), skipped 0" in replayed.stdout
    assert settle(url, [xid]) == {xid: "delivered"}
    _, seen = http("GET", f"{sim['hk']}/_sim/requests")
    assert seen["keys"][xid]["count"] == 1

    show = tongban(
        "journal",
        "show",
        xid,
        "--journal",
        str(journal),
        "--config",
        str(root),
        "--reveal",
        "--reason",
        "ticket 1",
    )
    assert show.returncode == 0, show.stderr
    text = show.stdout
    assert "attempt 1: transient_error, HTTP 503" in text
    assert "attempt 2: transient_error, HTTP 503" in text
    assert f"resend by {os_user()}: 'TD gateway back' (was failed" in text
    assert "attempt 3: delivered, HTTP 200" in text
    assert text.index("retries_exhausted") < text.index("replayed") < text.index("attempt 3:")
    assert '"hkid": "K802133(3)"' in text  # the application and the mapped request
    assert "no difference from today's mapping" in text

    mapping = root / "mappings" / "hk-vl.yaml"
    mapping.write_text(mapping.read_text().replace("value: VLR", "value: VLR-2"), encoding="utf-8")
    changed = tongban(
        "journal",
        "show",
        xid,
        "--journal",
        str(journal),
        "--config",
        str(root),
        "--format",
        "json",
        "--reveal",
        "--reason",
        "ticket 1",
    )
    view = json.loads(changed.stdout)
    assert view["today"]["status"] == "different"
    assert '-  "application_type": "VLR",' in view["today"]["diff"].splitlines()
    assert '+  "application_type": "VLR-2",' in view["today"]["diff"].splitlines()
    assert [a["outcome"] for a in view["attempts"]] == [
        "transient_error",
        "transient_error",
        "delivered",
    ]
    replay_event = next(e for e in view["timeline"] if e["kind"] == "replayed")
    assert replay_event["data"]["by"] == os_user() and replay_event["data"]["mode"] == "resend"
    assert view["idempotency_key"] == "resend-1" and view["mapped"]["application_type"] == "VLR"
    assert broker.stop() == 0


BUGGY_HK_MAPPING = HK_MAPPING.replace("from: applicant.hkid,", "from: applicant.hkid_number,")


def test_a_fixed_mapping_remaps_and_delivers_every_application_it_rejected(
    sim: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    """Bug rejects four; fix the file, SIGHUP, dry run, replay --state rejected remap: all delivered."""
    root = catalogue(tmp_path / "config", hk_mapping=BUGGY_HK_MAPPING)
    journal = tmp_path / "j.sqlite"
    log = tmp_path / "serve.log"
    broker = serve(root, journal, sim, log)
    procs.append(broker)
    url = broker.first_line.rsplit(" ", 1)[1]
    keys = [f"fix-{i}" for i in range(4)]
    ids = [submit(url, key, hk(mark=f"FX{i:04d}")) for i, key in enumerate(keys)]
    assert set(settle(url, ids).values()) == {"rejected"}
    j = ["--journal", str(journal), "--config", str(root)]

    resend = tongban("replay", "--state", "rejected", "--mode", "resend", "--dry-run", *j)
    assert "would replay 0 exchange(s)" in resend.stdout
    assert resend.stdout.count("was never sent (rejected before delivery") == 4

    mapping = root / "mappings" / "hk-vl.yaml"
    mapping.write_text(HK_MAPPING, encoding="utf-8")
    broker.popen.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "catalogue_reloaded" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "catalogue_reloaded" in log.read_text()

    dry = tongban("replay", "--state", "rejected", "--mode", "remap", "--dry-run", *j)
    assert dry.returncode == 0, dry.stderr
    assert "would replay 4 exchange(s) (remap)" in dry.stdout
    assert dry.stdout.count("today's mapping: ok") == 4
    assert "dry run: nothing replayed" in dry.stdout
    unconfirmed = tongban(
        "replay", "--state", "rejected", "--mode", "remap", "--reason", "fixed mapping", *j
    )
    assert unconfirmed.returncode == 2 and "refusing a bulk replay" in unconfirmed.stderr
    assert [e["state"] for e in search(journal)] == ["rejected"] * 4

    done = tongban(
        "replay", "--state", "rejected", "--mode", "remap", "--reason", "fixed mapping", "--yes", *j
    )
    assert done.returncode == 0, done.stderr
    assert "replayed 4 (remap), skipped 0" in done.stdout
    assert set(settle(url, ids).values()) == {"delivered"}
    _, seen = http("GET", f"{sim['hk']}/_sim/requests")
    assert {x: seen["keys"][x]["count"] for x in ids} == dict.fromkeys(ids, 1)
    after = search(journal)
    assert [(e["id"], e["idempotency_key"]) for e in after] == list(
        zip(reversed(ids), reversed(keys), strict=True)
    )
    again = tongban(
        "replay", "--state", "rejected", "--mode", "remap", "--reason", "fixed mapping", "--yes", *j
    )
    assert "nothing to replay" in again.stdout  # replayed exchanges no longer match
    verify = tongban("journal", "verify", "--journal", str(journal))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert broker.stop() == 0


# -- verify and archive -------------------------------------------------------------------------


def test_verify_passes_then_names_a_flipped_byte(world: World, tmp_path: Path) -> None:
    """An untouched journal verifies; one changed byte in an event is named and exits 1."""
    copy = snapshot(world.journal, tmp_path / "copy.sqlite")
    ok = tongban("journal", "verify", "--journal", str(copy))
    with sqlite3.connect(copy) as db:
        total = db.execute("SELECT count(*) FROM events").fetchone()[0]
        seq, xid, data = db.execute(
            "SELECT seq, exchange_id, data FROM events WHERE kind = 'mapped' ORDER BY seq LIMIT 1"
        ).fetchone()
        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0x01
        db.execute("UPDATE events SET data = ? WHERE seq = ?", (bytes(flipped), seq))
    db.close()
    broken = tongban("journal", "verify", "--journal", str(copy))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"ok: {total} events"
    assert broken.returncode == 1
    assert f"broken: event {seq} (mapped of exchange {xid})" in broken.stderr
    assert "hash does not match" in broken.stderr


def test_archive_then_verify_the_archive_alone(world: World, tmp_path: Path) -> None:
    """Closed exchanges leave for the archive; it verifies alone, is never overwritten, tampering shows."""
    copy = snapshot(world.journal, tmp_path / "copy.sqlite")
    out = tmp_path / "2026-11.jsonl.gz"
    nothing = tongban("journal", "archive", "--older-than", "90d", str(out), "--journal", str(copy))
    bad_age = tongban("journal", "archive", "--older-than", "90", str(out), "--journal", str(copy))
    assert nothing.returncode == 0 and "nothing to archive" in nothing.stdout
    assert not out.exists()
    assert bad_age.returncode == 2 and "'90' is not a duration" in bad_age.stderr

    done = tongban("journal", "archive", "--older-than", "0s", str(out), "--journal", str(copy))
    assert done.returncode == 0, done.stderr
    assert "archived 5 exchanges (" in done.stdout
    # alone it holds together but proves nothing of who wrote it (exit 3); the journal's key
    # file proves its signature, and the journal that archived it every event it holds
    alone = tongban("journal", "verify", "--archive", str(out))
    assert alone.returncode == 3, (alone.stdout, alone.stderr)
    keyed = tongban("journal", "verify", "--archive", str(out), "--key-file", f"{copy}.keys")
    assert keyed.returncode == 0, keyed.stderr
    assert keyed.stdout.startswith(f"ok: {out}: 5 exchanges, ")
    journalled = tongban("journal", "verify", "--archive", str(out), "--journal", str(copy))
    assert journalled.returncode == 0, journalled.stderr
    assert search(copy) == []
    assert tongban("journal", "verify", "--journal", str(copy)).returncode == 0
    again = tongban("journal", "archive", "--older-than", "0s", str(out), "--journal", str(copy))
    assert again.returncode == 2 and "never overwritten" in again.stderr

    lines = gzip.decompress(out.read_bytes()).splitlines(keepends=True)
    tampered = tmp_path / "tampered.jsonl.gz"
    tampered.write_bytes(
        gzip.compress(b"".join([lines[0], lines[1].replace(b"w-", b"x-"), *lines[2:]]))
    )
    bad = tongban("journal", "verify", "--archive", str(tampered))
    assert bad.returncode == 1 and "broken:" in bad.stderr


# -- keys -------------------------------------------------------------------------------------


REVEAL = ["--reveal", "--reason", "rekey check"]  # show in clear: the reads checked below


def test_rekey_keeps_verify_and_search_and_a_wrong_key_is_a_clear_error(
    world: World, tmp_path: Path
) -> None:
    """`journal rekey` seals everything under a new key: verify holds, show and search by
    applicant still work, no ID number is in the file; with another key file every command says
    what is wrong (exit 2), never a traceback."""
    copy = snapshot(world.journal, tmp_path / "copy.sqlite")
    xid = world.ids["w-1"]
    keys = copy.with_name("copy.sqlite.keys")
    before = json.loads(keys.read_text())["current"]
    # --force: the copy carries the announcement of the broker that writes the original, and
    # no broker writes the copy (a refused rekey is tested in test_rekey_guard)
    rekeyed = tongban("journal", "rekey", "--journal", str(copy), "--force")
    after = json.loads(keys.read_text())
    show, verify = tongban_all(
        ["journal", "show", xid, "--journal", str(copy), "--config", str(world.root), *REVEAL],
        ["journal", "verify", "--journal", str(copy)],
    )
    found = search(copy, "--applicant", "k802133 (3)")
    stored = b"".join(f.read_bytes() for f in [copy, *copy.parent.glob("copy.sqlite-*")])
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert rekeyed.stdout.startswith("rekeyed: ") and "verify: ok: " in rekeyed.stdout
    assert list(after["data"]) == [after["current"]] and after["current"] != before
    assert show.returncode == 0 and "K802133(3)" in show.stdout
    assert verify.returncode == 0 and verify.stdout.startswith("ok: ")
    assert [e["idempotency_key"] for e in found] == ["w-5", "w-4", "w-1"]
    assert b"K802133" not in stored and "陳大文".encode() not in stored

    keys.write_text(keys.read_text().replace(after["current"], "0badc0de"))
    wrong_show, wrong_verify = tongban_all(
        ["journal", "show", xid, "--journal", str(copy), "--config", str(world.root), *REVEAL],
        ["journal", "verify", "--journal", str(copy)],
    )
    assert wrong_show.returncode == 2, wrong_show.stderr
    assert f"is sealed with key {after['current']}" in wrong_show.stderr
    assert "has no such key" in wrong_show.stderr
    assert wrong_verify.returncode == 1 and "broken: " in wrong_verify.stderr
    keys.unlink()
    lost = tongban("journal", "search", "--journal", str(copy))
    assert lost.returncode == 2 and "is missing: restore it" in lost.stderr
    for out in (wrong_show, wrong_verify, lost):
        assert "Traceback" not in out.stderr


# -- choosing the journal ---------------------------------------------------------------------


def test_journal_urls_by_scheme_migrate_and_refuse_unknown_schemes(tmp_path: Path) -> None:
    """``sqlite:///PATH`` names a file for every command; a scheme no backend serves is exit 2."""
    url = f"sqlite://{tmp_path}/by-url.sqlite"  # tmp_path is absolute: sqlite:///tmp/…
    first = tongban("journal", "migrate", "--journal", url)
    again = tongban("journal", "migrate", "--journal", url)
    search, unknown = tongban_all(
        ["journal", "search", "--journal", str(tmp_path / "by-url.sqlite"), "--format", "json"],
        ["journal", "search", "--journal", "mysql://db.example/tongban"],
    )
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial.sql" in first.stdout
    assert "applied 0008_unconfirmed.sql" in first.stdout
    assert again.stdout.strip() == "the journal schema is up to date (nothing to apply)"
    assert search.returncode == 0 and json.loads(search.stdout) == {"exchanges": [], "next": None}
    assert unknown.returncode == 2 and "unknown scheme" in unknown.stderr
    assert "Traceback" not in unknown.stderr
