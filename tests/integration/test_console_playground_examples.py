"""The mapping playground on the shipped catalogue: every service's mapping, unedited, run against
every one of its golden examples on a running broker answers 200 and shows the mapped request as
the example expects it (dates and amounts as text, as the partner receives them) or the example's
errors; a mapping text the YAML reader refuses is answered 422 with its problem."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from federation.api.server import running_broker
from federation.config.headers import EXCHANGE_KEY, HEADERS_KEY
from federation.runtime.broker import Broker
from tests.conftest import REPO
from tests.integration.test_console_playground_limits import viewer_session
from tests.integration.test_roles import with_principals
from tests.integration.test_soap_lifecycle import catalogue_copy

ON_THE_BROKERS_LOOP = pytest.mark.asyncio(loop_scope="module")  # the module's broker runs there


def _runs() -> list[Any]:
    """(mapping file, example file) of every shipped mapping's golden examples."""
    return [
        pytest.param(mapping, example, id=f"{mapping.parent.name}-{mapping.stem}-{example.stem}")
        for mapping in sorted((REPO / "mappings").glob("*/*.yaml"))
        for example in sorted(mapping.with_name(mapping.stem + ".examples").glob("*.json"))
    ]


RUNS = _runs()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shipped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Broker, str]]:
    """A broker serving a copy of the shipped catalogue, with a viewer; and its base URL."""
    copy = catalogue_copy(tmp_path_factory.mktemp("shipped") / "config")
    root = with_principals(copy, ("viewer",))
    async with running_broker(root=root, journal_path=root / "journal.sqlite", port=0) as both:
        yield both


@pytest_asyncio.fixture(loop_scope="module")
async def viewer(
    shipped: tuple[Broker, str],
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A viewer's signed-in session on that broker and its form token."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http, await viewer_session(http, shipped[1])


def _read(mapping: Path, example: Path) -> tuple[str, dict[str, Any]]:
    """The mapping's text as shipped, and the example."""
    return mapping.read_text(encoding="utf-8"), orjson.loads(example.read_bytes())


def _service_of(broker: Broker, mapping: Path) -> tuple[str, str]:
    """The (partner, service) the playground offers ``mapping`` under (``local`` for inbound)."""
    for key, compiled in broker.catalogue.mappings.items():
        if compiled.path.name == mapping.name and compiled.path.parent.name == mapping.parent.name:
            return key
    raise AssertionError(f"{mapping.name} has golden examples but no service uses it")


@ON_THE_BROKERS_LOOP
async def test_every_service_is_run_with_examples(shipped: tuple[Broker, str]) -> None:
    """The runs below cover the catalogue: every service's mapping, with at least one example."""
    covered = {(m.values[0].parent.name, m.values[0].name) for m in RUNS}
    offered = {(m.path.parent.name, m.path.name) for m in shipped[0].catalogue.mappings.values()}
    assert offered <= covered
    assert len(offered) >= 15


@ON_THE_BROKERS_LOOP
@pytest.mark.parametrize(("mapping", "example"), RUNS)
async def test_each_golden_example_runs_in_the_playground(
    shipped: tuple[Broker, str],
    viewer: tuple[aiohttp.ClientSession, str],
    mapping: Path,
    example: Path,
) -> None:
    """The unedited mapping on one of its examples: 200, and the mapped request shown is what the
    example expects, as JSON text (a date as 2025-04-28, an amount as "5794.00", CJK as it is);
    an example of errors is shown as errors."""
    (broker, url), (http, csrf) = shipped, viewer
    partner, service = _service_of(broker, mapping)
    text, golden = await asyncio.to_thread(_read, mapping, example)
    form = {"csrf": csrf, "partner": partner, "service": service, "text": text}
    form["example"] = example.name
    async with http.post(f"{url}/console/playground/run", data=form) as r:
        page = await r.text()
        assert r.status == 200, page[-3000:]
    shown = re.search(r'<pre id="mapped-request">(.*?)</pre>', page, re.DOTALL)
    if golden.get("expected") is None:
        assert shown is None and 'id="problems"' in page
        return
    assert shown is not None, page[-3000:]
    assert "\\u" not in shown.group(1), "CJK is shown as it is, not escaped"
    request = json.loads(html.unescape(shown.group(1)))
    request.pop(HEADERS_KEY, None)
    request.pop(EXCHANGE_KEY, None)
    assert request == golden["expected"]


@ON_THE_BROKERS_LOOP
@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("mapping: 1\nrequest:\n  a: {from: b}\x00\n", "#x0000"),
        ("mapping: 1\nrequest:\n  a: {from: b}\x07\n", "#x0007"),
    ],
    ids=["nul", "bell"],
)
async def test_a_text_the_yaml_reader_refuses_is_answered_422(
    shipped: tuple[Broker, str], viewer: tuple[aiohttp.ClientSession, str], text: str, said: str
) -> None:
    """A character YAML does not allow in a mapping: 422 with the problem at its line, not a 500."""
    (_, url), (http, csrf) = shipped, viewer
    form = {"csrf": csrf, "partner": "hk", "service": "TD-VL-RENEW", "text": text}
    form["example"] = "01-kiosk-guangzhou-12-months.json"
    async with http.post(f"{url}/console/playground/run", data=form) as r:
        page = await r.text()
        assert r.status == 422, page[:2000]
    problems = re.search(r'<ul id="problems">(.*?)</ul>', page, re.DOTALL)
    assert problems is not None
    assert "td-vehicle-licence-renewal.yaml:3:" in problems.group(1)
    assert said in problems.group(1)
