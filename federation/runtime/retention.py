"""The retention job: on a schedule, archive ended exchanges older than the policy, then prune them.

The policy is ``broker: retention:`` in partners.yaml (``federation/config/retention.py``), read
anew on every run, so a reload changes it. A run is what ``tongban journal archive`` does by hand:
the journal writes each chunk of ended exchanges to a new archive file, makes it durable, and only
then keeps tombstones of them (the chain still verifies); afterwards the file is verified on its
own and against the journal, and signed with the journal's key when it holds (``replay/archive.py``):
the job is always given that journal, so no run leaves a file checked only on its own.
A run that finds nothing leaves no file. A failed run (journal unavailable, disk full) is
logged and tried again at the next period, as is one that failed in a way nobody foresaw; what it
had not yet archived stays in the journal.

Instances start their schedule at a random point of the period, so several instances on one
journal rarely run at once; when they do, an exchange may be copied into both files, and it is
pruned once (the journal prunes only a row still as it was copied: replay/sqlitesql.py).
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from federation.config.retention import Retention
from federation.domain.errors import JournalError
from federation.logging import bare_traceback, get_logger
from federation.runtime.events import cancelled
from replay.archive import sign_checked
from replay.journal import ArchiveReads

Sleep = Callable[[float], Awaitable[None]]


class Archive(Protocol):
    """``JournalAdmin.archive``: ended exchanges changed before ``older_than`` to ``out``."""

    async def __call__(
        self, *, older_than: float, out: Path, chunk: int = 500
    ) -> tuple[int, int]: ...


@dataclass(frozen=True, kw_only=True)
class Run:
    """What one run archived (None as file when it found nothing)."""

    exchanges: int
    events: int
    file: Path | None


class RetentionJob:
    """Runs the retention policy every ``policy().every`` seconds while started."""

    def __init__(
        self,
        *,
        archive: Archive,
        policy: Callable[[], Retention | None],
        owner: str,
        journal: ArchiveReads,  # the open journal ``archive`` writes from: checks, signs
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._archive = archive
        self._journal = journal
        self._policy = policy
        self._owner = re.sub(r"[^A-Za-z0-9._-]+", "-", owner)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(component="retention", owner=owner)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        await cancelled(self._task)
        self._task = None

    async def _loop(self) -> None:
        first = True
        while True:
            policy = self._policy()
            every = policy.every if policy is not None else 3_600.0
            await self._sleep(every * self._rng.random() if first else every)
            first = False
            try:
                await self.run_once()
            except (JournalError, OSError) as exc:
                self._log.warning("retention_failed", error=str(exc))
            except Exception as exc:  # never the loop's end: nothing would start it again
                # the type only: a message could quote an archived application
                self._log.error(
                    "retention_crashed", error=type(exc).__name__, exception=bare_traceback(exc)
                )

    async def run_once(self) -> Run | None:
        """Archive and prune what the policy says is due now; None when there is no policy."""
        policy = self._policy()
        if policy is None:
            return None
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        # never the name of an earlier file, even for two runs in one second (archives are "x")
        unique = secrets.token_hex(3)
        out = policy.archive_dir / f"tongban-{stamp}-{self._owner}-{unique}.jsonl.gz"
        await asyncio.to_thread(policy.archive_dir.mkdir, parents=True, exist_ok=True)
        exchanges, events = await self._archive(older_than=now - policy.keep, out=out)
        if exchanges == 0:
            await asyncio.to_thread(out.unlink, missing_ok=True)
            self._log.info("retention_nothing_due", older_than=now - policy.keep)
            return Run(exchanges=0, events=0, file=None)
        checked, broken, signed = await sign_checked(self._journal, out)
        if broken is not None or checked.exchanges != exchanges:
            # the problem names lines, seqs and ids only: never what an exchange holds
            self._log.error("retention_archive_unverified", file=str(out), problem=str(broken))
        else:
            self._log.info(
                "retention_archived",
                exchanges=exchanges,
                events=events,
                file=str(out),
                signed=signed,
            )
        return Run(exchanges=exchanges, events=events, file=out)
