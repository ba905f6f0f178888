"""The language of what the CLI prints for people: 简体, 繁體 or English, from the same catalogues
as the console (domain ``cli`` in ``federation/api/locale``).

The language is ``tongban --lang``, else ``TONGBAN_LANG``, else the locale the shell sets
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``, the first one set, as the C library reads them):
``zh_CN`` → 简体, ``zh_TW``/``zh_HK``/``zh_MO`` → 繁體, anything else (``C``, ``POSIX``, ``en_*``)
→ English. Only what people read changes: JSON and CSV output, file:line and key paths, exit codes
and log lines stay as they are in every language.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextvars import ContextVar

import click

from federation.api.i18n import LANGUAGES, translations

ENV = "TONGBAN_LANG"
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
DEFAULT = "en"
_META = "tongban.lang"
# The language ``--lang`` names, read from the arguments before click parses them (help.Root),
# for what is said where no click context is current any more: usage errors and failures.
CHOSEN: ContextVar[str | None] = ContextVar("tongban_lang", default=None)

# Language tags and locale names (lower case, '-' for '_') → our catalogues.
_NAMES = {
    "zh-hans": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh": "zh_Hans",
    "zh-hant": "zh_Hant",
    "zh-tw": "zh_Hant",
    "zh-hk": "zh_Hant",
    "zh-mo": "zh_Hant",
    "en": "en",
    "c": "en",
    "posix": "en",
}


def language_of(name: str | None) -> str | None:
    """Our catalogue for a tag or locale name (``zh-Hant``, ``zh_HK.UTF-8``, ``C``), or None."""
    if not name:
        return None
    tag = name.split(".")[0].split("@")[0].replace("_", "-").strip().lower()
    parts = tag.split("-")
    for candidate in (tag, "-".join(parts[:2]), parts[0]):
        if candidate in _NAMES:
            return _NAMES[candidate]
    return None


def from_environment(env: Mapping[str, str] | None = None) -> str:
    """The language ``TONGBAN_LANG`` names, else the shell's locale, else English."""
    env = os.environ if env is None else env
    chosen = language_of(env.get(ENV))
    if chosen is not None:
        return chosen
    for variable in LOCALE_VARIABLES:
        if env.get(variable):  # the first one set decides, as in the C library
            return language_of(env[variable]) or DEFAULT
    return DEFAULT


def choose(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--lang``'s callback: keep the choice for every command of this invocation."""
    if value is None:
        return None
    chosen = language_of(value)
    if chosen is None:
        names = ", ".join(("zh-Hans", "zh-Hant", "en"))
        raise click.BadParameter(
            _("%(value)r: one of %(names)s") % {"value": value, "names": names}
        )
    ctx.meta[_META] = chosen
    return chosen


def given(args: Sequence[str]) -> str | None:
    """The value of ``--lang`` among the options before the subcommand in ``args``, or None."""
    for i, arg in enumerate(args):
        if arg == "--lang":
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
        if not arg.startswith("-"):
            return None  # the subcommand: its options are its own
    return None


def current() -> str:
    """The language of this invocation: ``--lang`` if given, else the environment's."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_META) in LANGUAGES:
        return str(ctx.meta[_META])
    return CHOSEN.get() or from_environment()


def _(message: str) -> str:
    """``message`` in the reader's language (the English msgid when a catalogue lacks it)."""
    return translations(current(), "cli").gettext(message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues where it is written; ``_`` says it when it is shown."""
    return message
