"""The refusal budget (federation/api/budget.py) on a clock the test moves: refusals journalled one
by one per address and in all, bodies kept within their bytes, the rest counted into one summary
row per address per window; bounded memory; and its settings in partners.yaml
(``broker.refusal_budget``), checked with their lines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import yaml
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry, Counter

from federation import contracts
from federation.api.budget import SUMMARIES, SUMMARY_PROBLEM, RefusalBudget, address_key
from federation.config.refusals import RefusalBudgetSettings
from federation.logging import capture_logs
from replay.journal import Journal, Refusal
from tests.unit.test_config import (  # noqa: F401 (fixtures)
    Load,
    Problems,
    load,
    partner,
    problems,
    write_config,
)
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
AT = 1_796_000_000.0  # the refusals' own (wall) time


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def refused(
    remote: str = "192.0.2.7", body: bytes = b"", status: int = 400, problem: str = "bad-request"
) -> Refusal:
    return Refusal(
        at=AT,
        remote=remote,
        method="POST",
        path="/v1/exchanges",
        status=status,
        problem=problem,
        detail="refused",
        idempotency_key=None,
        body=body,
        body_bytes=len(body),
    )


def budget(clock: Clock, **settings: Any) -> RefusalBudget:
    return RefusalBudget(RefusalBudgetSettings(**settings), clock=clock)


def test_an_address_is_kept_one_by_one_up_to_its_burst_then_at_its_rate() -> None:
    clock = Clock()
    b = budget(clock, per_second=2, burst=3)
    kept = [b.admit(refused()) for _ in range(5)]
    assert [k is not None for k in kept] == [True, True, True, False, False]
    clock.now += 1.0  # two more tokens
    assert [b.admit(refused()) is not None for _ in range(3)] == [True, True, False]


def test_past_the_bytes_of_an_address_the_row_is_kept_without_its_body() -> None:
    clock = Clock()
    b = budget(clock, body_bytes_per_minute=2500)
    rows = [b.admit(refused(body=b"x" * 1000)) for _ in range(4)]
    assert [(r.body, r.body_bytes) for r in rows if r is not None] == [
        (b"x" * 1000, 1000),
        (b"x" * 1000, 1000),
        (b"", 1000),
        (b"", 1000),
    ]
    clock.now += 30.0  # half a minute: 1250 bytes back
    again = b.admit(refused(body=b"x" * 1000))
    assert again is not None and again.body == b"x" * 1000


def test_another_address_has_a_budget_of_its_own() -> None:
    clock = Clock()
    b = budget(clock, burst=2, body_bytes_per_minute=1000)
    flood = [b.admit(refused("192.0.2.7", b"x" * 1000)) for _ in range(50)]
    assert sum(r is not None for r in flood) == 2
    other = [b.admit(refused("198.51.100.4", b"y" * 1000)) for _ in range(2)]
    assert [r.body for r in other if r is not None] == [b"y" * 1000, b""]


def test_the_budget_across_all_addresses_holds_against_many_addresses() -> None:
    clock = Clock()
    b = budget(clock, burst=5, total_burst=20, total_per_second=1, total_body_bytes_per_minute=3000)
    kept = [b.admit(refused(f"10.0.{i // 250}.{i % 250}", b"z" * 1000)) for i in range(1000)]
    rows = [r for r in kept if r is not None]
    assert len(rows) == 20
    assert sum(bool(r.body) for r in rows) == 3


def test_an_ipv6_host_is_budgeted_by_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("") == ""
    clock = Clock()
    b = budget(clock, burst=3)
    kept = [b.admit(refused(f"2001:db8:1:2::{i:x}")) for i in range(10)]
    assert sum(r is not None for r in kept) == 3


def test_the_addresses_remembered_are_bounded() -> None:
    clock = Clock()
    b = budget(clock, addresses=16, total_burst=1_000_000)
    for i in range(5000):
        b.admit(refused(f"10.1.{i // 250}.{i % 250}"))
    assert len(b._addresses) == 16


def test_what_was_not_kept_is_one_summary_row_per_address_once_its_window_ends() -> None:
    clock = Clock()
    b = budget(clock, burst=2, body_bytes_per_minute=1500, summary_every=60)
    for _ in range(3):
        b.admit(refused("192.0.2.7", b"x" * 1000))
    for _ in range(4):
        b.admit(refused("192.0.2.7", status=404, problem="not-found"))
    b.admit(refused("198.51.100.4"))
    assert b.due() == []  # the window has not ended
    clock.now += 60.0
    [row] = b.due()
    assert b.due() == []  # once
    assert (row.remote, row.method, row.path, row.status, row.problem) == (
        "192.0.2.7",
        "",
        "",
        404,
        SUMMARY_PROBLEM,
    )
    assert row.body == b"" and row.body_bytes == 2000  # one row's body, one body not kept
    assert row.detail == (
        "5 refusal(s) not kept one by one and 1 kept without the body (2000 bytes of bodies not "
        "kept), from this address between 2026-11-30T00:53:20Z and 2026-11-30T00:53:20Z, past "
        "the refusal budget: 404 not-found ×4, 400 bad-request ×2"
    )


def test_summaries_per_window_are_bounded_the_rest_in_one_row() -> None:
    clock = Clock()
    b = budget(clock, burst=1, addresses=100_000, total_burst=1_000_000)
    for i in range(SUMMARIES + 50):
        for _ in range(3):
            b.admit(refused(f"10.2.{i // 250}.{i % 250}"))
    rows = b.drain()
    assert len(rows) == SUMMARIES + 1
    others = rows[-1]
    assert others.remote == "" and others.detail.startswith("100 refusal(s) not kept")
    assert "addresses past the first 100 of the window" in others.detail


def test_the_metric_counts_by_reason_even_before_it_is_given() -> None:
    clock = Clock()
    b = budget(clock, burst=1, body_bytes_per_minute=10)
    b.admit(refused(body=b"x" * 100))  # kept, its body not
    b.admit(refused())  # not kept
    counter = Counter("not_kept", "test", ["reason"], registry=CollectorRegistry())
    b.configure(RefusalBudgetSettings(burst=1, body_bytes_per_minute=10), counter)
    b.admit(refused())
    assert counter.labels("body_address")._value.get() == 1
    assert counter.labels("row_address")._value.get() == 2


def test_turned_off_every_refusal_is_kept_in_full() -> None:
    clock = Clock()
    b = budget(clock, burst=1, body_bytes_per_minute=0)
    b.configure(None)
    rows = [b.admit(refused(body=b"x" * 1000)) for _ in range(500)]
    assert all(r is not None and r.body for r in rows)
    assert b.drain() == []


class Kept:
    """A journal that keeps the refusals it is given (or hangs, given ``hang``)."""

    def __init__(self, *, hang: bool = False) -> None:
        self.rows: list[Refusal] = []
        self.hang = hang

    async def refuse(self, refusal: Refusal) -> None:
        if self.hang:
            await asyncio.Event().wait()
        self.rows.append(refusal)


async def test_with_no_refusal_to_come_a_timer_writes_the_summary() -> None:
    clock = Clock()
    b = budget(clock, burst=1, summary_every=10)
    journal = Kept()
    for _ in range(3):
        b.admit(refused())
    clock.now += 10.0  # the window has ended; nothing else is refused
    b.watch(cast(Journal, journal))
    await wait_until(lambda: bool(journal.rows), what="the summary row")
    [row] = journal.rows
    assert row.problem == SUMMARY_PROBLEM and row.detail.startswith("2 refusal(s) not kept")
    assert not b.pending


async def test_the_stop_writes_what_is_left_and_gives_up_on_a_journal_that_hangs() -> None:
    clock = Clock()
    b = budget(clock, burst=1)
    b.admit(refused())
    b.admit(refused("192.0.2.8"))
    b.admit(refused("192.0.2.8"))
    journal = Kept()
    await b.close(cast(Journal, journal), 5.0)
    assert [r.remote for r in journal.rows] == ["192.0.2.8"]
    b.admit(refused("192.0.2.8"))
    with capture_logs() as logs:
        await b.close(cast(Journal, Kept(hang=True)), 0.05)
    assert [e["event"] for e in logs if "journalled" in e["event"]] == [
        "refusal_summaries_not_journalled"
    ]


# --- partners.yaml ---------------------------------------------------------------------------


def test_the_budget_is_read_from_partners_yaml(load: Load) -> None:  # noqa: F811
    text = partner() + (
        "broker:\n  refusal_budget: {per_second: 2.5, burst: 40, body_bytes_per_minute: 0, "
        "total_burst: 100, addresses: 500, summary_every: 5m}\n"
    )
    assert load(text).broker.refusal_budget == RefusalBudgetSettings(
        per_second=2.5,
        burst=40,
        body_bytes_per_minute=0,
        total_burst=100,
        addresses=500,
        summary_every=300.0,
    )
    assert load(partner()).broker.refusal_budget == RefusalBudgetSettings()


def test_the_budget_can_be_turned_off(load: Load) -> None:  # noqa: F811
    assert load(partner() + "broker:\n  refusal_budget: false\n").broker.refusal_budget is None
    on = load(partner() + "broker:\n  refusal_budget: true\n").broker.refusal_budget
    assert on == RefusalBudgetSettings()


def test_wrong_budget_settings_are_named_with_their_lines(problems: Problems) -> None:  # noqa: F811
    text = partner() + (
        "broker:\n"
        "  refusal_budget:\n"
        "    per_second: 0\n"
        "    burst: many\n"
        "    total_body_bytes_per_minute: -1\n"
        "    summary_every: 1s\n"
        "    adresses: 10\n"
    )
    assert problems(text) == [
        "partners.yaml:12: broker.refusal_budget.per_second: 0 is outside 0.01..100000",
        "partners.yaml:13: broker.refusal_budget.burst: expected a whole number, got text ('many')",
        "partners.yaml:14: broker.refusal_budget.total_body_bytes_per_minute: -1 is outside "
        "0..1073741824",
        "partners.yaml:15: broker.refusal_budget.summary_every: '1s' is outside 10s..1h",
        "partners.yaml:16: broker.refusal_budget.adresses: unknown key (did you mean "
        "'addresses'?); allowed here: addresses, body_bytes_per_minute, burst, per_second, "
        "summary_every, total_body_bytes_per_minute, total_burst, total_per_second",
    ]


def test_the_published_schema_takes_what_the_loader_takes() -> None:
    """partners.yaml's schema: the budget, ``false``, and a misspelt key refused by both."""
    schema = Draft202012Validator(contracts.schema("partners"))
    text = (REPO / "partners.yaml").read_text(encoding="utf-8")
    good = {"per_second": 2.5, "burst": 40, "body_bytes_per_minute": 0, "summary_every": "5m"}
    for budget_value in (good, False):
        document = yaml.safe_load(text)
        document["broker"] = {"refusal_budget": budget_value}
        assert list(schema.iter_errors(document)) == []
    document["broker"] = {"refusal_budget": {"adresses": 10}}
    assert [e.message for e in schema.iter_errors(document)]
