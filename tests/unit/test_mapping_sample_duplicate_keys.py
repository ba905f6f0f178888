"""``tongban mapping test MAPPING SAMPLE`` with a plain sample (an application, not a golden
example) that names a key twice: refused at the sample's line with the key's path, in 简体, 繁體
and English, as intake refuses such an application. Before, the sample was read by a parser that
kept the second value, and the mapping's output was printed as if the sample were sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_examples_duplicate_keys import (  # noqa: F401 (config is a fixture)
    LANGUAGES,
    config,
    tongban,
)

SAMPLE = """\
{"applicant": {"name": "x", "mode": "A"},
 "applicant": {"name": "x", "mode": "B"}}
"""
SAID = {
    "en": "sample.json:2: duplicate key 'applicant'",
    "zh-Hans": "sample.json:2: 键 'applicant' 重复",
    "zh-Hant": "sample.json:2: 鍵 'applicant' 重複",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_sample_with_a_key_written_twice_is_refused_at_its_line(
    config: Path,  # noqa: F811 (the fixture imported above)
    language: str,
) -> None:
    (config / "sample.json").write_text(SAMPLE, encoding="utf-8")
    result = tongban(language, "mapping", "test", "mappings/hk.yaml", "sample.json")
    assert result.exit_code != 0
    assert SAID[language] in result.stderr, result.stderr
    assert '"mode"' not in result.stdout  # no mapped request printed


def test_the_same_sample_written_once_is_mapped(
    config: Path,  # noqa: F811 (the fixture imported above)
) -> None:
    (config / "sample.json").write_text(
        '{"applicant": {"name": "x", "mode": "B"}}\n', encoding="utf-8"
    )
    result = tongban("en", "mapping", "test", "mappings/hk.yaml", "sample.json")
    assert result.exit_code == 0, result.stderr
    assert '"mode": "B"' in result.stdout or '"mode":"B"' in result.stdout, result.stdout
