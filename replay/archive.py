"""Retention: closed exchanges move to a compressed JSON Lines archive that verifies on its own.

File layout (gzip, one JSON object per line)::

    {"tongban_archive": 1, "created_at": …, "older_than": …}
    {"exchange": {…current state…}, "events": [{"seq", "at", "kind", "data", "hash", "prev"}, …]}
    …
    {"end": true, "exchanges": N, "events": M, "digest": "<sha256 of every line above>"}

Each event carries the hash of the event before it in the journal's chain (``prev``), so every event
in the archive is checked against its own hash; the trailer's digest catches a line removed or
changed in the file. In the journal, archived events stay as tombstones (no content, same hash), so
the journal's chain still verifies across the gap.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from replay.chain import Break, link
from replay.seal import from_text

FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class ArchivedExchange:
    row: dict[str, Any]
    events: list[dict[str, Any]]  # seq, at, kind, data (seal.as_text), hash, prev (hex)


class ArchiveWriter:
    """Writes an archive file; ``close()`` adds the trailer."""

    def __init__(self, path: Path, *, created_at: float, older_than: float) -> None:
        self.path = path
        # "x": never overwrite an earlier archive. Closed in close(), which adds the trailer.
        self._file = path.open("xb")
        self._raw = gzip.GzipFile(fileobj=self._file, mode="wb")
        self._digest = hashlib.sha256()
        self.exchanges = 0
        self.events = 0
        self._line({"tongban_archive": FORMAT, "created_at": created_at, "older_than": older_than})

    def _line(self, obj: Any) -> None:
        data = orjson.dumps(obj) + b"\n"
        self._digest.update(data)
        self._raw.write(data)

    def write(self, chunk: list[ArchivedExchange]) -> None:
        for ex in chunk:
            self._line({"exchange": ex.row, "events": ex.events})
            self.exchanges += 1
            self.events += len(ex.events)
        self._raw.flush()
        self._durable()  # on disk before the journal tombstones what this chunk holds

    def _durable(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._raw.write(
            orjson.dumps(
                {
                    "end": True,
                    "exchanges": self.exchanges,
                    "events": self.events,
                    "digest": self._digest.hexdigest(),
                }
            )
            + b"\n"
        )
        self._raw.close()
        self._durable()
        self._file.close()


class ArchiveError(ValueError):
    """The archive file is not readable as one."""


def verify_archive(path: Path) -> tuple[int, int, Break | str | None]:
    """(exchanges, events, first problem or None) for an archive file on its own."""
    digest = hashlib.sha256()
    exchanges = events = 0
    trailer: dict[str, Any] | None = None
    try:
        lines = list(_lines(path))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return 0, 0, f"not a readable archive: {exc}"
    if not lines:
        return 0, 0, "the archive is empty"
    for n, raw in enumerate(lines, start=1):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return exchanges, events, f"line {n} is not JSON"
        if n == 1:
            if obj.get("tongban_archive") != FORMAT:
                return 0, 0, "not a tongban archive (no header)"
        elif obj.get("end"):
            trailer = obj
            if n != len(lines):
                return exchanges, events, f"line {n}: data after the end"
            break
        else:
            exchanges += 1
            for ev in obj.get("events", []):
                events += 1
                problem = _event_problem(n, obj["exchange"]["id"], ev)
                if problem is not None:
                    return exchanges, events, problem
        digest.update(raw)
    if trailer is None:
        return exchanges, events, "the archive has no end line (cut short?)"
    if trailer.get("digest") != digest.hexdigest():
        return exchanges, events, "a line was removed, added or changed (digest does not match)"
    if (trailer.get("exchanges"), trailer.get("events")) != (exchanges, events):
        return exchanges, events, "the counts in the end line do not match the archive"
    return exchanges, events, None


def _event_problem(n: int, exchange_id: str, ev: dict[str, Any]) -> Break | str | None:
    """Why an archived event (on line ``n``) does not hold, or None: its data must read back to
    the stored bytes, and those hash, with the event before it, to its hash."""
    try:
        stored = from_text(ev["data"])
    except ValueError:
        return f"line {n}: an event's data was altered (not well formed)"
    actual = link(
        bytes.fromhex(ev["prev"]),
        int(ev["seq"]),
        exchange_id,
        float(ev["at"]),
        ev["kind"],
        stored,
        bytes.fromhex(ev["state"]) if ev.get("state") else None,
    )
    if actual.hex() == ev["hash"]:
        return None
    return Break(
        seq=int(ev["seq"]),
        exchange_id=exchange_id,
        kind=ev["kind"],
        reason="its content was altered in the archive (hash does not match)",
    )


def _lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        yield from f


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The archived exchanges (for `journal show` of an archived exchange, support tooling)."""
    for raw in _lines(path):
        obj = orjson.loads(raw)
        if "exchange" in obj:
            yield obj
