"""Run a module under cProfile counting the CPU time of the main thread only.

``python -m cProfile`` times with the wall clock: a call that releases the GIL (zlib, hashing,
sqlite3) is charged the time it then waits to take the GIL back from the journal's writer thread,
so under load it looks tens of times dearer than it is. Timed with ``time.thread_time`` instead,
the stats count what the event loop's thread spends, which is what ``bench/e2e.py`` wants to cut.

    python bench/profiled.py OUT.prof -m federation serve ...
"""

from __future__ import annotations

import cProfile
import os
import runpy
import sys
import time


def prepared(script: str) -> tuple[str, str]:
    """OUT and MODULE from ``SCRIPT OUT -m MODULE [ARGS...]``, with ``sys.argv`` and ``sys.path``
    set as ``python -m MODULE ARGS...`` would set them (also for ``bench/gcstats.py``)."""
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit(f"usage: python bench/{script} OUT -m MODULE [ARGS...]")
    out, module = sys.argv[1], sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    # As ``python -m`` does: the module is found from the working directory (bench/e2e.py runs
    # the broker in its checkout), not from this script's directory or an installed copy.
    sys.path[0] = os.getcwd()
    return out, module


def main() -> None:
    out, module = prepared("profiled.py")
    profile = cProfile.Profile(timer=time.thread_time)
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
