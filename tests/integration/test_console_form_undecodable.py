"""A console form whose body the form reader cannot read (bytes that are not UTF-8, a charset
not known, a multipart body without its boundary) is a 400 page in the reader's language, never
a 500 with a traceback: on the sign-in form and on a signed-in form (a replay)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from federation.logging import capture_logs

URLENCODED = "application/x-www-form-urlencoded"
BAD_BODIES = [
    (URLENCODED, b"pre=a&next=%2Fconsole%2F&key=\xff\xfe"),
    (URLENCODED + "; charset=x-no-such", b"pre=a&key=b"),
    ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"),
]
TITLES = {
    "en": "The request cannot be done as given",
    "zh-Hans": "无法按所给内容执行请求",
    "zh-Hant": "無法按所給內容執行請求",
}


async def _pre(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(f"{url}/console/sign-in") as r:
        found = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert found is not None
    return found.group(1)


async def _post(
    http: aiohttp.ClientSession, url: str, path: str, ctype: str, body: bytes, lang: str
) -> tuple[int, str, str]:
    headers = {"Content-Type": ctype, "Accept-Language": lang}
    async with http.post(f"{url}{path}", data=body, headers=headers, allow_redirects=False) as r:
        return r.status, r.content_type, await r.text()


@pytest.mark.parametrize(("ctype", "body"), BAD_BODIES)
@pytest.mark.parametrize("path", ["/console/sign-in", "/console/replays"])
async def test_an_unreadable_console_form_is_a_400_page(
    make_config: Any, broker_at: Any, path: str, ctype: str, body: bytes
) -> None:
    with capture_logs() as logs:
        async with (
            broker_at(make_config()) as (_broker, url),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            form = urlencode({"pre": await _pre(http, url), "loopback": "1", "next": "/console/"})
            if path != "/console/sign-in":
                headers = {"Content-Type": URLENCODED}
                async with http.post(
                    f"{url}/console/sign-in", data=form, headers=headers, allow_redirects=False
                ) as r:
                    assert r.status == 303
            answers = {lang: await _post(http, url, path, ctype, body, lang) for lang in TITLES}
    for lang, (status, content_type, text) in answers.items():
        assert status == 400, (lang, text)
        assert content_type == "text/html"
        assert 'data-problem="invalid-request"' in text
        assert TITLES[lang] in text
    assert not [e for e in logs if e.get("event") == "request_failed"]
    assert "Traceback" not in repr(logs)
    assert "\\xff" not in repr(logs)
