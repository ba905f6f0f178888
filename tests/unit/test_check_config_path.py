"""`tongban check --config` names the path given when it does not exist, in the reader's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation.cli.main import main


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "no such directory or file"),
        ("zh-Hans", "没有这个目录或文件"),
        ("zh-Hant", "沒有這個目錄或檔案"),
    ],
)
def test_a_missing_config_path_is_named_as_given(tmp_path: Path, language: str, words: str) -> None:
    """Not "<path>/partners.yaml: file not found": the path given does not exist (exit 1)."""
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(main, ["--lang", language, "check", "--config", str(missing)])
    assert result.exit_code == 1
    assert f"--config {missing}" in result.output and words in result.output
    assert "partners.yaml: " not in result.output and "Traceback" not in result.output
