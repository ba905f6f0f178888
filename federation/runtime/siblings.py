"""The workers of one ``tongban serve --workers N``: how a reload in one reaches them all.

A reload (``POST /v1/admin/reload``, the console's, a SIGHUP sent to one worker) happens in the
one process that took it; with several workers the others would go on with the configuration
they started with, and which one answers a request would decide which mappings apply. So a worker
that has reloaded asks its parent (``federation/cli/workers.py``) to restart the workers one at a
time, as a SIGHUP to the parent does: each new worker loads the configuration the first one
checked. The parent names itself to its workers in ``TONGBAN_WORKERS_PARENT``.

A worker started in place of one that exited on its own must run the configuration its
predecessor ran, not whatever the files hold now (a half-edited partners.yaml, or a valid one
nobody has reloaded yet): the parent names that version in ``TONGBAN_CONFIG_IN_FORCE``, and a
worker whose configuration has another version does not start (``federation/api/server.py``).
Each worker tells its parent the version it runs on a line before its listening line.
"""

from __future__ import annotations

import os
import signal

PARENT_ENV = "TONGBAN_WORKERS_PARENT"
CONFIG_ENV = "TONGBAN_CONFIG_IN_FORCE"  # the version a replacement worker must run
VERSION_LINE = "tongban configuration "  # then the version: a worker's first line to its parent


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


def version_in_force() -> str | None:
    """The configuration version this worker must run (None: any, as at a start or a restart
    of every worker, which loads the files anew)."""
    value = os.environ.get(CONFIG_ENV, "")
    return value if value and parent() is not None else None
