"""Time-sortable identifiers (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32)."""

from __future__ import annotations

import random
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_rng = random.Random()  # seeded from os.urandom


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


class IdGenerator:
    """Monotonic ids: each one sorts after the one before, even when the clock steps back.

    The state is per generator, so a component (or a test) that passes its own ``now``
    (a fake clock ahead of the real one) does not hold every later id of the process there.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_rand = 0

    def new(self, now: float | None = None) -> str:
        """A 26-character id that sorts by creation time, monotonic within this generator."""
        ms = int((time.time() if now is None else now) * 1000)
        with self._lock:
            if ms <= self._last_ms:
                # Same millisecond (or the clock stepped back): keep order by incrementing.
                ms = self._last_ms
                rand = self._last_rand + 1
            else:
                # Ids need uniqueness and order, not secrecy: a seeded PRNG is enough and
                # avoids a syscall per application. One bit of headroom for the increments.
                rand = _rng.getrandbits(79)
            self._last_ms, self._last_rand = ms, rand
        return _encode(ms, 10) + _encode(rand, 16)


_default = IdGenerator()


def new_id(now: float | None = None) -> str:
    """A 26-character id that sorts by creation time, monotonic within one process."""
    return _default.new(now)


def id_time(identifier: str) -> float:
    """The creation time (epoch seconds) encoded in an id from :func:`new_id`."""
    ms = 0
    for ch in identifier[:10]:
        ms = (ms << 5) | _ALPHABET.index(ch)
    return ms / 1000


def id_floor(ts: float) -> str:
    """The smallest id that :func:`new_id` can give at time ``ts`` (for time-range searches)."""
    return _encode(int(ts * 1000), 10) + "0" * 16
