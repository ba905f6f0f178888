"""One log line for each change a command makes to a journal: migrate, replay, rekey, archive.

Support staff act on the journal from a shell, often with no broker running; these lines let an
SRE's log collection see those acts beside the broker's own (the audit trail in the journal keeps
the reason and who asked; docs/observability.md). They go to stderr, as JSON unless it is a
terminal, through the same redaction as every other line; the journal's location is left out (a
PostgreSQL URL may carry a password), and so are replay reasons (free text).
"""

from __future__ import annotations

import socket
import sys

import structlog

from federation.cli.audit import os_user
from federation.logging import configure, get_logger


def logged(event: str, **fields: object) -> None:
    """Log ``event`` (``journal_replayed``, …) with ``fields`` from a CLI command; sets up
    logging to stderr first if the command has not."""
    if not structlog.is_configured():
        configure(stream=sys.stderr)
    log = get_logger(component="cli", os_user=os_user(), host=socket.gethostname())
    log.info(event, **fields)
