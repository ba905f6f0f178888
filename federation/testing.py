"""Test helpers shipped with the package, as httpx ships ``MockTransport``.

``InMemoryJournal`` honours the Journal contract without a file (the contract suite proves it the
same as SQLite and PostgreSQL); unit tests of the worker and the intake use it.
"""

from __future__ import annotations

from replay.memory import InMemoryJournal

__all__ = ["InMemoryJournal"]
