"""The API's contracts over HTTP: ``/openapi.json``, a readable ``/docs`` page (no external
assets), the published JSON Schemas and one page per problem type at ``/problems/<slug>``."""

from __future__ import annotations

import html
from typing import Any

import orjson
from aiohttp import web

from federation import contracts
from federation.api.problems import ProblemError

METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}h3{font-family:monospace;margin-bottom:.2rem}
.m{display:inline-block;min-width:3.5rem;font-weight:bold}.get{color:#06c}.post{color:#083}
pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;font-size:.85rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
"""


def setup(app: web.Application) -> None:
    """Register the contract routes."""
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/schemas/{name}", schema_json)
    app.router.add_get("/problems", problems_page)
    app.router.add_get("/problems/{slug}", problem_page)


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    return web.Response(body=orjson.dumps(contracts.openapi()), content_type="application/json")


async def schema_json(request: web.Request) -> web.Response:
    """A published JSON Schema: ``application.json``, ``partners.json`` or ``mapping.json``."""
    name = request.match_info["name"].removesuffix(".json")
    if name not in contracts.SCHEMAS:
        raise ProblemError(
            404, "not-found", f"no schema {name[:40]!r}; there are: {', '.join(contracts.SCHEMAS)}"
        )
    body = orjson.dumps(contracts.schema(name), option=orjson.OPT_INDENT_2)
    return web.Response(body=body, content_type="application/schema+json")


async def docs_page(request: web.Request) -> web.Response:
    """The OpenAPI document as one readable HTML page."""
    doc = contracts.openapi()
    info = doc["info"]
    parts = [f"<h1>{_e(info['title'])}</h1>", f"<p>{_e(info['summary'])}</p>"]
    parts.append(f"<pre>{_e(info['description'])}</pre>")
    parts.append(
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> · problem types: '
        '<a href="/problems">/problems</a> · the local application format: '
        '<a href="/schemas/application.json">/schemas/application.json</a></p>'
    )
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                parts.append(_operation(path, method, item[method]))
    schemas = doc["components"]["schemas"]
    parts.append("<h2>Schemas</h2>")
    for name, sub in schemas.items():
        parts.append(f'<h3 id="schema-{_e(name)}">{_e(name)}</h3><pre>{_json(sub)}</pre>')
    return _page(info["title"], "".join(parts))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    anchor = op.get("operationId", f"{method}-{path}")
    out = [
        f'<h2 id="{_e(anchor)}"><span class="m {method}">{method.upper()}</span> {_e(path)}</h2>',
        f"<p>{_e(op.get('summary', ''))}</p>",
    ]
    if op.get("description"):
        out.append(f"<p>{_e(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        out.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>about</th></tr>")
        for p in params:
            p = _resolve(p)
            out.append(
                f"<tr><td>{_e(p['name'])}</td><td>{_e(p['in'])}</td>"
                f"<td>{'yes' if p.get('required') else 'no'}</td>"
                f"<td>{_e(p.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out.append(f"<p>request body ({_e(media)}):</p><pre>{_json(content.get('schema'))}</pre>")
    statuses = ", ".join(_e(code) for code in op.get("responses", {}))
    out.append(f"<p>answers: {statuses}</p>")
    return "".join(out)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = contracts.openapi()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    resolved: dict[str, Any] = target
    return resolved


async def problems_page(request: web.Request) -> web.Response:
    """Every problem type, as one page."""
    rows = "".join(
        f'<tr><td><a href="/problems/{_e(t.slug)}">{_e(t.slug)}</a></td>'
        f"<td>{', '.join(map(str, t.status))}</td><td>{_e(t.title)}</td></tr>"
        for t in contracts.problem_types().values()
    )
    body = (
        "<h1>Problem types</h1><p>Every error is RFC 9457 problem details with "
        "<code>type</code> <code>urn:tongban:problem:&lt;slug&gt;</code>.</p>"
        f"<table><tr><th>slug</th><th>status</th><th>title</th></tr>{rows}</table>"
    )
    return _page("Problem types", body)


async def problem_page(request: web.Request) -> web.Response:
    """One problem type: what it means and what to do."""
    slug = request.match_info["slug"]
    found = contracts.problem_types().get(slug)
    if found is None:
        raise ProblemError(404, "not-found", f"no problem type {slug[:40]!r} (see /problems)")
    body = (
        f"<h1>{_e(found.title)}</h1><p><code>urn:tongban:problem:{_e(found.slug)}</code> · "
        f"HTTP {', '.join(map(str, found.status))}</p><p>{_e(found.fix)}</p>"
        '<p><a href="/problems">every problem type</a></p>'
    )
    return _page(found.title, body)


def _page(title: str, body: str) -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def _e(text: Any) -> str:
    return html.escape(str(text))


def _json(value: Any) -> str:
    return _e(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
