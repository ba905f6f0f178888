"""Shared fixture factories: small catalogues on disk, simulators and brokers on loopback."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import protocols
from federation.api.server import running_broker
from federation.config import load_config
from federation.runtime.broker import Broker, Submission
from federation.sim.rest import Simulator, simulator_for

REPO = Path(__file__).resolve().parent.parent

PARTNERS_YAML = """\
version: 1
defaults:
  timeouts: {{connect: 1s, read: {read}, total: {total}}}
  retry: {{max_attempts: {max_attempts}, backoff_base: 50ms, backoff_cap: 200ms, jitter: 0}}
sources:
  - id: gd-portal
    name: {{zh: 广东政务服务网, en: Guangdong Government Services Portal}}
partners:
  - id: hk
    name: {{zh: 香港特別行政區政府, en: HKSAR Government}}
    region: {{code: "81", iso: CN-HK}}
    protocol: rest
    endpoint: https://gateway.example.gov.hk/tongban
    concurrency: 8
    services:
      TD-VL-RENEW:
        name: {{zh: 車輛牌照續期, en: Vehicle licence renewal}}
        mapping: mappings/hk-vl.yaml
        path: /vehicle-licences/renewals{hk_schema}
  - id: sc
    name: {{zh: 四川省一体化政务服务平台, en: Sichuan Government Services Platform}}
    region: {{code: "51", iso: CN-SC}}
    protocol: rest
    endpoint: https://tyrz.sczwfw.gov.cn/tongban
    services:
      "115101000000000000-HF-WITHDRAW": mappings/sc-hf.yaml
"""

HK_MAPPING = """\
mapping: 1
partner: hk
service: TD-VL-RENEW
request:
  application_type: {value: VLR}
  vehicle.registration_mark: {from: vehicle.registration_mark, required: true}
  owner.name_en: {from: applicant.name_en, required: true}
  owner.hkid: {from: applicant.hkid, required: true}
  licence.period_months: {from: licence.period_months, default: 12}
response:
  receipt_number: {from: ref_no, required: true}
  status: {from: status, required: true}
"""

SC_MAPPING = """\
mapping: 1
partner: sc
service: 115101000000000000-HF-WITHDRAW
request:
  sqrxm: {from: applicant.name, required: true}
  sfzhm: {from: applicant.id_number, required: true}
  tqje: {from: withdrawal.amount, required: true}
response:
  receipt_number: {from: result.ywlsh, required: true}
  status: result.zt
"""

HK_APPLICATION: dict[str, Any] = {
    "applicant": {"name": "陳大文", "name_en": "CHAN, Tai Man", "hkid": "K802133(3)"},
    "vehicle": {"registration_mark": "AB1234"},
}
SC_APPLICATION: dict[str, Any] = {
    "applicant": {"name": "余丽萍", "id_number": "510104199307070153"},
    "withdrawal": {"amount": "12800.00", "currency": "CNY"},
}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a two-partner catalogue (hk, sc) into a fresh directory; returns the directory."""
    counter = iter(range(1000))

    def make(
        *,
        read: str = "2s",
        total: str = "5s",
        max_attempts: int = 5,
        hk_mapping: str = HK_MAPPING,
        hk_schema: str | None = None,
        files: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / f"config{next(counter)}"
        (root / "mappings").mkdir(parents=True)
        schema_line = "\n        schema: schemas/hk-vl.json" if hk_schema else ""
        (root / "partners.yaml").write_text(
            PARTNERS_YAML.format(
                read=read, total=total, max_attempts=max_attempts, hk_schema=schema_line
            ),
            encoding="utf-8",
        )
        for name, text in {
            **(files or {}),
            **({"schemas/hk-vl.json": hk_schema} if hk_schema else {}),
        }.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
        (root / "mappings" / "hk-vl.yaml").write_text(textwrap.dedent(hk_mapping), encoding="utf-8")
        (root / "mappings" / "sc-hf.yaml").write_text(SC_MAPPING, encoding="utf-8")
        return root

    return make


@pytest.fixture
async def simulators() -> AsyncIterator[Callable[..., Any]]:
    """Start a simulator for every partner of a config directory; stopped after the test."""
    started: list[Simulator] = []

    async def start(root: Path) -> dict[str, Simulator]:
        config = load_config(root, protocols())
        sims = {pid: simulator_for(p, seed=7) for pid, p in config.partners.items()}
        for sim in sims.values():
            await sim.start()
            started.append(sim)
        return sims

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
def broker_at(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """A running broker with its HTTP API on loopback, journal in tmp_path, sending to simulators."""

    def at(
        root: Path,
        sims: dict[str, Simulator] | None = None,
        *,
        journal: Path | None = None,
        lease: float | None = None,
        poll_interval: float = 0.05,
        journal_obj: Any = None,
    ) -> contextlib.AbstractAsyncContextManager[tuple[Broker, str]]:
        endpoints = {pid: sim.url for pid, sim in (sims or {}).items()}
        return running_broker(
            root=root,
            journal_path=journal or tmp_path / "journal.sqlite",
            port=0,
            endpoints=endpoints,
            lease=lease,
            poll_interval=poll_interval,
            journal=journal_obj,
        )

    return at


def hk_submission(key: str = "key-1", **changes: Any) -> Submission:
    """A valid submission to the hk partner."""
    fields: dict[str, Any] = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "idempotency_key": key,
        "application": HK_APPLICATION,
    }
    fields.update(changes)
    return Submission(**fields)


@pytest.fixture
async def postgres() -> AsyncIterator[Any]:
    """A fresh PostgreSQL schema (tests/integration/pg.py), dropped after; skips without a server.

    Under CI (the CI environment variable set) an unreachable server fails the test instead.
    """
    from tests.integration.pg import fresh_schema

    async with fresh_schema() as pg:
        yield pg
