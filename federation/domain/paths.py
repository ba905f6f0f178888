"""Field paths: ``applicant.documents[0].number`` into nested objects and arrays."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from federation.domain.texts import Text, said

Segment = str | int
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PathSyntaxError(ValueError):
    """A path string is not well formed; ``text`` says how, in a language chosen when shown
    (``str()`` is the English)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


class _Missing:
    """Marker for 'the application has no value here' (distinct from an explicit null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def parse_path(text: str) -> tuple[Segment, ...]:
    """``a.b[2].c`` → ``('a', 'b', 2, 'c')``; raises PathSyntaxError with the offending part."""
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError(said("a path must be non-empty text"))
    out: list[Segment] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        if text[pos] == "." and not expect_name and out:
            pos += 1
            expect_name = True
            continue
        m = _TOKEN.match(text, pos)
        if m is None or (m.group(1) is not None and not expect_name):
            raise PathSyntaxError(_unexpected(text, pos))
        if m.group(1) is not None:
            name = m.group(1)
            if name != name.strip() or not name:
                raise PathSyntaxError(said("blank or padded name in %(path)r", path=text))
            out.append(name)
            expect_name = False
        else:
            if not out:
                raise PathSyntaxError(
                    said("%(path)r starts with an index; name the field first", path=text)
                )
            if expect_name:
                raise PathSyntaxError(_unexpected(text, pos))
            out.append(int(m.group(2)))
        pos = m.end()
    if expect_name:
        raise PathSyntaxError(said("%(path)r ends with '.'", path=text))
    return tuple(out)


def _unexpected(text: str, pos: int) -> Text:
    return said(
        "unexpected %(char)r at position %(position)s of %(path)r",
        char=text[pos],
        position=pos + 1,
        path=text,
    )


def format_segments(path: tuple[Segment, ...]) -> str:
    """Inverse of :func:`parse_path`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def getter(path: tuple[Segment, ...]) -> Callable[[Any], Any]:
    """A fast accessor returning MISSING where the path does not lead to a value."""
    if len(path) == 1 and isinstance(path[0], str):
        key = path[0]

        def get1(data: Any) -> Any:
            return data.get(key, MISSING) if isinstance(data, dict) else MISSING

        return get1

    def get(data: Any) -> Any:
        cur = data
        for part in path:
            if isinstance(part, int):
                if not isinstance(cur, list) or part >= len(cur):
                    return MISSING
                cur = cur[part]
            else:
                if not isinstance(cur, dict):
                    return MISSING
                cur = cur.get(part, MISSING)
                if cur is MISSING:
                    return MISSING
        return cur

    return get


def put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at a dotted object path in ``target``, creating objects on the way."""
    cur = target
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[path[-1]] = value
