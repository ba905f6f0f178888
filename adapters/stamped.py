"""What is built from files, cached while none of them has changed.

A WSDL's zeep Document and its header schema are built from the WSDL and every schema it imports
or includes, under the configuration directory or through the ``schemas:`` catalogue. Keyed by
the WSDL alone, an edit to an imported schema went unseen by a reload until a restart; so each
entry keeps a :data:`Stamp` (size and modification time) of every file it was built from, and is
good only while each file still has it. One ``stat`` a file per use, against a parse.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")
Stamp = tuple[Path, int, int]  # a file's size and modification time (ns); -1, -1: unreadable
UNREADABLE = -1


def stamp(path: Path) -> Stamp:
    """``path`` with its size and modification time; sizes of -1 when it cannot be read (a file
    missing then is recorded as missing: putting it back changes the stamp)."""
    try:
        stat = path.stat()
    except OSError:
        return (path, UNREADABLE, UNREADABLE)
    return (path, stat.st_size, stat.st_mtime_ns)


def unchanged(stamps: Iterable[Stamp]) -> bool:
    """Whether every file is as it was when stamped."""
    return all(stamp(recorded[0]) == recorded for recorded in stamps)


class StampedCache(Generic[V]):
    """Values built from files, one per key, each good while its files are unchanged; past
    ``most`` entries the oldest goes first (a rebuilt entry becomes the newest). Loads run in
    threads: a lock guards the entries, never a build."""

    def __init__(self, most: int) -> None:
        self._entries: dict[Hashable, tuple[frozenset[Stamp], V]] = {}
        self._most = most
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[V] | None:
        """The value cached under ``key`` (in a 1-tuple: a value may be None), or None when there
        is none or a file it was built from has changed."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not unchanged(entry[0]):
            return None
        return (entry[1],)

    def put(self, key: Hashable, stamps: frozenset[Stamp], value: V) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self._most:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (stamps, value)

    def held(self) -> list[Hashable]:
        """The keys cached now, oldest first (for tests and diagnostics)."""
        with self._lock:
            return list(self._entries)
