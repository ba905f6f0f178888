"""Placeholders of a ``format:`` text, with the steps each value passes through.

::

    format: "{applicant.surname}, {applicant.given_name}"          fields filled in
    format: "{applicant.birth_date|date:YYYYMMDD}-{serial|pad:6}"  each through its own steps
    format: "{name|max_length:{bytes: 20, encoding: gbk}}"        an argument may be a YAML flow map

After the path, ``|`` introduces a step: a name (``upper``) or ``name:argument``, the argument read
as YAML (``pad:6`` is ``{pad: 6}``, ``date:{from: DD/MM/YYYY, to: iso}`` a mapping). ``{{`` and
``}}`` outside a placeholder are literal braces. The steps are the ones ``transform:`` takes, checked
when the mapping loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from federation.config.yamlguard import Refused, safe_fragment


class ExpressionError(ValueError):
    """A ``format:`` text that cannot be read; the message says where."""


@dataclass(frozen=True, kw_only=True)
class Hole:
    """One placeholder: the field path and its steps as a ``transform:`` list would write them."""

    path: str
    steps: tuple[Any, ...] = ()


def parse_template(text: str) -> tuple[list[str], list[Hole]]:
    """The literal texts around the placeholders (one more than the holes) and the holes."""
    literals: list[str] = []
    holes: list[Hole] = []
    literal, i = "", 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text[i : i + 2] == char * 2:
            literal += char
            i += 2
        elif char == "}":
            raise ExpressionError(
                f"bad format text: a single '}}' at character {i + 1}; write '}}}}' for a brace"
            )
        elif char == "{":
            end = _closing(text, i)
            holes.append(_hole(text[i + 1 : end], i))
            literals.append(literal)
            literal, i = "", end + 1
        else:
            literal += char
            i += 1
    literals.append(literal)
    return literals, holes


def _closing(text: str, start: int) -> int:
    """The index of the brace closing the placeholder opened at ``start`` (nested braces count)."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ExpressionError(
        f"bad format text: the placeholder at character {start + 1} is not closed"
    )


def _hole(inside: str, at: int) -> Hole:
    path, *written = (part.strip() for part in inside.split("|"))
    if not path:
        raise ExpressionError(
            f"bad format text: the placeholder at character {at + 1} names no field"
        )
    if ":" in path or "!" in path:
        name = path.split(":")[0].split("!")[0]
        raise ExpressionError(
            f"placeholder {{{name}}}: formatting options are not supported; "
            f"give steps after '|', as {{{name}|pad:5}}"
        )
    steps: list[Any] = []
    for part in written:
        name, colon, arg = part.partition(":")
        name = name.strip()
        if not name:
            raise ExpressionError(f"bad format text: an empty step in the placeholder at {at + 1}")
        if not colon:
            steps.append(name)
            continue
        try:
            value = safe_fragment(arg) if arg.strip() else None
        except Refused as exc:  # aliases of aliases: a few characters that would grow huge
            raise ExpressionError(
                f"bad format text: the argument of {name!r} at character {at + 1}: {exc}"
            ) from None
        except yaml.YAMLError:
            raise ExpressionError(
                f"bad format text: the argument of {name!r} at character {at + 1} is not YAML"
            ) from None
        steps.append({name: value})
    return Hole(path=path, steps=tuple(steps))
