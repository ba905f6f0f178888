"""The journal tests' fixtures: an empty store of each persistent backend, an open journal of each,
and an unopened one of each for a broker to open.

A test file that needs a journal built otherwise defines its own fixture of the same name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from replay.journal import Backend
from tests.integration.pg import (
    BACKENDS,
    JOURNALS,
    Store,
    open_journal_of,
    store,
    unopened_journal_of,
)


@pytest.fixture(params=BACKENDS)
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty journal store of each persistent backend."""
    async with store(request.param, tmp_path) as s:
        yield s


@pytest.fixture(params=JOURNALS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An open journal of each backend."""
    async with open_journal_of(request.param, tmp_path) as j:
        yield j


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An unopened journal of each backend, for a broker to open (``broker_at(journal_obj=…)``)."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j
