"""A golden example that names a key twice in one object is refused, as intake refuses such an
application: by the example's file, the line of the second key and the key's path, in 简体, 繁體
and English; ``tongban mapping test`` never passes an example whose meaning depends on which of
two keys a parser keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation.cli import lang
from federation.cli.main import main
from federation.domain.errors import ConfigError
from federation.mapping.examples import duplicated, load_example, load_examples
from tests.unit.test_config import partner as partners

MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n  holder.mode: applicant.mode\n"
LANGUAGES = ("en", "zh-Hans", "zh-Hant")
# The application says mode twice: orjson (and intake, were it not strict) would keep "B".
TWICE = """\
{
  "application": {"applicant": {"name": "x", "mode": "A"},
                  "applicant": {"name": "x", "mode": "B"}},
  "expected": {"holder": {"name": "x", "mode": "B"}}
}
"""


def example_problems(file: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_example(file)
    return [str(p) for p in info.value.problems]


def test_a_key_written_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    """The example's file, the second key's line and path."""
    file = tmp_path / "ex.json"
    file.write_text(TWICE, encoding="utf-8")
    assert example_problems(file) == [f"{file}:3: duplicate key 'application.applicant'"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"application": {"mode": 1, "mode": 2}, "expected": {}}', ("application.mode", 1)),
        ('{"application": {}, "expected": {"a": [1, {"b": 1,\n"b": 2}]}}', ("expected.a[1].b", 2)),
        ('{"application": {"a": "}{,\\"", "a": 1}, "expected": {}}', ("application.a", 1)),
        ('{"application": {"a": 1, "\\u0061": 2}, "expected": {}}', ("application.a", 1)),
        (
            '{"response": [{}, {"input": {}, "input": {}}], "application": {}}',
            ("response[1].input", 1),
        ),
    ],
)
def test_the_first_key_written_twice_is_found_wherever_it_is(
    tmp_path: Path, text: str, found: tuple[str, int]
) -> None:
    """Nested in lists, after strings holding braces, commas and quotes, spelt with an escape:
    the path and line of the first repeat, as written."""
    assert duplicated(text.encode()) == found
    file = tmp_path / "ex.json"
    file.write_text(text, encoding="utf-8")
    path, line = found
    assert example_problems(file) == [f"{file}:{line}: duplicate key '{path}'"]


@pytest.mark.parametrize(
    "text",
    [
        '{"application": {"a": 1, "b": {"a": 1}}, "expected": {"a": [{"a": 1}, {"a": 2}]}}',
        '{"a": "\\"a\\": 1, \\"a\\": 2"}',
        "[]",
        '"x"',
    ],
)
def test_equal_keys_in_different_objects_are_no_repeat(text: str) -> None:
    """The same key in two objects, or inside a string, is not a repeat."""
    assert duplicated(text.encode()) is None


def test_every_example_of_a_mapping_is_reported(tmp_path: Path) -> None:
    """load_examples reports the example with a repeat among the others' problems."""
    mapping = tmp_path / "mappings" / "hk.yaml"
    (tmp_path / "mappings" / "hk.examples").mkdir(parents=True)
    mapping.write_text(MAPPING, encoding="utf-8")
    (tmp_path / "mappings" / "hk.examples" / "01.json").write_text(TWICE, encoding="utf-8")
    (tmp_path / "mappings" / "hk.examples" / "02.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_examples(mapping)
    [twice, broken] = [str(p) for p in info.value.problems]
    assert twice.endswith("hk.examples/01.json:3: duplicate key 'application.applicant'")
    assert "hk.examples/02.json: not a readable JSON example: " in broken


SAID = {
    "en": "ex.json:3: duplicate key 'application.applicant'",
    "zh-Hans": "ex.json:3: 键 'application.applicant' 重复",
    "zh-Hant": "ex.json:3: 鍵 'application.applicant' 重複",
}


def tongban(language: str, *args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", language, *args], env=quiet)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder (the working directory) whose mapping's examples are ex.json
    (the repeat) and a good one, and ex.json beside partners.yaml too."""
    folder = tmp_path / "mappings" / "hk.examples"
    folder.mkdir(parents=True)
    (tmp_path / "mappings" / "hk.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(partners(), encoding="utf-8")
    (tmp_path / "ex.json").write_text(TWICE, encoding="utf-8")
    (folder / "ex.json").write_text(TWICE, encoding="utf-8")
    good = TWICE.replace('"mode": "A"},\n                  "applicant": {"name": "x", ', "")
    (folder / "good.json").write_text(good, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("language", LANGUAGES)
def test_mapping_test_refuses_the_example_in_each_language(config: Path, language: str) -> None:
    """tongban mapping test MAPPING EXAMPLE: refused with its file:line and key, exit 1, in the
    reader's language; nothing says ok."""
    result = tongban(language, "mapping", "test", "mappings/hk.yaml", "ex.json")
    assert result.exit_code == 1
    assert result.stderr.startswith(SAID[language] + "\n"), result.stderr
    assert "ok" not in result.stdout


@pytest.mark.parametrize("language", LANGUAGES)
def test_mapping_test_all_refuses_the_example_in_each_language(config: Path, language: str) -> None:
    """tongban mapping test --all: the example with the repeat is refused, exit 1."""
    result = tongban(language, "mapping", "test", "--all")
    assert result.exit_code == 1
    assert f"hk.examples/{SAID[language]}" in result.stderr, result.stderr
