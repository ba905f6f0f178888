"""A reason or an exchange id typed with a NUL or a byte that is not UTF-8 (which Python reads as a
lone surrogate) is a usage error naming the option, exit 2, in the reader's language; before, the
journal's sealing (or the database) met it and the command ended in a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from federation.cli.main import main

BAD = ["a\udcffb", "a\x00b"]
XID = "01JD0000000000000000000000"


@pytest.mark.parametrize("bad", BAD, ids=["not-utf8", "nul"])
@pytest.mark.parametrize(
    "args",
    [
        ["journal", "show", XID, "--reason"],
        ["replay", XID, "--mode", "resend", "--reason"],
        ["callback", "resend", XID, "--reason"],
        ["notice", "resend", XID, "--reason"],
    ],
    ids=["show", "replay", "callback", "notice"],
)
def test_a_reason_a_journal_cannot_keep_is_a_usage_error(
    tmp_path, args: list[str], bad: str
) -> None:
    run = CliRunner().invoke(
        main, ["--lang", "en", *args, bad, "--journal", str(tmp_path / "j.sqlite")]
    )
    assert run.exit_code == 2, run.output
    assert "--reason" in run.output and "a journal cannot keep it" in run.output
    assert run.exception is None or isinstance(run.exception, SystemExit)


@pytest.mark.parametrize("bad", BAD, ids=["not-utf8", "nul"])
def test_an_exchange_id_a_journal_cannot_keep_is_a_usage_error_in_each_language(
    tmp_path, bad: str
) -> None:
    run = CliRunner().invoke(
        main,
        ["--lang", "zh-Hant", "journal", "show", bad, "--journal", str(tmp_path / "j.sqlite")],
    )
    assert run.exit_code == 2, run.output
    assert "日誌庫無法保存" in run.output
