"""The CLI's human output in 简体, 繁體 and English, chosen by --lang, TONGBAN_LANG or the locale;
JSON output the same in every language; every message the CLI asks for translated in all three."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from federation import cli
from federation.api.i18n import LANGUAGES, LOCALE_DIR, translations
from federation.cli import lang
from federation.cli.help import texts
from federation.cli.main import main
from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange
from replay import rules
from replay.factory import open_journal
from tests.conftest import REPO

CLI = Path(cli.__file__).parent
PROBLEM_LAYERS = [CLI.parent / name for name in ("domain", "config", "mapping", "runtime", "cli")]
# Outside federation/: the protocols' own checks of partners.yaml and the journal settings
PROBLEM_FILES = [(REPO / "adapters", "**.py"), (REPO / "replay", "factory.py")]
# The shell's locale → the script a heading is printed in
LOCALES = {"zh_HK.UTF-8": "zh_Hant", "zh_CN.UTF-8": "zh_Hans", "C": "en"}


def tongban(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``tongban ARGS`` in this process with only ``env`` deciding the language."""
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, list(args), env={**quiet, **(env or {})})


async def one_exchange(path: str, xid: str, key: str = "lang-1") -> None:
    """One exchange for hk in the SQLite journal at ``path``, with an applicant's name in Chinese."""
    j = open_journal(path)
    await j.open()
    try:
        new = NewExchange(
            id=xid,
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=key,
            request_hash="sha256:lang",
            application={"applicant": {"name": "陳大文"}},
            received_at=1_790_000_000.0,
        )
        await j.create(new, owner="test", lease_until=0.0)
    finally:
        await j.close()


@pytest.fixture
def journal(tmp_path: Path) -> tuple[str, str]:
    """A SQLite journal holding one exchange for hk, and that exchange's id."""
    path = str(tmp_path / "journal.sqlite")
    xid = new_id(1_790_000_000.0)
    asyncio.run(one_exchange(path, xid))
    return path, xid


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "zh_HK.UTF-8"}, "zh_Hant"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_Hant"),
        ({"LANG": "zh_MO.UTF-8"}, "zh_Hant"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_Hans"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_HK.UTF-8"}, "zh_Hant"),
        ({"LANG": "zh_HK.UTF-8", "LC_MESSAGES": "C"}, "en"),
        ({"LANG": "C", "TONGBAN_LANG": "zh-Hans"}, "zh_Hans"),
        ({"LC_ALL": "zh_CN.UTF-8", "TONGBAN_LANG": "zh-Hant"}, "zh_Hant"),
        ({"LANG": "zh_HK.UTF-8", "TONGBAN_LANG": "klingon"}, "zh_Hant"),
    ],
)
def test_the_language_comes_from_tongban_lang_then_the_locale(
    env: dict[str, str], expected: str
) -> None:
    """TONGBAN_LANG first, then LC_ALL, LC_MESSAGES, LANG (the first set); English otherwise."""
    assert lang.from_environment(env) == expected


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_journal_search_headings_follow_the_locale(
    journal: tuple[str, str], locale: str, language: str
) -> None:
    """The same search under zh_HK, zh_CN and C prints its headings in 繁體, 简体 and English."""
    path, xid = journal
    result = tongban("journal", "search", "--journal", path, env={"LANG": locale})
    assert result.exit_code == 0, result.output
    expected = {
        "zh_Hant": ("狀態", "協作方", "1 個交換，最新的在前"),
        "zh_Hans": ("状态", "协作方", "1 个交换，最新的在前"),
        "en": ("state", "partner", "1 exchange(s), newest first"),
    }[language]
    for text in expected:
        assert text in result.stdout, result.stdout
    assert xid in result.stdout


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_journal_show_replay_dry_run_and_check_follow_the_locale(
    journal: tuple[str, str], locale: str, language: str
) -> None:
    """journal show's headings, the replay dry run's summary and the check's summary in each
    script; the check's file:line warnings and key paths stay as they are."""
    path, xid = journal
    env = {"LANG": locale}
    show = tongban("journal", "show", xid, "--journal", path, "--config", str(REPO), env=env)
    dry = tongban("replay", xid, "--mode", "resend", "--dry-run", "--journal", path, env=env)
    check = tongban("check", "--config", str(REPO), env=env)
    assert show.exit_code == 0 and dry.exit_code == 0 and check.exit_code == 0, check.output
    expected = {
        "zh_Hant": (
            "時間線",
            "試運行：未重放任何交換（將重放 0 個，略過 1 個）",
            "通過：11 個協作方",
        ),
        "zh_Hans": (
            "时间线",
            "试运行：未重放任何交换（将重放 0 个，跳过 1 个）",
            "通过：11 个协作方",
        ),
        "en": ("timeline", "dry run: nothing replayed (0 to replay, 1 to skip)", "ok: 11 partners"),
    }[language]
    assert expected[0] in show.stdout
    verdict = {
        "zh_Hant": "今日映射拒絕此申請",
        "zh_Hans": "今日映射拒绝此申请",
        "en": "today's mapping rejects this application",
    }[language]
    assert verdict in show.stdout
    assert expected[1] in dry.stdout
    assert expected[2] in check.stdout
    assert "partners.yaml:" in check.stdout and "partners[2].auth.client_cert" in check.stdout


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_journal_verify_says_ok_in_the_readers_language(
    journal: tuple[str, str], locale: str, language: str
) -> None:
    """journal verify's verdict in each script, with the same count of events."""
    path, _ = journal
    result = tongban("journal", "verify", "--journal", path, env={"LANG": locale})
    assert result.exit_code == 0, result.output
    expected = {"zh_Hant": "通過：", "zh_Hans": "通过：", "en": "ok: "}[language]
    assert result.stdout.startswith(expected) and any(c.isdigit() for c in result.stdout)


