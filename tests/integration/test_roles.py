"""Roles over a running broker: every staff endpoint × every role, the answer and the audit entry
it leaves in the journal; the loopback-only default; partial configurations warned by check."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest

from adapters.registry import protocols
from federation.api.auth import staff_caller
from federation.config import load_config
from federation.domain.errors import RequestRefused
from replay.journal import TrailQuery
from tests.conftest import hk_submission

KEYS = {
    "source": "portal-key-0001",
    "viewer": "viewer-key-0002",
    "support": "support-key-0003",
    "operator": "operator-key-0004",
    "auditor": "auditor-key-0005",
}
IDS = {
    "source": "gd-portal-1",
    "viewer": "wong-v",
    "support": "chan-tm",
    "operator": "lee-op",
    "auditor": "ho-au",
}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def with_principals(root: Path, roles: tuple[str, ...] = tuple(KEYS)) -> Path:
    """``root``'s partners.yaml with a principal for each of ``roles``."""
    lines = ["principals:"]
    for role in roles:
        scope = "source: gd-portal, " if role == "source" else ""
        lines.append(f"  - {{id: {IDS[role]}, role: {role}, {scope}key_sha256: {sha(KEYS[role])}}}")
    path = root / "partners.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")
    return root


ROLES = ("anonymous", *KEYS)
# endpoint → (method, path, body, the audit action of a success or None, answer per role)
XID = "{xid}"
ENDPOINTS = {
    "search": (
        "GET",
        "/v1/exchanges?state=received,queued,delivering,delivered",
        None,
        "search",
        {
            "anonymous": 401,
            "source": 403,
            "viewer": 200,
            "support": 200,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "show": (
        "GET",
        f"/v1/exchanges/{XID}",
        None,
        "show",
        {
            "anonymous": 401,
            "source": 200,
            "viewer": 200,
            "support": 200,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "reveal": (
        "GET",
        f"/v1/exchanges/{XID}?include=payloads&reveal=true&reason=caller+asked",
        None,
        "reveal",
        {
            "anonymous": 401,
            "source": 200,
            "viewer": 403,
            "support": 200,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "replay": (
        "POST",
        "/v1/replays",
        {"mode": "resend", "exchange_id": XID, "reason": "x", "dry_run": True},
        None,
        {
            "anonymous": 401,
            "source": 403,
            "viewer": 403,
            "support": 200,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "reload": (
        "POST",
        "/v1/admin/reload",
        None,
        "reload",
        {
            "anonymous": 401,
            "source": 403,
            "viewer": 403,
            "support": 403,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "stats": (
        "GET",
        "/v1/stats",
        None,
        None,
        {
            "anonymous": 401,
            "source": 403,
            "viewer": 200,
            "support": 200,
            "operator": 200,
            "auditor": 403,
        },
    ),
    "audit": (
        "GET",
        "/v1/audit",
        None,
        "audit",
        {
            "anonymous": 401,
            "source": 403,
            "viewer": 403,
            "support": 403,
            "operator": 403,
            "auditor": 200,
        },
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_role_matrix(make_config, simulators, broker_at, endpoint: str, role: str) -> None:
    """Each role gets the answer its grants say, and the journal's audit trail records it (a
    refusal as refused:<action> with who sent it)."""
    root = with_principals(make_config())
    sims = await simulators(root)
    method, path, body, action, answers = ENDPOINTS[endpoint]
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role in KEYS else {}
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        exchange, _ = await broker.submit(hk_submission("roles-1"))
        target = path.replace(XID, exchange.id)
        data = {k: (exchange.id if v == XID else v) for k, v in body.items()} if body else None
        async with http.request(method, target, json=data, headers=headers) as r:
            status, answer = r.status, await r.json(content_type=None)
        [last] = await broker.journal.trail(TrailQuery(limit=1)) or [None]
    assert status == answers[role], answer
    if status >= 400:
        assert last is not None and last.action.startswith("refused:")
        assert last.who == IDS.get(role, "anonymous")
        assert last.outcome == answer["type"].rsplit(":", 1)[1]
    elif action is not None:
        assert last is not None and (last.action, last.who) == (action, IDS[role])
    if endpoint == "reveal" and status == 200:
        assert answer["application"]["applicant"]["hkid"] == "K802133(3)"
        assert last is not None and (role == "source" or last.reason == "caller asked")


async def test_a_viewer_sees_payloads_masked(make_config, simulators, broker_at) -> None:
    """include=payloads without reveal gives a viewer the shape of the application, no values."""
    root = with_principals(make_config())
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        exchange, _ = await broker.submit(hk_submission("mask-1"))
        async with http.get(
            f"/v1/exchanges/{exchange.id}?include=payloads",
            headers={"Authorization": f"Bearer {KEYS['viewer']}"},
        ) as r:
            view = await r.json()
    assert "K802133" not in str(view) and "陳大文" not in str(view)
    assert set(view["application"]["applicant"]) == {"name", "name_en", "hkid"}


async def test_support_must_give_a_reason_to_reveal(make_config, simulators, broker_at) -> None:
    """reveal=true without a reason is a 403 problem, journalled and audited."""
    root = with_principals(make_config())
    sims = await simulators(root)
    async with broker_at(root, sims) as (broker, url), aiohttp.ClientSession(base_url=url) as http:
        exchange, _ = await broker.submit(hk_submission("why-1"))
        async with http.get(
            f"/v1/exchanges/{exchange.id}?include=payloads&reveal=true",
            headers={"Authorization": f"Bearer {KEYS['support']}"},
        ) as r:
            status = r.status
        [last] = await broker.journal.trail(TrailQuery(limit=1))
    assert status == 403
    assert (last.action, last.who, last.outcome) == ("refused:reveal", "chan-tm", "reveal-refused")


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/exchanges", "GET"),
        ("/v1/stats", "GET"),
        ("/v1/admin/reload", "POST"),
        ("/v1/audit", "GET"),
    ],
)
async def test_with_no_principal_staff_endpoints_answer_loopback_only(
    make_config, broker_at, path: str, method: str
) -> None:
    """Keys for sources only: staff endpoints answer loopback (as `loopback`), not the network."""
    root = with_principals(make_config(), ("source",))
    config = load_config(root, protocols())
    async with broker_at(root) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.request(method, path) as r:
            local = r.status
    assert local == 200

    # the same decision as seen from another address
    class Remote:
        remote = "203.0.113.9"
        headers: ClassVar[dict[str, str]] = {}

    class Catalogue:
        pass

    Catalogue.config = config  # type: ignore[attr-defined]

    class FakeBroker:
        catalogue = Catalogue

    action = {
        "/v1/exchanges": "search",
        "/v1/stats": "stats",
        "/v1/admin/reload": "reload",
        "/v1/audit": "audit",
    }[path]
    with pytest.raises(RequestRefused, match="only on loopback"):
        staff_caller(Remote(), FakeBroker(), action)  # type: ignore[arg-type]


def test_check_warns_on_partial_configurations(make_config) -> None:
    """A keyless source beside a keyed one, no operator and no auditor: each a warning at its line."""
    root = make_config()
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "sources:\n",
        "sources:\n  - id: gz-centre\n    name: {zh: 广州, en: Guangzhou}\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    with_principals(root, ("source", "viewer"))
    config = load_config(root, protocols())
    warnings = [str(w) for w in config.warnings]
    assert any(
        "source 'gd-portal' has no key" in w or "source 'gz-centre' has no key" in w
        for w in warnings
    )
    assert any("no operator principal" in w for w in warnings)
    assert any("no auditor principal" in w for w in warnings)
    assert all(re.search(r"partners\.yaml:\d+: warning: ", w) for w in warnings), warnings
