"""Golden examples: sample applications beside each mapping, with the request they must map to.

``mappings/hk/td-vehicle-licence-renewal.yaml`` keeps its examples in
``mappings/hk/td-vehicle-licence-renewal.examples/*.json``, each an object with ``description``,
``application`` and either ``expected`` (the exact mapped request) or ``expected_errors`` (a list of
``{"path": …, "contains": …}`` the mapping must report). ``demo: true`` examples are what ``tongban demo``
submits, from ``source``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from federation.domain.errors import ConfigError, MappingError, Problem
from federation.mapping.engine import CompiledMapping


@dataclass(frozen=True, kw_only=True)
class Example:
    file: Path
    description: str
    demo: bool
    source: str | None
    application: dict[str, Any]
    expected: dict[str, Any] | None
    expected_errors: list[dict[str, str]] | None


def examples_dir(mapping_path: Path) -> Path:
    return mapping_path.with_name(mapping_path.stem + ".examples")


def load_examples(mapping_path: Path) -> list[Example]:
    """Every example beside a mapping, sorted by file name; ConfigError if one is malformed."""
    folder = examples_dir(mapping_path)
    if not folder.is_dir():
        return []
    out: list[Example] = []
    problems: list[Problem] = []
    for file in sorted(folder.glob("*.json")):
        try:
            out.append(load_example(file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


def load_example(file: Path) -> Example:
    """One golden example file; ConfigError says what is wrong with it."""

    def bad(message: str) -> ConfigError:
        return ConfigError([Problem(message=message, file=str(file))])

    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise bad(f"not a readable JSON example: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("application"), dict):
        raise bad("an example needs an 'application' object")
    if ("expected" in data) == ("expected_errors" in data):
        raise bad("give exactly one of 'expected' or 'expected_errors'")
    wanted = data.get("expected_errors")
    if wanted is not None and not (
        isinstance(wanted, list)
        and all(isinstance(w, dict) and isinstance(w.get("path"), str) for w in wanted)
    ):
        raise bad('\'expected_errors\' must be a list of {"path": …, "contains": …}')
    return Example(
        file=file,
        description=str(data.get("description", "")),
        demo=bool(data.get("demo", False)),
        source=data.get("source"),
        application=data["application"],
        expected=data.get("expected"),
        expected_errors=wanted,
    )


def check_example(mapping: CompiledMapping, example: Example) -> list[str]:
    """Differences between what the mapping does with the example and what the example expects."""
    try:
        mapped = mapping.map_request(example.application)
    except MappingError as exc:
        if example.expected_errors is None:
            return [f"mapping failed: {p}" for p in exc.problems]
        return _match_errors(exc.problems, example.expected_errors)
    if example.expected_errors is not None:
        return [f"expected errors {example.expected_errors}, but the mapping succeeded"]
    if _normalise(mapped) != _normalise(example.expected):
        return [diff_text(example.expected, mapped)]
    return []


def _match_errors(problems: tuple[Problem, ...], expected: list[dict[str, str]]) -> list[str]:
    out = []
    for want in expected:
        if not any(
            p.path == want.get("path") and want.get("contains", "") in p.message for p in problems
        ):
            out.append(f"no error at {want.get('path')!r} containing {want.get('contains', '')!r}")
    wanted = {w.get("path") for w in expected}
    out += [f"unexpected error: {p}" for p in problems if p.path not in wanted]
    return out


def _normalise(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def diff_text(expected: Any, actual: Any) -> str:
    """A readable unified diff of two JSON values."""
    a = orjson.dumps(_normalise(expected), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    b = orjson.dumps(_normalise(actual), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    lines = difflib.unified_diff(
        a.decode().splitlines(), b.decode().splitlines(), "expected", "mapped", lineterm=""
    )
    return "\n".join(lines)


def dump(value: Any) -> str:
    return orjson.dumps(
        _normalise(value), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    ).decode()
