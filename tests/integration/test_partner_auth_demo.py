"""The demo's credentials on the shipped configuration: gx's signed requests pass its gateway,
hn's client certificate passes its TLS gateway, and the shipped files are never written to."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import OutboundRequest
from adapters.registry import protocols
from adapters.rest import RestAdapter
from federation.config import load_config
from federation.sim.demo_auth import describe, start_gateways, stop_all
from federation.sim.rest import PartnerSimulator
from tests.conftest import REPO


async def test_demo_gateways_verify_the_shipped_partners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both partners deliver through their gateways; the gateways report what they verified."""
    monkeypatch.setenv("TONGBAN_GX_SIGNING_SECRET", "demo-test-secret-3b7e")
    shipped = load_config(REPO, protocols())
    before = sorted(p.name for p in REPO.iterdir())
    sims = {pid: PartnerSimulator(shipped.partners[pid]) for pid in ("gx", "hn")}
    endpoints = {pid: await sim.start() for pid, sim in sims.items()}
    root, gateways = await start_gateways(shipped, endpoints, tmp_path)
    config = load_config(root, protocols())
    try:
        for pid in ("gx", "hn"):
            partner = config.with_endpoints({pid: endpoints[pid]}).partners[pid]
            adapter = RestAdapter(partner)
            await adapter.start()
            try:
                reply = await adapter.send(
                    OutboundRequest(
                        exchange_id="01JD0000000000000000000000",
                        idempotency_key=f"demo-{pid}",
                        service=next(iter(partner.services)),
                        payload={"sqr": "余丽萍"},
                        attempt=1,
                    )
                )
            finally:
                await adapter.close()
            assert reply.status == 200
            assert sims[pid].requests == 1
    finally:
        await stop_all(gateways)
        for sim in sims.values():
            await sim.stop()
    assert sorted(describe(gateways)) == [
        "gx: 1 of 1 signed requests verified by the partner's gateway",
        "hn: 1 requests over mutual TLS, client certificate tongban demo client",
    ]
    assert endpoints["hn"].startswith("https://")
    assert sorted(p.name for p in REPO.iterdir()) == before  # nothing written beside the config
    assert (root / "certs" / "hn" / "tongban.key").stat().st_mode & 0o077 == 0
