"""Console tokens sent with bytes that are not UTF-8 (a cookie's byte aiohttp reads as a lone
surrogate) or with characters outside ASCII (a form's token) match nothing: the sign-in form and
a signed-in form are refused 403 forbidden and journalled as every console form refusal, a
session cookie so sent is no session (to the sign-in page); never a 500. Raw bytes over loopback
sockets, on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from federation.api.console.access import COOKIE, PRE_COOKIE
from tests.integration.test_console_form_refusals import PASSWORD, hidden, post
from tests.integration.test_roles import KEYS, with_principals
from tests.integration.test_unparsed_refusals import kept

FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"


async def sent(url: str, head: bytes, body: bytes = b"") -> bytes:
    """The status line answered to ``head`` (the request line and headers) and ``body``."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    length = f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    writer.write(head + f"Host: x\r\nOrigin: {url}\r\n".encode() + length + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer.split(b"\r\n", 1)[0]


async def test_a_sign_in_token_cookie_not_utf8_is_refused_403(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """The sign-in form's cookie holding \\xff, its form field the rest: 403, one row."""
    root = with_principals(make_config(), ("support",))
    body = urlencode({"key": KEYS["support"], "password": PASSWORD, "pre": "abc"}).encode()
    cookie = f"Cookie: {PRE_COOKIE}=".encode() + b"ab\xffc\r\n"
    async with broker_at(root, journal_obj=journal_of) as (broker, url):
        status = await sent(url, b"POST /console/sign-in HTTP/1.1\r\n" + FORM + cookie, body)
        rows = await kept(broker.journal, 1)
    assert status == b"HTTP/1.1 403 Forbidden"
    assert [(r.method, r.path, r.status, r.problem, r.body_bytes) for r in rows] == [
        ("POST", "/console/sign-in", 403, "forbidden", len(body))
    ]
    assert rows[0].detail == "the sign-in form's token does not match; reload it"


async def test_a_form_token_outside_ascii_is_refused_403(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """Signed in, a sign-out whose form token is 密鑰 (UTF-8, not ASCII): 403, one row."""
    root = with_principals(make_config(), ("support",))
    async with (
        broker_at(root, journal_obj=journal_of) as (broker, url),
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        async with http.get(f"{url}/console/sign-in") as page:
            pre = hidden(await page.text(), "pre")
        form = urlencode({"key": KEYS["support"], "pre": pre}).encode()
        assert await post(http, url, "/console/sign-in", form) == 303
        odd = urlencode({"csrf": "密鑰"}).encode()
        status = await post(http, url, "/console/sign-out", odd)
        rows = await kept(broker.journal, 1)
    assert status == 403
    assert [(r.method, r.path, r.status, r.problem, r.body_bytes) for r in rows] == [
        ("POST", "/console/sign-out", 403, "forbidden", len(odd))
    ]
    assert rows[0].detail == "the form's token is not this session's"


async def test_a_session_cookie_not_utf8_is_no_session(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """A session cookie holding \\xff: the console page sends to the sign-in page, no 500."""
    root = with_principals(make_config(), ("support",))
    cookie = f"Cookie: {COOKIE}=".encode() + b"ab\xffc.d\r\n"
    async with broker_at(root, journal_obj=journal_of) as (_, url):
        status = await sent(url, b"GET /console/ HTTP/1.1\r\n" + cookie)
    assert status == b"HTTP/1.1 303 See Other"


async def test_a_sign_in_page_whose_token_cookie_is_not_utf8_gets_a_new_token(
    make_config: Any, broker_at: Any, journal_of: Any
) -> None:
    """The sign-in page asked with a token cookie holding \\xff: 200, with a new token."""
    root = with_principals(make_config(), ("support",))
    cookie = f"Cookie: {PRE_COOKIE}=".encode() + b"ab\xffc\r\n"
    async with broker_at(root, journal_obj=journal_of) as (_, url):
        status = await sent(url, b"GET /console/sign-in HTTP/1.1\r\n" + cookie)
    assert status == b"HTTP/1.1 200 OK"
