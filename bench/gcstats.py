"""Run a module and record the cyclic garbage collector's work, for ``bench/e2e.py --gc FILE``.

Every collection's generation, wall-clock start (``time.time``) and duration are taken through
``gc.callbacks`` and written to FILE as JSON when the module exits; ``summary`` reads back the
collections that started within a window (the measured load, not the startup).

    python bench/gcstats.py OUT.json -m federation serve ...
"""

from __future__ import annotations

import gc
import json
import runpy
import time
from pathlib import Path
from typing import Any

from profiled import prepared  # bench/profiled.py, beside this script


def main() -> None:
    out, module = prepared("gcstats.py")
    started = [0.0, 0.0]
    seen: list[tuple[float, int, float]] = []  # (start, generation, seconds)

    def observe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0], started[1] = time.time(), time.perf_counter()
        else:
            seen.append((started[0], info["generation"], time.perf_counter() - started[1]))

    gc.callbacks.append(observe)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        gc.callbacks.remove(observe)
        Path(out).write_text(json.dumps(seen))


def summary(file: Path, since: float, until: float) -> dict[int, tuple[int, float, float]]:
    """Per generation, the collections started in [since, until]: (count, total ms, longest ms)."""
    if not file.exists():
        raise SystemExit(f"{file}: the broker did not write its collections (killed?)")
    out = {generation: (0, 0.0, 0.0) for generation in (0, 1, 2)}
    for at, generation, seconds in json.loads(file.read_text()):
        if since <= at <= until:
            count, total, longest = out[generation]
            out[generation] = (count + 1, total + seconds * 1e3, max(longest, seconds * 1e3))
    return out


if __name__ == "__main__":
    main()
