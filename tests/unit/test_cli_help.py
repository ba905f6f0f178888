"""``tongban --help``, click's own usage errors and the journal's archive and rekey in 简体, 繁體
and English, chosen as the CLI's output is (--lang, TONGBAN_LANG, the locale); exit codes the same
in every language; every help text and click's words translated in all three."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from federation.api.i18n import LOCALE_DIR
from federation.cli import help as cli_help
from federation.cli import lang
from federation.cli.main import main
from replay.factory import open_journal

LOCALES = {"zh_HK.UTF-8": "zh_Hant", "zh_CN.UTF-8": "zh_Hans", "C": "en"}
# click's words tongban says in every language (msgids as in click's source)
CLICK_WORDS = (
    "Usage:",
    "Options",
    "Commands",
    "Show this message and exit.",
    "Error: {message}",
    "Missing option",
    "Missing argument",
    "Invalid value for {param_hint}: {message}",
    "No such command {name!r}.",
    "No such option {name!r}.",
    "Try '{command} {option}' for help.",
    "default: {default}",
    "required",
)


def tongban(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``tongban ARGS`` in this process with only ``env`` deciding the language."""
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(
        main, list(args), env={**quiet, **(env or {})}, prog_name="tongban", terminal_width=80
    )


def translated(domain: str, language: str) -> set[str]:
    """The msgids ``domain``'s catalogue of ``language`` translates (not empty, not fuzzy)."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as f:
        catalog = read_po(f)
    return {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and m.string and not m.fuzzy
    }


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_tongban_help_follows_the_locale(locale: str, language: str) -> None:
    """`tongban --help` under zh_HK, zh_CN and C: click's headings, the description, the option
    help and the commands' lines in 繁體, 简体 and English."""
    result = tongban("--help", env={"LANG": locale})
    assert result.exit_code == 0, result.output
    expected = {
        "zh_Hant": (
            "用法: tongban",
            "選項:",
            "命令:",
            "以日誌庫為先",
            "顯示本說明並退出。",
            "查找、閱讀",
        ),
        "zh_Hans": (
            "用法: tongban",
            "选项:",
            "命令:",
            "以日志库为先",
            "显示本说明并退出。",
            "查找、阅读",
        ),
        "en": (
            "Usage: tongban",
            "Options:",
            "Commands:",
            "journal-first",
            "Show this message",
            "Find, read",
        ),
    }[language]
    for text in expected:
        assert text in result.stdout, result.stdout
    other = {"zh_Hant": "选项", "zh_Hans": "選項", "en": "用法"}[language]
    assert other not in result.stdout


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_journal_search_help_follows_the_locale(locale: str, language: str) -> None:
    """`tongban journal search --help`: the command's description, an option's help and click's
    [default: …] in each script; option names and metavars as they are."""
    result = tongban("journal", "search", "--help", env={"LANG": locale})
    assert result.exit_code == 0, result.output
    expected = {
        "zh_Hant": ("符合所有給定條件的交換", "冪等鍵。", "[預設：tongban.sqlite]"),
        "zh_Hans": ("符合所有给定条件的交换", "幂等键。", "[默认：tongban.sqlite]"),
        "en": ("Exchanges matching every given filter", "Idempotency key.", "[default:"),
    }[language]
    for text in expected:
        assert text in " ".join(result.stdout.split()), result.stdout
    assert "--partner TEXT" in result.stdout and "--format [table|json|csv]" in result.stdout


def test_the_lang_option_before_the_subcommand_chooses_the_help() -> None:
    """`tongban --lang zh-Hant journal search --help` is in 繁體 under LANG=zh_CN, and the help
    that follows in English is English again (nothing of the first language sticks)."""
    chosen = tongban(
        "--lang", "zh-Hant", "journal", "search", "--help", env={"LANG": "zh_CN.UTF-8"}
    )
    assert "符合所有給定條件的交換" in chosen.stdout and "顯示本說明並退出。" in chosen.stdout
    english = tongban("journal", "search", "--help", env={"LANG": "C"})
    assert "Show this message and exit." in english.stdout and "說明" not in english.stdout


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_an_unknown_option_is_refused_in_the_readers_language(locale: str, language: str) -> None:
    """A usage error (unknown option) in each script, on stderr, with exit code 2 in all."""
    result = tongban("journal", "search", "--bogus", env={"LANG": locale})
    assert result.exit_code == 2
    expected = {
        "zh_Hant": (
            "用法: tongban journal search",
            "請用 'tongban journal search --help' 查看說明。",
            "錯誤：沒有選項 '--bogus'。",
        ),
        "zh_Hans": (
            "用法: tongban journal search",
            "请用 'tongban journal search --help' 查看说明。",
            "错误：没有选项 '--bogus'。",
        ),
        "en": (
            "Usage: tongban journal search",
            "Try 'tongban journal search --help' for help.",
            "Error: No such option '--bogus'.",
        ),
    }[language]
    for text in expected:
        assert text in result.stderr, result.stderr
    assert result.stdout == ""