@pytest.mark.parametrize(("locale", "language"), LOCALES.items())
def test_errors_people_read_follow_the_locale(tmp_path: Path, locale: str, language: str) -> None:
    """A missing journal is refused in the reader's script, with the same exit code."""
    result = tongban(
        "journal", "show", "X", "--journal", str(tmp_path / "none.sqlite"), env={"LANG": locale}
    )
    expected = {"zh_Hant": "錯誤：", "zh_Hans": "错误：", "en": "Error: no journal at"}[language]
    assert result.exit_code == 2
    assert expected in result.stderr


def test_the_lang_option_beats_the_environment(journal: tuple[str, str]) -> None:
    """`tongban --lang zh-Hant` prints 繁體 under LANG=zh_CN; an unknown --lang is a usage error."""
    path, _ = journal
    env = {"LANG": "zh_CN.UTF-8", "TONGBAN_LANG": "en"}
    chosen = tongban("--lang", "zh-Hant", "journal", "search", "--journal", path, env=env)
    assert "狀態" in chosen.stdout and "状态" not in chosen.stdout
    unknown = tongban("--lang", "fr", "journal", "search", "--journal", path)
    assert unknown.exit_code == 2 and "--lang" in unknown.stderr


def test_json_output_is_the_same_in_every_language(journal: tuple[str, str]) -> None:
    """search, show and the audit search answer the same JSON whatever the language."""
    path, xid = journal
    outputs = {}
    for locale in LOCALES:
        env = {"LANG": locale}
        outputs[locale] = (
            tongban("journal", "search", "--journal", path, "--format", "json", env=env).stdout,
            tongban("journal", "show", xid, "--journal", path, "--format", "json", env=env).stdout,
            tongban(
                "audit", "search", "--journal", path, "--action", "x", "--format", "json", env=env
            ).stdout,
        )
    assert xid in outputs["C"][0] and xid in outputs["C"][1]
    assert outputs["zh_HK.UTF-8"] == outputs["zh_CN.UTF-8"] == outputs["C"]


