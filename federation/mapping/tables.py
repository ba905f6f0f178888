"""Code tables: shared YAML files translating one system's codes into another's.

::

    table: 1
    description: GB/T 2261.1 sex codes → the M/F of Hong Kong forms
    default: U                # optional: the answer for a code the table does not list
    values:
      "1": M
      "2": F

Keys are compared as text, so ``1`` and ``"1"`` in an application find the same entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.config.reader import Reader
from federation.config.yamlsrc import parse_yaml, read_source
from federation.domain.errors import ConfigError
from federation.domain.models import content_hash
from federation.domain.texts import quoted, said

_NO_DEFAULT: Any = object()


@dataclass(frozen=True, kw_only=True)
class CodeTable:
    """A loaded code table."""

    name: str
    file: str
    version: str
    description: str
    values: Mapping[str, Any]
    default: Any = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def load_table(path: Path, *, name: str, display: str) -> CodeTable:
    """Load and validate one code table file; ConfigError names file and line of every problem."""
    raw, text = read_source(path, display=display, what="code table")
    doc = parse_yaml(text, display=display)
    r = Reader(doc)
    top = r.mapping((), doc.data, required=("table", "values"), optional=("description", "default"))
    values: dict[str, Any] = {}
    if top is not None:
        if type(top.get("table")) is not int or top.get("table") != 1:
            r.error(
                ("table",),
                said(
                    "unsupported table format %(value)r; expected 1", value=quoted(top.get("table"))
                ),
            )
        v = r.mapping(("values",), top.get("values"), extra_ok=True)
        if v is not None and not v:
            r.error(("values",), said("lists no code"))
        for key, value in (v or {}).items():
            if isinstance(value, (dict, list)):
                r.error(("values", key), said("a code must translate to a single value"))
            values[str(key)] = value
        if "default" in top and isinstance(top["default"], (dict, list)):
            r.error(("default",), said("the default must be a single value"))
    if not r.ok or top is None:
        raise ConfigError(r.problems)
    return CodeTable(
        name=name,
        file=display,
        version=content_hash(raw),
        description=str(top.get("description") or ""),
        values=values,
        default=top.get("default", _NO_DEFAULT),
    )
