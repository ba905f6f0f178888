"""The OpenAPI document: valid by a validator we did not write, and in step with the app's routes."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from aiohttp import web
from openapi_spec_validator import validate

from federation import contracts
from federation.api.app import create_app
from federation.api.problems import TITLES
from federation.runtime.broker import Broker

REPO = Path(__file__).resolve().parent.parent.parent
# Routes that are no JSON API and so are not in the document: the operators' console (HTML pages)
# and the Prometheus scrape (text exposition format).
EXEMPT = re.compile(r"^(/console(/.*)?|/metrics)$")
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def app_routes(broker: Broker) -> set[tuple[str, str]]:
    """(method, path) of every route the broker's app serves."""
    app: web.Application = create_app(broker)
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in METHODS and not EXEMPT.match(path):
            out.add((route.method, path))
    return out


def documented() -> set[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document."""
    paths = contracts.openapi()["paths"]
    return {(m.upper(), p) for p, item in paths.items() for m in item if m.upper() in METHODS}


def test_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator (not ours) accepts the document as OpenAPI 3.1."""
    doc = contracts.openapi()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


async def test_every_route_is_documented_and_every_operation_served(make_config, broker_at) -> None:
    """The app's routes and the document's operations are the same set (console and metrics aside)."""
    async with broker_at(make_config()) as (broker, _):
        routes = app_routes(broker)
    doc = documented()
    assert routes - doc == set(), "routes the OpenAPI document does not describe"
    assert doc - routes == set(), "operations the app does not serve"
    assert ("POST", "/v1/exchanges") in routes and ("GET", "/openapi.json") in routes


def test_every_problem_title_has_a_documented_type() -> None:
    """Each problem the API titles is in problems.yaml and docs/problems.md, with the same title."""
    types = contracts.problem_types()
    page = (REPO / "docs" / "problems.md").read_text(encoding="utf-8")
    for slug, title in TITLES.items():
        assert slug in types, slug
        assert types[slug].title == title, slug
    for slug in types:
        assert f"`urn:tongban:problem:{slug}`" in page, slug


def test_every_documented_problem_is_titled_as_documented() -> None:
    """Each problem type problems.yaml documents has its title in TITLES, so the API answers the
    documented title (and the catalogues translate it) rather than one made from the slug."""
    untitled = sorted(set(contracts.problem_types()) - set(TITLES))
    assert not untitled, f"problems.yaml types with no title in TITLES: {untitled}"


def test_application_schema_is_embedded_and_resolvable() -> None:
    """The document embeds the application schema; every local $ref in it points somewhere."""
    doc = contracts.openapi()
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert "#/components/schemas/Application" in refs
    for ref in refs:
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]


async def test_contract_pages_are_served(make_config, broker_at) -> None:
    """/openapi.json is the document; /docs and problem pages are HTML with no external asset."""
    root = make_config()
    async with broker_at(root) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.get("/openapi.json") as r:
            assert r.status == 200
            assert await r.json() == contracts.openapi()
        async with http.get("/docs") as r:
            page = await r.text()
            assert r.status == 200 and r.content_type == "text/html"
            assert "/v1/exchanges/{id}/supplements" in page
            assert not re.search(r"(src|href)=\"(https?:)?//", page), "external asset"
            assert "<script" not in page
        for slug in ("mapping-failed", "invalid-application", "body-too-large"):
            async with http.get(f"/problems/{slug}") as r:
                assert r.status == 200
                assert f"urn:tongban:problem:{slug}" in await r.text()
        async with http.get("/problems/no-such-thing") as r:
            assert r.status == 404
            assert (await r.json())["type"] == "urn:tongban:problem:not-found"
        async with http.get("/schemas/application.json") as r:
            assert r.status == 200
            assert (await r.json())["$id"] == "urn:tongban:schema:application"


def test_links_name_operations_that_exist() -> None:
    """Every link of an answer names an operation of the document and fills its path parameters."""
    doc = contracts.openapi()
    operations = {
        op["operationId"]: op
        for item in doc["paths"].values()
        for m, op in item.items()
        if m.upper() in METHODS
    }
    shared = doc["components"]["parameters"]
    links = doc["components"]["responses"]["Accepted"]["links"]
    assert links
    for link in links.values():
        params = [
            shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
            for p in operations[link["operationId"]]["parameters"]
        ]
        assert set(link["parameters"]) == {p["name"] for p in params if p["in"] == "path"}
