"""The cyclic garbage collector, set for a long-running broker.

Reference counting frees almost everything the broker lets go of; the cyclic collector only looks
for cycles. Its full collections walk every object it tracks, and about a hundred thousand of those
are made at startup and live as long as the process: the catalogue, compiled mappings and
checks, WSDLs and zeep's types. Under ``bench/e2e.py``'s load each full collection held the event
loop for 50–67 ms, in the middle of requests, twice in each 2,000-application run of the bench.

``settle`` runs once the broker is ready to listen: one full collection, then ``gc.freeze()``, so
the startup heap moves to the permanent generation and no later collection walks it again. After a
catalogue reload the old catalogue is no longer wanted, and parts of it are cycles that only the
collector frees: ``resettle`` (``settle(again=True)``) unfreezes, collects and freezes again. That collection
walks the whole heap once per reload, holding the event loop about as long as one full
collection did before (40–50 ms under the bench's load). What is frozen is never collected as a
cycle until the next reload; at startup that is the startup heap, and at a reload also the
requests then in flight, whose cycles (measured: about one object per application, for
applications retried) wait for the reload after.

The youngest generation is collected after ``YOUNG`` allocations more than deallocations, not 700
(Python's default): by then most of a request's objects have been freed by their counts, so a
collection walks fewer survivors, and fewer reach the older generations to be walked again. In the
bench's throughput run the young collections took 188–274 ms before and 2–9 ms after, and a full
collection later in a run 50–67 ms before and 5–7 ms after (docs/performance.md). A cycle waits a
little longer to be freed: a collection came every 100 to 2,000 applications under load, and found
about one cyclic object per application retried.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between collections of the youngest generation (Python: 700)


def settle(*, again: bool = False) -> int:
    """Collect and freeze what is alive now; how many objects are frozen afterwards."""
    if again:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    return gc.get_freeze_count()


def resettle() -> int | None:
    """After a catalogue reload (``Broker.reload``, by SIGHUP or the admin API): settle again if
    this process settled its heap, as a serving broker has; None, changing nothing, if it did not
    (a test, a CLI command)."""
    if gc.get_freeze_count() == 0:
        return None
    return settle(again=True)
