"""A small validating reader over located YAML: every mistake becomes a Problem with file:line.

Validation collects problems instead of stopping at the first, so ``tongban check`` can list them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation.config.yamlsrc import Located, PathKey
from federation.domain.errors import Problem

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float | None:
    """``30``, ``"30s"``, ``"5m"``, ``"250ms"``, ``"90d"`` → seconds, or None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(Decimal(m.group(1)) * Decimal(str(_UNITS[m.group(2)])))
    return None


class Reader:
    """Typed accessors that record a Problem instead of raising."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self._absent: set[PathKey] = set()  # required keys already reported as missing
        # partners.yaml's schema catalogue (location or namespace → file), read before the
        # partners so that protocol specs load WSDLs through it
        self.schemas: Mapping[str, Path] = {}

    def error(self, path: PathKey, message: str) -> None:
        if tuple(path) in self._absent:
            return  # "missing required key" already said all there is to say
        self.problems.append(self.doc.problem(path, message))

    def warn(self, path: PathKey, message: str) -> None:
        self.problems.append(self.doc.problem(path, message, severity="warning"))

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def mapping(
        self,
        path: PathKey,
        value: Any,
        *,
        required: Collection[str] = (),
        optional: Collection[str] = (),
        extra_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Check ``value`` is a mapping with the required keys and no unknown ones."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping of keys, got {_kind(value)}")
            return None
        known = set(required) | set(optional)
        for key in required:
            if key not in value:
                self.error(path, f"missing required key {key!r}")
                self._absent.add((*path, key))
        if not extra_ok:
            for key in value:
                if key not in known:
                    hint = difflib.get_close_matches(key, sorted(known), n=1)
                    more = f" (did you mean {hint[0]!r}?)" if hint else ""
                    allowed = ", ".join(sorted(known))
                    self.error((*path, key), f"unknown key{more}; allowed here: {allowed}")
        return value

    def text(
        self, path: PathKey, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.error(path, f"expected text, got {_kind(value)}")
            return None
        s = str(value)
        if not s.strip():
            self.error(path, "must not be empty")
            return None
        if pattern is not None and not pattern.fullmatch(s):
            self.error(path, f"{s!r} is not {what or 'valid'}")
            return None
        return s

    def integer(self, path: PathKey, value: Any, *, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {_kind(value)}")
            return None
        if not low <= value <= high:
            self.error(path, f"{value} is outside {low}..{high}")
            return None
        return value

    def number(self, path: PathKey, value: Any, *, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(path, f"expected a number, got {_kind(value)}")
            return None
        try:
            ok = Decimal(str(value)) >= Decimal(str(low)) and Decimal(str(value)) <= Decimal(
                str(high)
            )
        except InvalidOperation:
            ok = False
        if not ok:
            self.error(path, f"{value} is outside {low}..{high}")
            return None
        return float(value)

    def boolean(self, path: PathKey, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {_kind(value)}")
            return None
        return value

    def duration(
        self, path: PathKey, value: Any, *, low: float = 0.0, high: float = 1e9
    ) -> float | None:
        seconds = parse_duration(value)
        if seconds is None:
            self.error(
                path, f"{value!r} is not a duration (e.g. 30, '30s', '250ms', '5m', '2h', '7d')"
            )
            return None
        if not low <= seconds <= high:
            self.error(path, f"{value!r} is outside {_human(low)}..{_human(high)}")
            return None
        return seconds

    def url(self, path: PathKey, value: Any) -> str | None:
        s = self.text(path, value)
        if s is None:
            return None
        parts = urlsplit(s)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.error(path, "not an http(s) URL")
            return None
        return s

    def choice(self, path: PathKey, value: Any, choices: Collection[str]) -> str | None:
        if not isinstance(value, str) or value not in choices:
            self.error(path, f"{value!r} is not one of: {', '.join(sorted(choices))}")
            return None
        return value

    def items(self, path: PathKey, value: Any) -> list[Any]:
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_kind(value)}")
            return []
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({value!r})"
    return type(value).__name__


def _human(seconds: float) -> str:
    """A duration as an operator would write it: 250ms, 30s, 5m, 2h, 90d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
