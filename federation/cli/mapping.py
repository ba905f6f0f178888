"""``tongban mapping test``: a mapping against one sample, or every golden example of the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from federation.api.i18n import translations
from federation.cli import lang
from federation.cli.lang import _
from federation.cli.problems import shown
from federation.domain import strictjson
from federation.domain.errors import ConfigError, MappingError, Problem
from federation.domain.texts import Gettext, said
from federation.mapping.engine import load_mapping
from federation.mapping.examples import (
    check_example,
    dump,
    duplicated,
    load_example,
    load_examples,
)
from federation.runtime.catalogue import Catalogue, load_catalogue


def run_sample(root: Path, mapping_path: Path, sample: Path, *, echo: Callable[..., None]) -> bool:
    """``tongban mapping test MAPPING SAMPLE``: print the mapped request or every error."""
    catalogue: Catalogue | None
    try:
        catalogue = load_catalogue(root)
    except ConfigError:
        catalogue = None  # test the mapping on its own; `tongban check` reports the rest
    mapping = load_mapping(mapping_path, display=_shown(mapping_path))
    schema = None
    if catalogue is not None:
        for (pid, code), m in catalogue.mappings.items():
            if m.path == mapping_path.resolve():
                schema = catalogue.schema(pid, code)
    raw = sample.read_bytes()
    try:
        data = strictjson.loads(raw)  # as intake reads an application: one key, one value
    except strictjson.DuplicateKey as exc:
        path, at = duplicated(raw) or (exc.path, None)
        text = said("duplicate key %(key)r", key=path)
        raise ConfigError([Problem(text=text, file=str(sample), line=at)]) from None
    except orjson.JSONDecodeError as exc:
        problem = Problem(text=said("not JSON: %(error)s", error=str(exc)), file=str(sample))
        raise ConfigError([problem]) from exc
    is_example = (
        isinstance(data, dict)
        and "application" in data
        and ("expected" in data or "expected_errors" in data)
    )
    if is_example:
        example = load_example(sample)
        failures = check_example(mapping, example, gettext=_gettext())
        if schema is not None and example.expected is not None:
            failures += [shown(p) for p in schema.problems(example.expected, file=str(sample))]
        for line in failures:
            echo(line, err=True)
        verdict = _("%(sample)s: ok") if not failures else _("%(sample)s: FAILED")
        echo(verdict % {"sample": sample})
        return not failures
    try:
        mapped, warnings = mapping.map_request_checked(data)
    except MappingError as exc:
        for problem in exc.problems:  # in the reader's language
            echo(shown(problem), err=True)
        echo(_("%(n)d error(s)") % {"n": len(exc.problems)}, err=True)
        return False
    for warning in warnings:
        echo(shown(warning), err=True)
    broken = schema.problems(mapped, file=schema.file) if schema is not None else []
    echo(dump(mapped))
    for problem in broken:
        echo(shown(problem), err=True)
    return not broken


def run_all_examples(root: Path, *, echo: Callable[..., None]) -> bool:
    """``tongban mapping test --all``: every golden example of every mapping in the catalogue."""
    catalogue = load_catalogue(root)
    total = failed = 0
    done: set[Path] = set()
    for (pid, code), mapping in sorted(catalogue.mappings.items()):
        if mapping.path in done:
            continue
        done.add(mapping.path)
        schema = catalogue.schema(pid, code)
        examples = load_examples(mapping.path)
        if len(examples) < 2:
            few = _("%(file)s: has %(n)d golden example(s); every mapping needs two")
            echo(few % {"file": mapping.file, "n": len(examples)}, err=True)
            failed += 1
        for example in examples:
            total += 1
            failures = check_example(mapping, example, gettext=_gettext())
            if schema is not None and example.expected is not None:
                failures += [shown(p) for p in schema.problems(example.expected, file=schema.file)]
            name = f"{mapping.file} ← {example.file.parent.name}/{example.file.name}"
            if failures:
                failed += 1
                # the verdicts are as wide as the indent below in every language (5 columns)
                echo(_("FAIL %(name)s") % {"name": name})
                for line in failures:
                    echo("     " + line.replace("\n", "\n     "))
            else:
                echo(_("ok   %(name)s") % {"name": name})
    echo(_("%(total)d golden examples, %(failed)d failed") % {"total": total, "failed": failed})
    return failed == 0


def _gettext() -> Gettext | None:
    """The cli catalogue of the reader's language, for what a golden example's check says
    (None in English, which is then printed as it always was)."""
    language = lang.current()
    return None if language == lang.DEFAULT else translations(language, "cli").gettext


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