def asked_for() -> set[str]:
    """Every msgid the CLI's modules use: the messages they mark and the help of every command
    and option (said when --help is shown, federation/cli/help.py), and the configuration
    problems the CLI says in the reader's language (``said(…)`` and ``N_(…)`` where problems are
    made, federation/domain/texts.py)."""
    found = texts(main)
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CLI), [("**.py", "python")]
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found | problem_texts()


def problem_texts() -> set[str]:
    """The templates of configuration problems, in the layers and files that make them."""
    found: set[str] = set()
    for layer, pattern in [(layer, "**.py") for layer in PROBLEM_LAYERS] + PROBLEM_FILES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(layer), [(pattern, "python")], keywords={"said": None, "N_": None}
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_the_extractor_finds_the_clis_messages() -> None:
    """The check below has something to check: the extractor finds the CLI's messages and the
    configuration problems' templates, those of PyYAML's and jsonschema's messages included."""
    assert {"timeline", "%(n)d error(s)", "Error: %(message)s", "Idempotency key."} <= asked_for()
    assert {
        "missing required key %(key)r",
        "invalid YAML: %(problem)s",
        "mapping values are not allowed here",
        "%(name)s is a required property",
        "does not satisfy %(file)s: %(error)s",
        "no service %(name)r in the WSDL; it has: %(names)s",
        "%(file)s: not well-formed XML: %(error)s",
    } <= problem_texts()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cli_message_is_translated(language: str) -> None:
    """Each cli.po translates every message the CLI asks for and every help text (an empty or
    fuzzy one fails), so a new string, command or option cannot go untranslated silently."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / "cli.po"
    with po_file.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(asked_for() - translated)
    assert not missing, f"cli.po ({language}) lacks: {missing}"


@pytest.mark.parametrize("domain", ["cli", "console"])
@pytest.mark.parametrize("language", ["en", "zh_Hans", "zh_Hant"])
def test_every_replay_skip_reason_is_translated(domain: str, language: str) -> None:
    """Each form of skip reason the replay service gives has its text in the CLI's and the
    console's catalogues of every language (a new reason cannot go untranslated silently)."""
    gettext = translations(language, domain).gettext
    for template, _pattern in rules._READ:
        said = gettext(template)
        assert said and (language == "en" or said != template), template


def test_a_skip_reason_is_said_in_the_readers_language() -> None:
    """The English reasons kept in JSON and the audit read back in 繁體 with their values; a
    reason of another form stays as it is."""
    gettext = translations("zh_Hant", "cli").gettext
    ex_state = rules.NOT_REPLAYABLE % {"state": "delivered", "names": "failed or rejected"}
    assert (
        rules.reason_in(ex_state, gettext)
        == "狀態為 delivered：只重放狀態為 failed or rejected 的交換"
    )
    assert rules.reason_in(rules.NEVER_SENT, gettext).startswith("從未發出")
    moved = rules.MOVED % {"error": "exchange X: no transition a → b"}
    assert rules.reason_in(moved, gettext) == "計劃之後已有變化：exchange X: no transition a → b"
    assert rules.reason_in("something else", gettext) == "something else"


def test_the_journal_failing_a_replay_is_said_in_the_readers_language() -> None:
    """A replay the journal could not take, or refused as damaged, reads back in 简体 and 繁體
    (the sentence says nothing of where the journal lives)."""
    for language, busy, broken in (
        ("zh_Hans", "日志库此刻无法执行", "须由运维人员检查"),
        ("zh_Hant", "日誌庫此刻未能執行", "須由營運人員檢查"),
    ):
        for domain in ("cli", "console"):
            gettext = translations(language, domain).gettext
            assert busy in rules.reason_in(rules.JOURNAL_BUSY, gettext)
            assert broken in rules.reason_in(rules.JOURNAL_BROKEN, gettext)