def test_usage_errors_follow_the_lang_option_too() -> None:
    """With --lang zh-Hant under LANG=C: an unknown option, a missing option, an invalid value and
    an unknown command are said in 繁體 (click parses before --lang's callback runs); exit 2."""
    unknown = tongban("--lang", "zh-Hant", "journal", "search", "--bogus", env={"LANG": "C"})
    missing = tongban("--lang=zh-Hant", "journal", "archive", "out.jsonl.gz", env={"LANG": "C"})
    invalid = tongban("--lang", "zh-Hant", "journal", "archive", "--older-than", "soon", "x")
    command = tongban("--lang", "zh-Hant", "journal", "serch", env={"LANG": "C"})
    assert {r.exit_code for r in (unknown, missing, invalid, command)} == {2}
    assert "錯誤：沒有選項 '--bogus'。" in unknown.stderr
    assert "錯誤：缺少選項 '--older-than'" in missing.stderr
    assert "'--older-than' 的值無效：'soon' 不是時長" in invalid.stderr
    assert "沒有命令 'serch'。" in command.stderr and "'search'" in command.stderr


def test_chinese_help_fits_the_terminal() -> None:
    """Every line of a long Chinese help fits 80 columns (two a character), and no line starts
    with a closing mark."""
    result = tongban("replay", "--help", env={"LANG": "zh_HK.UTF-8"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any("冪等鍵從不改變" in line for line in lines)
    assert max(cli_help.width(line) for line in lines) <= 80
    assert not any(line.strip()[:1] in "，。；：）" for line in lines if line.strip())


def test_wrap_wide_breaks_between_characters_and_at_spaces() -> None:
    """Chinese breaks between characters, an English word is never cut, a comma stays at the end."""
    lines = cli_help.wrap_wide(
        "接收時間不早於（ISO 8601；不帶時區時為北京時間），postgresql://x", 20
    )
    assert all(cli_help.width(line) <= 20 for line in lines)
    assert "postgresql://x" in lines[-1] and "".join(lines).count("ISO") == 1
    assert not any(line.startswith("，") for line in lines)
    assert cli_help.wrap_wide("一二三四五六七八九）。", 18) == ["一二三四五六七八", "九）。"]


def sealed_journal(tmp_path: Path) -> str:
    """An empty SQLite journal (its data key made on opening)."""
    path = str(tmp_path / "journal.sqlite")

    async def make() -> None:
        j = open_journal(path)
        await j.open()
        await j.close()

    asyncio.run(make())
    return path


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_journal_archive_and_rekey_say_what_they_did_in_the_readers_language(
    tmp_path: Path, locale: str, language: str
) -> None:
    """archive with nothing to archive, rekey, and an archive refused because its file exists, in
    each script; the exit codes the same in every language."""
    path = sealed_journal(tmp_path)
    env = {"LANG": locale}
    out = tmp_path / "old.jsonl.gz"
    nothing = tongban(
        "journal", "archive", "--older-than", "90d", str(out), "--journal", path, env=env
    )
    rekey = tongban("journal", "rekey", "--journal", path, env=env)
    out.write_bytes(b"")
    exists = tongban(
        "journal", "archive", "--older-than", "90d", str(out), "--journal", path, env=env
    )
    assert (nothing.exit_code, rekey.exit_code, exists.exit_code) == (0, 0, 2), rekey.output
    expected = {
        "zh_Hant": ("無可歸檔：", "已換密鑰：", "歸檔檔案從不覆寫"),
        "zh_Hans": ("无可归档：", "已换密钥：", "归档文件从不覆盖"),
        "en": ("nothing to archive:", "rekeyed:", "an archive is never overwritten"),
    }[language]
    assert expected[0] in nothing.stdout and expected[1] in rekey.stdout
    assert expected[2] in exists.stderr


def test_help_texts_are_found() -> None:
    """The catalogue check (test_cli_languages) has help to check: the walk finds descriptions and
    option help, and an option added without a translation would be reported."""
    found = cli_help.texts(main)
    assert "Find, read, verify and archive what the journal holds." in found
    assert "Idempotency key." in found and len(found) > 50
    extra = click.Command("x", params=[click.Option(["--new"], help="A new untranslated option.")])
    assert "A new untranslated option." in cli_help.texts(extra) - translated("cli", "zh_Hant")


def clicks_words() -> set[str]:
    """The msgids click marks in its installed source."""
    found: set[str] = set()
    folder = Path(click.__file__).parent
    for module in cli_help.CLICK_MODULES:
        for _line, message, _comments, _context in extract_from_file(
            "python", os.path.join(folder, f"{module}.py")
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found | {"required"}  # click passes "required" to _ through a variable


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
def test_clicks_words_are_translated(language: str) -> None:
    """click's usage, headings and errors are in each click.po, and every msgid there is one
    click still uses (an upgrade of click that changes one fails here)."""
    catalogue = translated("click", language)
    assert set(CLICK_WORDS) <= catalogue
    assert catalogue <= clicks_words(), sorted(catalogue - clicks_words())


def test_the_version_line_is_the_same_in_every_language() -> None:
    """`tongban --version` prints the same line under zh_HK, zh_CN and C: scripts read it."""
    said = {tongban("--version", env={"LANG": locale}).stdout for locale in LOCALES}
    assert len(said) == 1 and said.pop().startswith("tongban, version ")
