"""The workers of one ``tongban serve --workers N``: how a reload in one reaches them all.

A reload (``POST /v1/admin/reload``, the console's, a SIGHUP sent to one worker) happens in the
one process that took it; with several workers the others would go on with the configuration
they started with, and which one answers a request would decide which mappings apply. So a worker
that has reloaded asks its parent (``federation/cli/workers.py``) to restart the workers one at a
time, as a SIGHUP to the parent does: each new worker loads the configuration the first one
checked. The parent names itself to its workers in ``TONGBAN_WORKERS_PARENT``.
"""

from __future__ import annotations

import os
import signal

PARENT_ENV = "TONGBAN_WORKERS_PARENT"


def parent() -> int | None:
    """The pid of this worker's parent, or None when this process is no worker (or the parent
    that named itself is no longer the one it runs under)."""
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit():
        return None
    pid = int(value)
    return pid if pid == os.getppid() else None


def restart_all() -> bool:
    """Ask the parent to restart every worker in turn (False: not a worker, nothing to do)."""
    pid = parent()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:  # the parent died meanwhile: its workers stop with it anyway
        return False
    return True
