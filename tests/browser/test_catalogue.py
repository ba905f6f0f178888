"""The console's message catalogues: every message the templates and the code ask for is
translated in each language, and the viewer's language and times are read as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from federation.api.console import i18n

CONSOLE = Path(i18n.__file__).parent


def asked_for() -> set[str]:
    """Every msgid the console's templates and Python modules use."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CONSOLE), method_map, options_map=options
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_the_extractor_finds_the_consoles_messages() -> None:
    """The check below has something to check: the extractor finds templates and code alike."""
    messages = asked_for()
    assert {"Sign in", "Overview", "the request stays the same", "Not allowed"} <= messages


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_no_untranslated_message(language: str) -> None:
    """Each language translates every message asked for (an empty or fuzzy one fails)."""
    po_file = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "console.po"
    with po_file.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(asked_for() - translated)
    assert not missing, f"{po_file.name} ({language}) lacks: {missing}"


def test_catalogues_compile_and_translate() -> None:
    """The catalogues compile at start and answer in their script."""
    assert i18n.translations("zh_Hans").gettext("Sign in") == "登录"
    assert i18n.translations("zh_Hant").gettext("Sign in") == "登入"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        (None, "zh-HK,zh;q=0.8,en;q=0.5", "zh_Hant"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr-FR, zh-CN;q=0.7", "zh_Hans"),
        (None, "en;q=0.3, zh-Hant-MO;q=0.9", "zh_Hant"),
        (None, "", "zh_Hans"),
        ("en", "zh-CN", "en"),
        ("xx", "zh-TW", "zh_Hant"),
    ],
)
def test_language_negotiation(chosen: str | None, header: str, expected: str) -> None:
    """The switch wins; else Accept-Language by q; else simplified Chinese."""
    assert i18n.negotiate(chosen, header) == expected


def test_times_in_the_viewers_zone() -> None:
    """A time is shown in the viewer's zone, a form's wall time is read in it, a bad zone falls back."""
    hk = i18n.zone_of("Asia/Hong_Kong")
    assert i18n.local_time(0, hk) == "1970-01-01 08:00:00"
    assert i18n.local_time(0, i18n.zone_of("Europe/Lisbon")) == "1970-01-01 01:00:00"
    assert i18n.zone_of("Not/AZone").key == "Asia/Shanghai"
    assert i18n.to_query_time("2026-11-28T09:00", hk) == "2026-11-28T09:00:00+08:00"
