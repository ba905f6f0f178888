"""JSON read strictly: a document that names the same key twice in one object is refused.

orjson (like most parsers) keeps the last of two equal keys without a word, so
``{"partner": "gd", …, "partner": "fj"}`` would be read as fj, and a reply
``{"resultCode": "E9", "resultCode": "0"}`` as a yes. RFC 8259 leaves such a document's meaning
to the reader; ours refuses it (:class:`DuplicateKey`, naming the key's path, never a value).

orjson cannot report duplicates, so :func:`duplicate_key` checks the parsed result against the
bytes, at the cost of one ``orjson.dumps`` and two byte counts (docs/performance.md;
``bench/strict_json.py``):

* Outside strings, a ``:`` in JSON text only ever separates a key from its value, so the raw
  bytes hold one ``:`` per key written plus the colons inside strings (written as ``:`` or as the
  escape ``\\u003a``; no other UTF-8 sequence holds the byte 0x3A).
* orjson writes the parsed document back with one ``:`` per key it kept plus the same colons of
  the strings it kept (it never escapes a colon).
* Each key dropped for a later equal one takes at least its own ``:`` with it. So the two counts
  are equal exactly when no key was dropped: no false "no duplicates", and no false alarm.

Only when they differ is the document parsed again (the standard library, with a hook that sees
every object's pairs) to name the first duplicated key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A \u003a (or \u003A) escape, i.e. one preceded by an even run of backslashes (an odd run
# would make its backslash an escaped backslash, and "u003a" plain text).
_COLON_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u003[aA]")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice; ``path`` is where (``a.b[0].c``), or "" when the
    document is nested too deep for the path to be named."""

    def __init__(self, path: str) -> None:
        where = f"key {path}" if path else "a key (nested too deep to name)"
        super().__init__(f"{where} appears more than once in the same object")
        self.path = path


def loads(raw: bytes | str) -> Any:
    """``orjson.loads(raw)``, refusing duplicate keys with :class:`DuplicateKey`.

    Raises ``orjson.JSONDecodeError`` for text that is not JSON, as orjson does."""
    data = orjson.loads(raw)
    if type(data) is dict or type(data) is list:
        text = raw.encode() if isinstance(raw, str) else raw
        path = duplicate_key(text, data)
        if path is not None:
            raise DuplicateKey(path)
    return data


def duplicate_key(raw: bytes, data: Any) -> str | None:
    """The path of a key named twice in one object of ``raw`` (already parsed by orjson into
    ``data``), "" if it is nested too deep to name; None when every object's keys are distinct."""
    try:
        out = orjson.dumps(data)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels): by hand
        kept = _tally(data)
    else:
        if out == raw:  # written as orjson writes it, and nothing was dropped on the way
            return None
        kept = out.count(b":")
    written = raw.count(b":")
    if b"\\" in raw and b"\\u003" in raw:  # rare: only these escapes spell a colon otherwise
        written += len(_COLON_ESCAPE.findall(raw))
    if written == kept:
        return None
    return _first_duplicate(raw)


def _tally(data: Any) -> int:
    """Keys plus colons in the strings of a parsed document, as orjson would write them; one
    container at a time (no recursion, any depth)."""
    count = 0
    todo = [data]
    for value in todo:  # grows while it is walked
        if type(value) is dict:
            count += len(value) + sum(key.count(":") for key in value)
            items = value.values()
        else:
            items = value
        for item in items:
            if type(item) is str:
                count += item.count(":")
            elif type(item) is dict or type(item) is list:
                todo.append(item)
    return count


class _Pairs(list[tuple[str, Any]]):
    """An object's pairs as written (keys in order, duplicates kept), not an array."""


def _first_duplicate(raw: bytes) -> str:
    """The path of a key named twice in one object, outer objects searched before inner ones
    ("" when the document is too deep for the standard library's parser to walk)."""
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs)
    except RecursionError:
        return ""
    todo: list[tuple[str, Any]] = [("", tree)]
    while todo:
        path, value = todo.pop()
        children: list[tuple[str, Any]] = []
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, item in value:
                if key in seen:
                    return _joined(path, key)
                seen.add(key)
                children.append((_joined(path, key), item))
        elif isinstance(value, list):
            children = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        todo.extend(reversed(children))  # depth first, in document order
    return ""  # not reached: the caller counted a duplicate


def _joined(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
