"""aiohttp's own logs under the broker's logging (federation.logging.configure): a handler's
exception ("Error handling request", aiohttp.server) and a request line with its query
(aiohttp.access), on a real server on loopback, write no personal data anywhere."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from tests.unit.test_logging_libraries import HKID, MAINLAND_ID, Process, production_process


@pytest.fixture
def process(capsys: pytest.CaptureFixture[str]) -> Iterator[Process]:
    """A production process's logging, every logger at DEBUG."""
    with production_process(capsys) as p:
        yield p


async def refuse(request: web.Request) -> web.Response:
    """A handler whose unexpected error quotes the applicant's HKID."""
    raise ValueError(f"holder {HKID} unknown")


async def test_a_handler_exception_and_the_access_line_reach_no_log(process: Process) -> None:
    """aiohttp's "Error handling request" with its traceback, and its access line with an ID
    number in the query, leave neither number anywhere; the log says aiohttp.server withheld a
    ValueError, and says nothing of the access line (info, dropped)."""
    app = web.Application()
    app.router.add_get("/apply", refuse)
    runner = web.AppRunner(app)  # aiohttp's access log on, as by default
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/apply?holder={MAINLAND_ID}") as reply,
        ):
            assert reply.status == 500
    finally:
        await runner.cleanup()
    process.assert_nowhere(HKID, MAINLAND_ID)
    [withheld] = process.events("library_log_withheld")
    assert (withheld["source"], withheld["error_type"]) == ("aiohttp.server", "ValueError")
    assert any(line.startswith("aiohttp.access INFO") for line in process.everything.lines)
