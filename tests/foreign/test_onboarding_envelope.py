"""The Fujian open platform (HTTP 200 always, the yes or no in a code envelope), onboarded by YAML
alone under tests/foreign/onboarding/envelope/, driven through a real broker and checked in the
platform's own log: only code 0 is delivered, 1001 is refused, 5003 is retried."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.api.server import running_broker
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker, Submission
from tests.foreign.envelope_platform import REQUEST_ID_HEADER, EnvelopePlatform
from tests.waiting import wait_for

CONFIG = Path(__file__).resolve().parent / "onboarding" / "envelope"
PARTNER = "fj-open"
SERVICE = "11350100003573420Q4000119001001"
VALID_ID = "350102199003071234"
WRONG_CHECK_DIGIT = "350102199003071235"
ENDED = {State.DELIVERED, State.REJECTED, State.FAILED, State.UNCONFIRMED}

Running = Callable[
    ..., contextlib.AbstractAsyncContextManager[tuple[EnvelopePlatform, Broker, str]]
]


def submission(key: str, id_number: str = VALID_ID) -> Submission:
    """An application for the platform with a mainland ID card number."""
    return Submission(
        source="gz-citizen-centre",
        partner=PARTNER,
        service=SERVICE,
        idempotency_key=key,
        application={
            "region_code": "350102001000",
            "applicant": {
                "name": "林秀英",
                "document": {"type": "cn_id_card", "number": id_number},
                "phone": "+8613905910321",
            },
        },
    )


async def ended(broker: Broker, xid: str) -> Exchange:
    """The exchange once it has ended (fails the test at the deadline)."""
    ex: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state in ENDED,
        what=f"exchange {xid} to end",
    )
    return ex


@pytest.fixture
def running(tmp_path: Path) -> Running:
    """The platform on loopback and a broker on the onboarding configuration sending to it."""

    @contextlib.asynccontextmanager
    async def run(busy_first: int = 0) -> AsyncIterator[tuple[EnvelopePlatform, Broker, str]]:
        async with (
            EnvelopePlatform(busy_first=busy_first) as platform,
            running_broker(
                root=CONFIG,
                journal_path=tmp_path / "journal.sqlite",
                port=0,
                endpoints={PARTNER: platform.base_url},
                poll_interval=0.05,
            ) as (broker, url),
        ):
            yield platform, broker, url

    return run


async def test_a_valid_application_is_delivered_once_with_the_accept_number(
    running: Running,
) -> None:
    """Code 0: delivered, the platform's acceptNo is the receipt, and it holds one application."""
    async with running() as (platform, broker, _):
        ex, _ = await broker.submit(submission("fj-valid-1"))
        done = await ended(broker, ex.id)
    log = platform.read_log()
    # the serial number the platform sees is the exchange id (≤ 64 chars, unique per application)
    assert [(e["requestId"], e["code"], e["record"]) for e in log] == [(ex.id, 0, "new")]
    assert done.state is State.DELIVERED and done.attempts == 1
    assert done.receipt is not None
    assert done.receipt["receipt_number"] == log[0]["acceptNo"]
    assert [r["acceptNo"] for r in platform.records()] == [log[0]["acceptNo"]]


async def test_an_id_number_failing_its_check_is_rejected_with_the_platforms_code(
    running: Running,
) -> None:
    """HTTP 200 with code 1001: rejected after exactly one call, the code and message kept."""
    async with running() as (platform, broker, _):
        ex, _ = await broker.submit(submission("fj-bad-id", WRONG_CHECK_DIGIT))
        done = await ended(broker, ex.id)
    assert [(e["requestId"], e["code"]) for e in platform.read_log()] == [(ex.id, 1001)]
    assert platform.records() == []
    assert done.state is State.REJECTED and done.attempts == 1
    error = done.last_error or {}
    assert (error["partner_code"], error["partner_message"]) == (1001, "身份证号码校验失败")
    assert error["status"] == 200
    [attempt] = done.attempt_history()
    assert attempt.outcome is not None and attempt.outcome.value == "permanent_error"
    assert attempt.error is not None and attempt.error["partner_code"] == 1001


async def test_a_busy_platform_is_retried_with_the_same_serial_number(running: Running) -> None:
    """Code 5003 twice, then 0: retried like a 5xx with the same X-Request-Id, delivered once."""
    async with running(busy_first=2) as (platform, broker, url):
        ex, _ = await broker.submit(submission("fj-busy-1"))
        done = await ended(broker, ex.id)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/v1/exchanges/{ex.id}") as resp:
                view = await resp.json()
    log = platform.read_log()
    assert [(e["requestId"], e["code"], e["record"]) for e in log] == [
        (ex.id, 5003, None),
        (ex.id, 5003, None),
        (ex.id, 0, "new"),
    ]
    assert done.state is State.DELIVERED
    outcomes = [a.outcome.value for a in done.attempt_history() if a.outcome is not None]
    assert outcomes == ["transient_error", "transient_error", "delivered"]
    sent = {a.request["headers"][REQUEST_ID_HEADER] for a in done.attempt_history()}
    assert sent == {ex.id}
    assert view["state"] == "delivered" and view["last_error"] is None
    assert view["previous_error"]["partner_code"] == 5003


async def test_the_same_key_twice_is_one_application_at_the_platform(running: Running) -> None:
    """A second submission with the key, then a resend of the delivered exchange: the platform
    answers its first acceptNo (duplicate) and holds one application."""
    async with running() as (platform, broker, url):
        first, created = await broker.submit(submission("fj-twice"))
        again, created_again = await broker.submit(submission("fj-twice"))
        done = await ended(broker, first.id)
        async with aiohttp.ClientSession() as http:
            body = {"mode": "resend", "exchange_id": first.id, "reason": "check the platform"}
            async with http.post(f"{url}/v1/replays", json=body) as resp:
                assert resp.status == 200, await resp.text()
        resent = await wait_for(
            lambda: broker.get(first.id),
            lambda ex: ex is not None and ex.state is State.DELIVERED and ex.attempts == 2,
            what="the resent exchange to be delivered again",
        )
    log = platform.read_log()
    assert (created, created_again, again.id) == (True, False, first.id)
    assert [(e["code"], e["record"]) for e in log] == [(0, "new"), (0, "repeat")]
    assert len(platform.records()) == 1
    assert done.receipt == resent.receipt
    assert log[0]["acceptNo"] == log[1]["acceptNo"]


def test_the_onboarding_configuration_passes_check_and_its_golden_examples() -> None:
    """`tongban check` and `tongban mapping test --all` accept the YAML-only onboarding."""

    def tongban(*args: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "federation", *args, "--config", str(CONFIG)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    check = tongban("check")
    assert check.returncode == 0, check.stderr
    golden = tongban("mapping", "test", "--all")
    assert golden.returncode == 0, golden.stdout + golden.stderr
    assert golden.stdout.strip().splitlines()[-1] == "3 golden examples, 0 failed"
