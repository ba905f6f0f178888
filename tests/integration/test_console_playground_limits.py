"""The mapping playground is open to viewers (``show``), so what a viewer posts must cost the
broker little: a mapping of aliases of aliases ("billion laughs") is answered with the problem at
its line, and a text past the playground's size is refused before anything reads it."""

from __future__ import annotations

import re

import aiohttp

from tests.integration.test_console_sessions import csrf_of
from tests.integration.test_roles import KEYS, with_principals

LAUGHS = "\n".join(
    [
        'x-lol: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"x-lol{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)),
    ]
)


async def viewer_session(http: aiohttp.ClientSession, url: str) -> str:
    """Sign in with the viewer's key; the playground page's form token."""
    async with http.get(f"{url}/console/sign-in") as r:
        pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert pre is not None
    form = {"pre": pre.group(1), "key": KEYS["viewer"], "next": "/console/"}
    async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
        assert r.status == 303
    async with http.get(f"{url}/console/playground?partner=hk&service=TD-VL-RENEW") as r:
        assert r.status == 200
        return csrf_of(await r.text())


async def test_a_viewers_alias_bomb_is_answered_with_its_line(
    make_config, simulators, broker_at
) -> None:
    """A viewer runs the hk mapping with eight levels of nine aliases added: the playground answers
    422 listing the alias past the limit at its file:line, and the broker still answers after."""
    root = with_principals(make_config(), ("viewer",))
    sims = await simulators(root)
    async with broker_at(root, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await viewer_session(http, url)
            original = (root / "mappings" / "hk-vl.yaml").read_text(encoding="utf-8")
            text = original + LAUGHS + "\n"
            form = {"csrf": csrf, "partner": "hk", "service": "TD-VL-RENEW", "text": text}
            form["example"] = "none"
            english = {"Accept-Language": "en"}
            async with http.post(f"{url}/console/playground/run", data=form, headers=english) as r:
                assert r.status == 422
                page = await r.text()
            line = len(original.splitlines()) + 6  # x-lol5's, whose first alias crosses it
            assert (
                f"mappings/hk-vl.yaml:{line}: aliases expand this file past 100000 values" in page
            )
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200


async def test_a_viewers_oversized_text_is_refused_by_patch_too(
    make_config, simulators, broker_at
) -> None:
    """The playground's size limit holds for the diff a viewer may ask for, as for a run: 413."""
    root = with_principals(make_config(), ("viewer",))
    sims = await simulators(root)
    async with broker_at(root, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await viewer_session(http, url)
            text = "a: b\n" * 60_000
            form = {"csrf": csrf, "partner": "hk", "service": "TD-VL-RENEW", "text": text}
            async with http.post(f"{url}/console/playground/patch", data=form) as r:
                assert r.status == 413
                assert "a mapping is at most 262144 characters" in await r.text()
