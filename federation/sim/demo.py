"""``tongban demo``: the broker's main job on loopback, end to end, with nothing to set up.

Starts a simulator for every partner in partners.yaml, the broker on a temporary SQLite journal, and
submits every golden example marked ``demo: true`` through the real HTTP API; then shows where each
application ended up. Then it takes applications through a correction round (补正) to completion:
with a partner that calls back (the demo plays the partner, posting its status notices) and with one
that is polled (Hong Kong's TD over SOAP: its simulator asks for more material first). Last, it plays
the local system deciding on what Hong Kong and Macao filed (asking Hong Kong for more material
first) and each partner reading the decisions back with its key, and hearing them as notices in
its own format (Hong Kong's JSON, Macao's NotificarDecisao), read from its simulator's own log.
Exit status 0 only if every application was delivered, every round completed and every notice
heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from federation.api.server import running_broker
from federation.config import LOCAL
from federation.mapping.examples import Example, load_examples
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.notices import channel_partner
from federation.sim.demo_auth import describe, start_gateways, stop_all
from federation.sim.gateway import Gateway
from federation.sim.rest import Behaviour, PartnerSimulator, Simulator, simulator_for

TERMINAL = {"delivered", "failed", "rejected"}
POLL_EVERY = 0.2  # the demo's polled partners are asked this often (partners.yaml: minutes)
# What the originating system supplies when a partner asks for more material, by partner.
MATERIAL: dict[str, dict[str, Any]] = {
    "hi": {
        "note": "补交普通话水平测试等级证书",
        "attachments": [
            {
                "kind": "putonghua_certificate",
                "title": "普通话水平测试等级证书",
                "file": "tbfile://hi/demo/putonghua.pdf",
            }
        ],
    },
    "hk": {
        "note": "Cover note of third-party insurance for the new licence period",
        "attachments": [
            {
                "kind": "insurance_cover_note",
                "title": "Cover note MTP2405118376",
                "file": "tbfile://hk/demo/cover-note.pdf",
            }
        ],
    },
}


@dataclass(frozen=True, kw_only=True)
class DemoItem:
    partner: str
    service: str
    example: Example
    inbound_from: str | None = None  # filed by this partner with us, for the local system


def demo_items(catalogue: Catalogue) -> list[DemoItem]:
    """Every demo-marked golden example of every configured service, in catalogue order."""
    items = []
    for partner in catalogue.config.partners.values():
        for service in partner.services.values():
            for ex in load_examples(service.mapping):
                if ex.demo:
                    items.append(
                        DemoItem(
                            partner=partner.id,
                            service=service.code,
                            example=ex,
                            inbound_from=service.inbound_from,
                        )
                    )
    return items


async def run_demo(
    *,
    root: Path,
    console: Console,
    keep_running: bool = False,
    port: int = 0,
    wait: float = 60.0,
) -> int:
    """Run the demo; returns the process exit status."""
    catalogue = await asyncio.to_thread(load_catalogue, root)
    items = demo_items(catalogue)
    if not items:
        console.print('[red]no golden example is marked "demo": true; nothing to submit[/]')
        return 1
    sims = _simulators(catalogue)
    notice_sims = _notice_simulators(catalogue)
    keys = _demo_keys(catalogue)
    with tempfile.TemporaryDirectory(prefix="tongban-demo-") as tmp:
        journal = Path(tmp) / "journal.sqlite"
        gateways: list[Gateway] = []  # before partners that sign or present certificates
        try:
            endpoints = {pid: await sim.start() for pid, sim in sims.items()}
            for key, (notice_sim, path) in notice_sims.items():  # partners hearing by REST
                endpoints[key] = await notice_sim.start() + path
            broker_root, gateways = await start_gateways(catalogue.config, endpoints, Path(tmp))
            async with running_broker(
                root=broker_root,
                journal_path=journal,
                port=port,
                endpoints=endpoints,
                poll_interval=0.2,
                status_poll_every=POLL_EVERY,
                inbound_keys={
                    pid: hashlib.sha256(k.encode()).hexdigest() for pid, k in keys.items()
                },
            ) as (_broker, url):
                console.print(
                    f"broker on [bold]{url}[/], journal {journal}, "
                    f"{len(sims)} partner simulators on loopback"
                )
                rounds_ended, all_delivered = await _play(
                    url, catalogue, items, keys, console, wait
                )
                heard = await _notices_heard(catalogue, sims, notice_sims, console, wait)
                console.print("\n".join(describe(gateways)))  # what each gateway verified
                if not rounds_ended or not heard:
                    return 1
                left = await _leave_one_to_replay(url, catalogue, items, sims, wait)
                console.print(
                    f"console: [bold]{url}/console/[/] (exchange {left} is left to replay)"
                )
                if keep_running:
                    console.print(f"broker still running at {url} (Ctrl-C to stop)")
                    await _wait_for_signal()
                return 0 if all_delivered else 1
        finally:
            for sim in [*sims.values(), *(s for s, _ in notice_sims.values())]:
                await sim.stop()
            await stop_all(gateways)


def _simulators(catalogue: Catalogue) -> dict[str, Simulator]:
    """A simulator for every partner; polled partners that take supplements ask for more first."""
    sims = {pid: simulator_for(p) for pid, p in catalogue.config.partners.items()}
    for pid, sim in sims.items():
        if pid in MATERIAL and hasattr(sim, "ask_for_more_material"):
            sim.ask_for_more_material()  # a polled partner's first answer: 补正
    return sims


def _notice_simulators(catalogue: Catalogue) -> dict[str, tuple[PartnerSimulator, str]]:
    """A REST simulator for each partner that hears notices under its inbound.callback, by
    ``<partner>:callback`` (the broker's endpoint override), with the callback's own path."""
    out: dict[str, tuple[PartnerSimulator, str]] = {}
    for pid, partner in catalogue.config.partners.items():
        inbound = partner.inbound
        for service in inbound.services.values() if inbound is not None else ():
            if service.report is not None and service.report.path and inbound and inbound.callback:
                sim = PartnerSimulator(channel_partner(partner, service))
                out[f"{pid}:callback"] = (sim, urlsplit(inbound.callback).path)
    return out


async def _notices_heard(
    catalogue: Catalogue,
    sims: dict[str, Simulator],
    notice_sims: dict[str, tuple[PartnerSimulator, str]],
    console: Console,
    wait: float,
) -> bool:
    """Each partner that hears notices in its own format has heard the last decision (办结), in
    its simulator's own log; shows what it heard. False if one has not within the wait."""
    reporting = {
        pid
        for pid, p in catalogue.config.partners.items()
        if p.inbound and any(s.report for s in p.inbound.services.values())
    }
    ok = True
    for pid in sorted(reporting):
        rest = notice_sims.get(f"{pid}:callback")
        log = rest[0] if rest is not None else sims.get(pid)
        deadline = time.monotonic() + wait
        while not (notices := _notices_in(log)) or not any(
            k.endswith(":lifecycle:completed") for k in notices
        ):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        if not any(k.endswith(":lifecycle:completed") for k in notices):
            console.print(f"[red]{pid} heard no notice of the last decision[/]")
            ok = False
            continue
        steps = ", ".join(k.split(":", 1)[1] for k in notices)
        last = orjson.dumps(notices[next(reversed(notices))], option=orjson.OPT_NON_STR_KEYS)
        console.print(f"{pid} heard {len(notices)} notices in its own format ({steps}); the last:")
        console.print(f"  {last.decode()}", markup=False)
    return ok


def _notices_in(sim: Simulator | None) -> dict[str, Any]:
    """The notices in a simulator's own log, by idempotency key (``<exchange>:<step>``)."""
    seen: dict[str, Any] = getattr(sim, "seen", {})
    out: dict[str, Any] = {}
    for key, entry in seen.items():
        where = [*getattr(entry, "paths", []), *getattr(entry, "operations", [])]
        if any("/notices" in w or w.startswith("Notificar") for w in where):
            out[key] = entry.first_body
    return out


def _demo_keys(catalogue: Catalogue) -> dict[str, str]:
    """Fresh API keys for the partners that file with us, and for the local system."""
    # Partners filing with us authenticate with keys only they know: the demo makes its own.
    keys = {
        pid: secrets.token_urlsafe(24)
        for pid, p in catalogue.config.partners.items()
        if p.inbound is not None
    }
    if LOCAL in catalogue.config.partners:
        keys[LOCAL] = secrets.token_urlsafe(24)  # the local system reports its decisions
    return keys


async def _play(
    url: str,
    catalogue: Catalogue,
    items: list[DemoItem],
    keys: dict[str, str],
    console: Console,
    wait: float,
) -> tuple[bool, bool]:
    """Submit, follow, run the correction rounds and decisions, show the table.

    Returns whether every round ended (completed) and whether every application was delivered.
    """
    default_source = next(iter(catalogue.config.sources), "")
    results = await _submit_and_follow(url, items, default_source, console, wait, keys)
    rounds = await _correction_rounds(url, catalogue, items, results, keys, wait)
    rounds += await _decisions_back(url, items, results, keys, wait)
    await _refresh(url, results)  # polled partners have had their say meanwhile
    _show(console, items, results)
    delivered = sum(1 for r in results if r.get("state") == "delivered")
    console.print(f"{delivered} of {len(items)} applications delivered")
    for line in rounds:
        console.print(line)
    rounds_ended = all(line.endswith("completed") for line in rounds)
    return rounds_ended, delivered == len(items)


async def _submit_and_follow(
    url: str,
    items: list[DemoItem],
    default_source: str,
    console: Console,
    wait: float,
    keys: dict[str, str],
) -> list[dict[str, Any]]:
    """Submit every item through the API, then follow each until it ends (or the wait is up)."""
    run = uuid.uuid4().hex[:8]
    results: list[dict[str, Any]] = [{} for _ in items]
    async with aiohttp.ClientSession(base_url=url) as http:
        ids: list[str | None] = []
        for i, item in enumerate(items):
            path, body, headers = _submission(item, default_source, keys, f"demo-{run}-{i:03d}")
            async with http.post(path, json=body, headers=headers) as resp:
                answer = await resp.json(content_type=None)
                if resp.status in (200, 202):
                    ids.append(answer["id"])
                else:
                    ids.append(None)
                    results[i] = {"state": f"refused {resp.status}", "detail": answer.get("detail")}
        await _follow_deliveries(http, ids, results, console, wait)
    return results


def _submission(
    item: DemoItem, default_source: str, keys: dict[str, str], idempotency_key: str
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The API path, body and headers that submit ``item``."""
    headers = {"Idempotency-Key": idempotency_key}
    if item.inbound_from is not None:
        # A partner files this one with us, for the local system.
        headers["Authorization"] = f"Bearer {keys[item.inbound_from]}"
        body = {"service": item.service, "application": item.example.application}
        return f"/v1/partners/{item.inbound_from}/applications", body, headers
    body = {
        "source": item.example.source or default_source,
        "partner": item.partner,
        "service": item.service,
        "application": item.example.application,
    }
    return "/v1/exchanges", body, headers


async def _follow_deliveries(
    http: aiohttp.ClientSession,
    ids: list[str | None],
    results: list[dict[str, Any]],
    console: Console,
    wait: float,
) -> None:
    """Poll every submitted exchange into ``results`` until all have ended, with a progress bar."""
    progress = Progress(
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    deadline = time.monotonic() + wait
    with progress:
        task = progress.add_task("deliver", total=len(ids))
        while True:
            done = 0
            for i, xid in enumerate(ids):
                if xid is not None and results[i].get("state") not in TERMINAL:
                    async with http.get(f"/v1/exchanges/{xid}") as resp:
                        results[i] = await resp.json()
                if xid is None or results[i].get("state") in TERMINAL:
                    done += 1
            progress.update(task, completed=done)
            if done == len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)


async def _correction_rounds(
    url: str,
    catalogue: Catalogue,
    items: list[DemoItem],
    results: list[dict[str, Any]],
    keys: dict[str, str],
    wait: float,
) -> list[str]:
    """Take each delivered application whose partner takes supplements through a correction round
    (补正) to completion, playing the originating system (and the partner, if it calls back)."""
    lines = []
    async with aiohttp.ClientSession(base_url=url) as http:
        for item, res in zip(items, results, strict=True):
            partner = catalogue.config.partners[item.partner]
            mapping = catalogue.mapping(item.partner, item.service)
            options = partner.services[item.service].options.get(partner.protocol)
            polled = getattr(options, "poll_every", None) is not None
            if (
                res.get("state") != "delivered"
                or item.partner not in MATERIAL
                or mapping is None
                or mapping.status is None
                or mapping.supplement is None
                or not (polled or item.partner in keys)
            ):
                continue
            follow = _Follow(http, res["id"], wait)
            if polled:  # the partner's own answers, polled: it asks for more material first
                await follow.until({"correction_required"})
            else:
                await _notice(http, item.partner, keys, res, "BZ", "请补充普通话水平测试等级证书")
            async with http.post(
                f"/v1/exchanges/{res['id']}/supplements",
                json={"material": MATERIAL[item.partner]},
                headers={"Idempotency-Key": f"{res['idempotency_key']}-supplement-1"},
            ) as r:
                child = (await r.json())["id"]
            await _Follow(http, child, wait).delivered()
            if polled:
                view = await follow.until({"completed", "refused", "not_accepted"})
            else:
                for code in ("SL", "PZ", "BJ"):
                    await _notice(http, item.partner, keys, res, code)
                view = await follow.until({"completed"})
            res.update(view)  # the table shows where it ended
            steps = " → ".join(s["state"] for s in view.get("lifecycle", []))
            how = "polled" if polled else "by callback"
            lines.append(f"correction round {item.partner} ({how}) {res['id']}: {steps}")
    return lines


# The local authority's decisions on what partners filed with us, in tongban's vocabulary.
DECISIONS = (
    {"lifecycle": "accepted"},
    {"lifecycle": "approved", "note": "准予许可"},
    {"lifecycle": "completed"},
)
# What a partner supplies when the local authority asks for more, in the partner's own format.
PARTNER_MATERIAL: dict[str, dict[str, Any]] = {
    "hk": {
        "remarks": "Tenancy agreement as proof of the Guangzhou address",
        "supporting_documents": [
            {
                "document_type": "ADDRESS_PROOF",
                "title": "Tenancy agreement, Tianhe",
                "file_uri": "hkfile://dpo/demo/tenancy.pdf",
            }
        ],
    },
}


async def _decisions_back(
    url: str,
    items: list[DemoItem],
    results: list[dict[str, Any]],
    keys: dict[str, str],
    wait: float,
) -> list[str]:
    """Play the local system deciding on each application a partner filed, then the partner
    asking (with its key) what became of it: Guangdong's decision flows back."""
    lines = []
    async with aiohttp.ClientSession(base_url=url) as http:
        for item, res in zip(items, results, strict=True):
            if item.inbound_from is None or res.get("state") != "delivered":
                continue
            pid, key = item.inbound_from, res["idempotency_key"]
            partner = {"Authorization": f"Bearer {keys[pid]}"}

            async def decide(decision: dict[str, str], xid: str = res["id"]) -> None:
                async with http.post(
                    f"/v1/exchanges/{xid}/lifecycle",
                    json=decision,
                    headers={"Authorization": f"Bearer {keys[LOCAL]}"},
                ) as r:
                    r.raise_for_status()

            if pid in PARTNER_MATERIAL:  # 补正 first: the partner supplies what is missing
                await decide({"lifecycle": "correction_required", "note": "请补充住址证明"})
                async with http.post(
                    f"/v1/partners/{pid}/applications/{key}/supplements",
                    json={"material": PARTNER_MATERIAL[pid]},
                    headers={**partner, "Idempotency-Key": f"{key}-supplement-1"},
                ) as r:
                    r.raise_for_status()
                    child = (await r.json())["id"]
                await _Follow(http, child, wait).delivered()
            for decision in DECISIONS:
                await decide(decision)
            async with http.get(f"/v1/partners/{pid}/applications/{key}", headers=partner) as r:
                seen = await r.json()
            res["lifecycle"] = seen["lifecycle"]  # the table shows where it ended
            steps = " → ".join(s["state"] for s in seen["lifecycle"])
            lines.append(f"decision back to {pid} {res['id']}: {steps}")
    return lines


async def _notice(
    http: aiohttp.ClientSession,
    pid: str,
    keys: dict[str, str],
    res: dict[str, Any],
    code: str,
    note: str | None = None,
) -> None:
    """The partner's status notice (the Hainan bureau's dialect: blzt, blyj)."""
    body = {"idempotency_key": res["idempotency_key"], "blzt": code}
    if note:
        body["blyj"] = note
    headers = {"Authorization": f"Bearer {keys[pid]}"}
    async with http.post(f"/v1/partners/{pid}/status", json=body, headers=headers) as r:
        r.raise_for_status()


@dataclass
class _Follow:
    """Watches one exchange through the API until it gets somewhere (or the demo's wait is up)."""

    http: aiohttp.ClientSession
    xid: str
    wait: float

    async def _view(self) -> dict[str, Any]:
        async with self.http.get(f"/v1/exchanges/{self.xid}") as r:
            view: dict[str, Any] = await r.json()
            return view

    async def delivered(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait
        while (view := await self._view())["state"] not in TERMINAL:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        return view

    async def until(self, states: set[str]) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait
        while True:
            view = await self._view()
            steps = view.get("lifecycle") or []
            if (steps and steps[-1]["state"] in states) or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.1)


async def _refresh(url: str, results: list[dict[str, Any]]) -> None:
    """Where each delivered application stands now (the table's "at the partner")."""
    async with aiohttp.ClientSession(base_url=url) as http:
        for res in results:
            if res.get("state") == "delivered" and res.get("id"):
                async with http.get(f"/v1/exchanges/{res['id']}") as r:
                    res["lifecycle"] = (await r.json()).get("lifecycle") or res.get("lifecycle")


def _show(console: Console, items: list[DemoItem], results: list[dict[str, Any]]) -> None:
    table = Table(title="tongban demo: where every application went")
    table.add_column("exchange", no_wrap=True)
    table.add_column("partner", no_wrap=True)
    table.add_column("application", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("at the partner", no_wrap=True)
    table.add_column("receipt", overflow="fold")
    for item, res in zip(items, results, strict=True):
        receipt = res.get("receipt") or {}
        state = str(res.get("state", "?"))
        colour = "green" if state == "delivered" else "red"
        shown = receipt.get("receipt_number") or (res.get("last_error") or {}).get("message") or ""
        table.add_row(
            str(res.get("id", "-")),
            f"{item.inbound_from} → local" if item.inbound_from else item.partner,
            item.example.file.stem,
            f"[{colour}]{state}[/]",
            (res.get("lifecycle") or [{}])[-1].get("state", ""),
            str(shown),
        )
    console.print(table)


async def _leave_one_to_replay(
    url: str, catalogue: Catalogue, items: list[DemoItem], sims: dict[str, Simulator], wait: float
) -> str | None:
    """One more application, to a REST partner that refuses it this once (HTTP 400): a rejected
    exchange that the console's replay then delivers (it is not in the results table)."""
    outbound = [i for i in items if i.inbound_from is None]
    item = next((i for i in outbound if isinstance(sims.get(i.partner), PartnerSimulator)), None)
    if item is None:
        return None
    sim = sims[item.partner]
    assert isinstance(sim, PartnerSimulator)
    before, sim.behaviour = sim.behaviour, Behaviour(fail_ratio=1.0, fail_status=400)
    try:
        default_source = next(iter(catalogue.config.sources), "")
        key = f"demo-replay-{uuid.uuid4().hex[:8]}"
        path, body, headers = _submission(item, default_source, {}, key)
        async with aiohttp.ClientSession(base_url=url) as http:
            async with http.post(path, json=body, headers=headers) as resp:
                xid = str((await resp.json(content_type=None)).get("id"))
            await _Follow(http, xid, wait).delivered()  # until it has ended, rejected
        return xid
    finally:
        sim.behaviour = before


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
