"""The impact of an edited mapping, run in the console's playground by a user who may reveal
personal data, is a read of the stored applications it is tried on (its ``when:`` conditions tell
what each holds), so it is in the audit trail as a ``reveal``: who, when, from where, the
partner's service and the exchanges tried, the outcome. The entry holds nothing those applications
hold and nothing typed into the edit. The mapping as it is in force, and a viewer's edit (shown no
impact), leave no such entry. Through the real console over HTTP, signed in, on SQLite,
PostgreSQL and in memory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from federation.runtime.broker import Broker
from replay.journal import AuditEntry, Backend, Query, TrailQuery
from tests.conftest import HK_APPLICATION, HK_MAPPING
from tests.integration.test_roles import IDS, KEYS, with_principals
from tests.unit.test_playground_secret_refs import EXAMPLE, SERVICE, post, signed_in
from tests.unit.test_playground_viewer import GUESS, delivered, impact_of

EDITED = HK_MAPPING.replace("response:\n", f"{GUESS}response:\n")
WHAT = "mapping playground: impact of an edited mapping on the latest exchanges"


def leaves(value: Any) -> list[str]:
    """Every text and number an application holds, and each word of a longer one."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in leaves(v)]
    if isinstance(value, list):
        return [t for v in value for t in leaves(v)]
    text = str(value)
    return [text, *(w.strip(",()") for w in text.split() if len(w.strip(",()")) > 3)]


def config(make_config: Any) -> Path:
    """The hk mapping with no field key, a golden example; a viewer, support and an auditor."""
    root = make_config(files={"mappings/hk-vl.examples/renewal.json": EXAMPLE})
    return with_principals(root, ("viewer", "support", "auditor"))


async def run_as(url: str, role: str, text: str) -> str:
    """Sign in to the console as ``role`` and run ``text`` on the golden example; the page."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await signed_in(http, url, role)
        form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
        status, page = await post(http, url, "run", form)
    assert status == 200, page[-1500:]
    return page


async def reveals(broker: Broker) -> list[AuditEntry]:
    """The playground's impact reads in the audit trail, newest first."""
    found = await broker.journal.trail(TrailQuery(action="reveal", limit=100))
    return [e for e in found if e.reason == WHAT]


async def test_an_edited_mappings_impact_is_audited_as_a_reveal(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """Support runs an edit whose field is mapped only for a guessed HKID: the page shows the
    impact on the two stored applications, and one audit entry says who (support's id and role),
    when, from where, hk's service and both exchanges, ok; the auditor finds it by an exchange's
    id. The entry holds no value of the applications and nothing of the edit."""
    root = config(make_config)
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        await delivered(broker, 2)
        ids = [ex.id for ex in await broker.journal.search(Query(partner="hk", limit=50))]
        before = time.time()
        page = await run_as(url, "support", EDITED)
        after = time.time()
        entries = await reveals(broker)
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{url}/v1/audit",
                params={"action": "reveal", "target": ids[-1]},
                headers={"Authorization": f"Bearer {KEYS['auditor']}"},
            ) as r,
        ):
            found = orjson.loads(await r.read())["entries"]
    assert (
        impact_of(page) == "Of the service's latest 2 exchange(s), 2 would map differently. guess"
    )
    [entry] = entries
    assert (entry.who, entry.role, entry.action, entry.outcome) == (
        IDS["support"],
        "support",
        "reveal",
        "ok",
    )
    assert before <= entry.at <= after and entry.remote == "127.0.0.1"
    service, _, tried = entry.target.partition(": ")
    assert service == "hk/TD-VL-RENEW" and sorted(tried.split(",")) == sorted(ids)
    assert [(e["who"], e["target"]) for e in found] == [(IDS["support"], entry.target)]
    held = f"{entry.who} {entry.role} {entry.action} {entry.target} {entry.reason} {entry.outcome}"
    for value in [*leaves(HK_APPLICATION), "K802133", "guess", "equals"]:
        assert value not in held, value


async def test_no_impact_read_is_audited_where_nothing_typed_reads_stored_data(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """The mapping in force (support's run, or a viewer's) tells nothing of what a stored
    application holds, and a viewer's edit is shown no impact: none of them leaves an impact
    reveal in the audit trail; the support's edit does, once."""
    root = config(make_config)
    sims = await simulators(root)
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        await delivered(broker, 1)
        pages = [
            await run_as(url, "support", HK_MAPPING),
            await run_as(url, "viewer", HK_MAPPING),
            await run_as(url, "viewer", EDITED),
        ]
        quiet = await reveals(broker)
        await run_as(url, "support", EDITED)
        after = await reveals(broker)
    assert [impact_of(p) is not None for p in pages] == [True, True, False]
    assert quiet == []
    assert [(e.who, e.target.partition(": ")[0]) for e in after] == [
        (IDS["support"], "hk/TD-VL-RENEW")
    ]
