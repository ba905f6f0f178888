"""A small validating reader over located YAML: every mistake becomes a Problem with file:line.

Validation collects problems instead of stopping at the first, so ``tongban check`` can list them all.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation.config.yamlsrc import Located, PathKey
from federation.domain.errors import Problem
from federation.domain.texts import QUOTE, Text, quoted, said

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def written_inside(name: str) -> str | None:
    """``name`` normalised as written (``a/./b/../c`` → ``a/c``), relative to the directory it is
    read from; None when it leads out of it: an absolute path, or a ``..`` climbing above it.

    Lexical only, no link is followed: a name typed in partners.yaml or in a mapping (which the
    console's playground compiles) cannot step out, while a symlink the operator placed in the
    directory is theirs to place."""
    if os.path.isabs(name):
        return None
    rel = os.path.normpath(name)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel


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

    def error(self, path: PathKey, message: str | Text) -> None:
        if tuple(path) in self._absent:
            return  # "missing required key" already said all there is to say
        self.problems.append(self.doc.problem(path, message))

    def warn(self, path: PathKey, message: str | Text) -> None:
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
        quote: bool = True,
    ) -> dict[str, Any] | None:
        """Check ``value`` is a mapping with the required keys and no unknown ones; with
        ``quote=False`` text or a number in its place is not quoted (under ``auth:`` it may be a
        secret). A document that is not a mapping (``path`` is its root) is never quoted: it is
        the whole file, perhaps a key file named where a table or a mapping was meant."""
        if not isinstance(value, dict):
            kind = _kind(value, quote=quote and bool(path))
            self.error(path, said("expected a mapping of keys, got %(kind)s", kind=kind))
            return None
        known = set(required) | set(optional)
        for key in required:
            if key not in value:
                self.error(path, said("missing required key %(key)r", key=key))
                self._absent.add((*path, key))
        if not extra_ok:
            for key in value:
                if key not in known:
                    hint = difflib.get_close_matches(key, sorted(known), n=1)
                    allowed = ", ".join(sorted(known))
                    self.error((*path, key), _unknown_key(hint[0] if hint else None, allowed))
        return value

    def text(
        self,
        path: PathKey,
        value: Any,
        *,
        pattern: re.Pattern[str] | None = None,
        what: str | Text = "",
    ) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.error(path, said("expected text, got %(kind)s", kind=_kind(value)))
            return None
        s = str(value)
        if not s.strip():
            self.error(path, said("must not be empty"))
            return None
        if pattern is not None and not pattern.fullmatch(s):
            self.error(path, _invalid(s, what))
            return None
        return s

    def integer(self, path: PathKey, value: Any, *, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, said("expected a whole number, got %(kind)s", kind=_kind(value)))
            return None
        if not low <= value <= high:
            self.error(path, _outside(value, low, high))
            return None
        return value

    def number(self, path: PathKey, value: Any, *, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(path, said("expected a number, got %(kind)s", kind=_kind(value)))
            return None
        try:
            ok = Decimal(str(value)) >= Decimal(str(low)) and Decimal(str(value)) <= Decimal(
                str(high)
            )
        except InvalidOperation:
            ok = False
        if not ok:
            self.error(path, _outside(value, low, high))
            return None
        return float(value)

    def boolean(self, path: PathKey, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, said("expected true or false, got %(kind)s", kind=_kind(value)))
            return None
        return value

    def duration(
        self, path: PathKey, value: Any, *, low: float = 0.0, high: float = 1e9
    ) -> float | None:
        seconds = parse_duration(value)
        if seconds is None:
            self.error(
                path,
                said(
                    "%(value)r is not a duration (e.g. 30, '30s', '250ms', '5m', '2h', '7d')",
                    value=quoted(value),
                ),
            )
            return None
        if not low <= seconds <= high:
            self.error(path, _outside(quoted(value), _human(low), _human(high)))
            return None
        return seconds

    def url(self, path: PathKey, value: Any) -> str | None:
        s = self.text(path, value)
        if s is None:
            return None
        parts = urlsplit(s)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.error(path, said("not an http(s) URL"))
            return None
        return s

    def choice(self, path: PathKey, value: Any, choices: Collection[str]) -> str | None:
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(sorted(choices))
            self.error(
                path,
                said("%(value)r is not one of: %(allowed)s", value=quoted(value), allowed=allowed),
            )
            return None
        return value

    def inside(self, path: PathKey, name: str, base: Path) -> Path | None:
        """The file ``name`` names under ``base`` (the configuration directory), resolved for
        reading; None, and an error at ``path``, when the name as written leads out of ``base``.

        The name is checked as written (:func:`written_inside`): an absolute path or a ``..``
        climbing above ``base`` is refused where it is written, before anything reads the file.
        Symlinks are not judged: the operator who owns the directory placed them (a mappings/
        that is a link to a checkout or a shared volume), and they are followed as any open
        follows them."""
        rel = written_inside(name)
        if rel is None:
            self.error(path, said("%(name)r is outside the configuration directory", name=name))
            return None
        try:
            return (base / rel).resolve()
        except (OSError, RuntimeError, ValueError):  # a link loop, a NUL ("\\0" in quotes)
            self.error(path, said("%(name)r cannot be resolved to a file", name=name))
            return None

    def items(self, path: PathKey, value: Any) -> list[Any]:
        if not isinstance(value, list):
            self.error(path, said("expected a list, got %(kind)s", kind=_kind(value)))
            return []
        return value


def _kind(value: Any, *, quote: bool = True) -> Text | str:
    if value is None:
        return said("nothing")
    if isinstance(value, bool):
        return said("a boolean (%(value)s)", value=str(value).lower())
    if isinstance(value, dict):
        return said("a mapping")
    if isinstance(value, list):
        return said("a list")
    if isinstance(value, (int, float)) and not quote:  # a secret may be all digits
        return said("a number")
    if isinstance(value, (int, float)):
        return said("a number (%(value)s)", value=quoted(value))
    if isinstance(value, str) and quote and len(repr(value)) <= QUOTE:
        return said("text (%(value)r)", value=value)
    if isinstance(value, str):  # perhaps a whole file given by mistake: not a word of it
        return said("text of %(count)s characters", count=len(value))
    return type(value).__name__


def _unknown_key(hint: str | None, allowed: str) -> Text:
    if hint is None:
        return said("unknown key; allowed here: %(allowed)s", allowed=allowed)
    return said(
        "unknown key (did you mean %(hint)r?); allowed here: %(allowed)s",
        hint=hint,
        allowed=allowed,
    )


def _invalid(value: str, what: str | Text) -> Text:
    """``'x' is not <what>``, ``what`` (a kind of name) said in the same language."""
    if not what:
        return said("%(value)r is not valid", value=quoted(value))
    return said("%(value)r is not %(what)s", value=quoted(value), what=what)


def _outside(value: object, low: object, high: object) -> Text:
    return said("%(value)s is outside %(low)s..%(high)s", value=value, low=low, high=high)


def _human(seconds: float) -> str:
    """A duration as an operator would write it: 250ms, 30s, 5m, 2h, 90d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
