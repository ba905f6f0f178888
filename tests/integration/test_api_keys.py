"""Keys on the local API, when partners.yaml declares them: a source submits and reads its own
applications only with its key; search, replay, reload, stats and partners need an operator's.
Without keys declared the API stays open (every other test runs that way)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import pytest

from adapters.registry import protocols
from tests.conftest import HK_APPLICATION
from tests.integration.test_delivery import DONE, settle

PORTAL, CENTRE, OPERATOR = "portal-key-0001", "centre-key-0002", "operator-key-0003"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def keyed_config(make_config) -> Path:
    """The test catalogue with two keyed sources and an operator key."""
    root: Path = make_config()
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "  - id: gd-portal\n    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n",
        "  - id: gd-portal\n    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
        f'    keys_sha256: ["{sha(PORTAL)}"]\n'
        "  - id: gz-centre\n    name: {zh: 广州市政务服务中心, en: Guangzhou Government Services Centre}\n"
        f'    keys_sha256: ["{sha(CENTRE)}"]\n',
        1,
    )
    text = text.replace(
        "sources:\n", f'broker:\n  operator_keys_sha256: ["{sha(OPERATOR)}"]\nsources:\n', 1
    )
    path.write_text(text, encoding="utf-8")
    return root


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def test_a_keyed_source_submits_and_reads_only_with_its_key(
    keyed_config, simulators, broker_at
) -> None:
    body = {
        "source": "gd-portal",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": HK_APPLICATION,
    }
    sims = await simulators(keyed_config)
    submitted: dict[str, int] = {}
    read: dict[str, int] = {}
    async with (
        broker_at(keyed_config, sims) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        for who, key in (("nobody", None), ("another source", CENTRE), ("an operator", OPERATOR)):
            async with http.post(
                "/v1/exchanges",
                json=body,
                headers={**bearer(key), "Idempotency-Key": f"k-{who.replace(' ', '-')}"},
            ) as r:
                submitted[who] = r.status
        async with http.post(
            "/v1/exchanges", json=body, headers={**bearer(PORTAL), "Idempotency-Key": "k-portal"}
        ) as r:
            submitted["its source"] = r.status
            xid = (await r.json())["id"]
        await settle(broker, xid, DONE)
        for who, key in (
            ("nobody", None),
            ("another source", CENTRE),
            ("its source", PORTAL),
            ("an operator", OPERATOR),
        ):
            async with http.get(f"/v1/exchanges/{xid}?include=payloads", headers=bearer(key)) as r:
                read[who] = r.status
        async with http.get("/v1/exchanges/01ARZ3NDEKTSV4RRFFQ69G5FAV") as r:
            unknown_anonymous = r.status
        material = {"material": {"note": "x"}}
        for who, key in (("nobody", None), ("another source", CENTRE), ("its source", PORTAL)):
            async with http.post(
                f"/v1/exchanges/{xid}/supplements",
                json=material,
                headers={**bearer(key), "Idempotency-Key": "s-1"},
            ) as r:
                read[f"supplement by {who}"] = r.status
        refusals = await broker.journal.refusals()
    assert submitted == {
        "nobody": 401,
        "another source": 403,
        "an operator": 403,
        "its source": 202,
    }
    assert read == {
        "nobody": 401,
        "another source": 403,
        "its source": 200,
        "an operator": 200,
        "supplement by nobody": 401,
        "supplement by another source": 403,
        "supplement by its source": 404,  # past the door: this service takes no supplements
    }
    assert unknown_anonymous == 401  # no hint about which exchanges exist
    assert sum(r.problem == "unauthenticated" for r in refusals) == 4
    assert sum(r.problem == "forbidden" for r in refusals) == 4


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/exchanges?state=delivered", None),
        (
            "POST",
            "/v1/replays",
            {
                "mode": "resend",
                "reason": "x",
                "filter": {"state": "failed"},  # one unknown exchange is a 404 since b8db818
                "dry_run": True,
            },
        ),
        ("POST", "/v1/admin/reload", None),
        ("GET", "/v1/stats", None),
        ("GET", "/v1/partners", None),
    ],
)
async def test_support_staffs_endpoints_need_an_operators_key(
    keyed_config, broker_at, method: str, path: str, body: object
) -> None:
    statuses = []
    async with (
        broker_at(keyed_config) as (broker, url),
        aiohttp.ClientSession(base_url=url) as http,
    ):
        for key in (None, PORTAL, OPERATOR):
            async with http.request(method, path, json=body, headers=bearer(key)) as r:
                statuses.append(r.status)
                if r.status >= 400:
                    assert r.content_type == "application/problem+json"
        refusals = await broker.journal.refusals()
    assert statuses[:2] == [401, 403]  # nobody, a source
    assert statuses[2] < 400  # an operator
    assert [r.problem for r in refusals][-2:] in (
        ["forbidden", "unauthenticated"],
        ["unauthenticated", "forbidden"],
    )


def test_keys_must_be_sha256_digests_with_their_line(keyed_config) -> None:
    from federation.config import load_config
    from federation.domain.errors import ConfigError

    path = keyed_config / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(sha(OPERATOR), "operator-key-in-clear"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(keyed_config, protocols())
    [problem] = [p for p in err.value.problems if p.severity == "error"]
    line = text.splitlines().index(f'  operator_keys_sha256: ["{sha(OPERATOR)}"]') + 1
    assert (problem.path, problem.line) == ("broker.operator_keys_sha256[0]", line)
