"""``broker: retention:`` in partners.yaml: how long ended exchanges stay in the journal.

::

    broker:
      retention:
        keep: 90d            # ended exchanges last changed longer ago are archived, then pruned
        every: 1h            # how often the broker's retention job looks (default 1h)
        archive_dir: archive # where archive files go; relative to the broker's working directory

Open work and exchanges with a callback still owed are never archived, however old. The job is
the one ``tongban journal archive`` runs by hand (``replay/archive.py``): each chunk is written to
the archive file and made durable before the journal keeps only tombstones of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.config.reader import Reader

DAY = 86_400.0


@dataclass(frozen=True, kw_only=True)
class Retention:
    """The retention policy: archive and prune ended exchanges older than ``keep`` seconds."""

    keep: float
    every: float = 3_600.0
    archive_dir: Path = Path("archive")


def parse_retention(r: Reader, raw: Any) -> Retention | None:
    """The policy at ``broker.retention``; None (with the problems reported) when it is wrong."""
    path = ("broker", "retention")
    m = r.mapping(path, raw, required=("keep",), optional=("every", "archive_dir"))
    if m is None or "keep" not in m:
        return None
    keep = r.duration((*path, "keep"), m["keep"], low=DAY, high=100 * 365 * DAY)
    every = 3_600.0
    if "every" in m:
        every = r.duration((*path, "every"), m["every"], low=60, high=7 * DAY) or every
    directory = Path("archive")
    if "archive_dir" in m:
        text = r.text((*path, "archive_dir"), m["archive_dir"])
        if text is not None:
            directory = Path(text)
    if keep is None:
        return None
    return Retention(keep=keep, every=every, archive_dir=directory)
