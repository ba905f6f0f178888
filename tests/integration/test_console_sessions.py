"""Console sessions live in the journal: two brokers sharing one journal file (as `--workers`
does) both know a session signed in on either; signing out on one ends it on both; and a replay's
progress page answers on the broker that did not run it."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import aiohttp

from federation.domain.models import State
from tests.conftest import hk_submission
from tests.integration.test_delivery import DONE, settle


async def signed_in(http: aiohttp.ClientSession, url: str) -> None:
    """Sign in as this machine's staff (offered on loopback when no principal is declared)."""
    async with http.get(f"{url}/console/sign-in") as r:
        page = await r.text()
    pre = re.search(r'name="pre" value="([^"]+)"', page)
    assert pre is not None, "the sign-in form carries its token"
    form = {"pre": pre.group(1), "loopback": "1", "next": "/console/"}
    async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
        assert r.status == 303


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "a signed-in page carries the form token"
    return found.group(1)


async def test_a_session_is_known_to_every_broker_on_the_journal(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """Signed in on broker A, the same cookie opens broker B's pages, with the same form token;
    signed out on B, A no longer knows it; the journal keeps no token, only its hash."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "shared.sqlite"
    async with (
        broker_at(root, sims, journal=journal) as (_a, url_a),
        broker_at(root, sims, journal=journal) as (_b, url_b),
    ):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await signed_in(http, url_a)
            token = next(c.value for c in jar if c.key == "tongban_console")
            # cookies are kept per host:port; the browser would send it to B behind one port
            cookies = {"tongban_console": token}
            async with http.get(f"{url_a}/console/", allow_redirects=False) as r:
                assert r.status == 200
                csrf_a = csrf_of(await r.text())
            async with aiohttp.ClientSession(cookies=cookies) as other:
                async with other.get(f"{url_b}/console/", allow_redirects=False) as r:
                    assert r.status == 200, "B knows the session A opened"
                    assert csrf_of(await r.text()) == csrf_a
                form = {"csrf": csrf_a}
                async with other.post(
                    f"{url_b}/console/sign-out", data=form, allow_redirects=False
                ) as r:
                    assert r.status == 303
            async with http.get(f"{url_a}/console/", allow_redirects=False) as r:
                assert r.status == 303 and "/console/sign-in" in r.headers["Location"]
    with sqlite3.connect(journal) as conn:
        stored = conn.execute("SELECT token_hash FROM console_sessions").fetchall()
    assert all(token.encode() not in bytes(row[0]) for row in stored)


async def test_a_session_row_written_in_the_database_signs_nobody_in(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """Whoever can write to the journal but has not its key cannot sign in: a session row added
    for a token of their choosing opens nothing, and a real session whose row they change (its
    principal, role or end) is no longer a session."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "j.sqlite"
    async with broker_at(root, sims, journal=journal) as (_b, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await signed_in(http, url)
            token = next(c.value for c in jar if c.key == "tongban_console")
        with sqlite3.connect(journal) as conn:
            principal, role, end = conn.execute(
                "SELECT principal, role, expires_at FROM console_sessions"
            ).fetchone()
            forged = "forged-token-123"
            conn.execute(
                "INSERT INTO console_sessions VALUES (?, ?, ?, ?)",
                (hashlib.sha256(forged.encode()).digest(), principal, role, end),
            )
        assert await console_status(url, forged) == 303, "a row without the key's MAC"
        assert await console_status(url, forged + ".") == 303
        assert await console_status(url, token) == 200, "the real session still opens"
        for change in ("principal = 'gd-operator'", "role = 'operator'", "expires_at = ?"):
            with sqlite3.connect(journal) as conn:
                before = conn.execute("SELECT * FROM console_sessions").fetchall()
                args = (end + 86_400,) if "?" in change else ()
                conn.execute(f"UPDATE console_sessions SET {change}", args)
            assert await console_status(url, token) == 303, change
            with sqlite3.connect(journal) as conn:
                conn.execute("DELETE FROM console_sessions")
                conn.executemany("INSERT INTO console_sessions VALUES (?, ?, ?, ?)", before)
            assert await console_status(url, token) == 200, "restored, it opens again"


async def console_status(url: str, token: str) -> int:
    """The status of the console's front page for a browser sending ``token`` as its cookie."""
    async with aiohttp.ClientSession(cookies={"tongban_console": token}) as http:
        async with http.get(f"{url}/console/", allow_redirects=False) as r:
            return r.status


async def test_replay_progress_answers_on_another_broker(
    make_config, simulators, broker_at, tmp_path: Path
) -> None:
    """A replay run from broker A's console: its progress page on broker B lists the exchange
    (read from the replay's audit entry in the shared journal), not 'no such batch'; a batch
    that was never run is a 404."""
    root = make_config()
    sims = await simulators(root)
    journal = tmp_path / "shared.sqlite"
    async with (
        broker_at(root, sims, journal=journal) as (a, url_a),
        broker_at(root, sims, journal=journal) as (_b, url_b),
    ):
        incomplete = hk_submission("progress-1", application={"applicant": {"name": "陳大文"}})
        ex, _ = await a.submit(incomplete)
        assert (await settle(a, ex.id, DONE)).state is State.REJECTED
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await signed_in(http, url_a)
            token = next(c.value for c in jar if c.key == "tongban_console")
            async with http.get(f"{url_a}/console/exchanges/{ex.id}") as r:
                csrf = csrf_of(await r.text())
            form = {"csrf": csrf, "exchange_id": ex.id, "mode": "remap", "reason": "mapping fixed"}
            async with http.post(f"{url_a}/console/replays", data=form, allow_redirects=False) as r:
                assert r.status == 303
                where = r.headers["Location"]
            async with aiohttp.ClientSession(cookies={"tongban_console": token}) as other:
                async with other.get(f"{url_b}{where}") as r:
                    assert r.status == 200
                    assert ex.id in await r.text()
                async with other.get(f"{url_b}/console/replays/{ex.id}") as r:
                    assert r.status == 404
        done = await settle(a, ex.id, DONE)
    assert done.state is State.REJECTED  # remapped with the same mapping: refused again
