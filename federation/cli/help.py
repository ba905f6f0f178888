"""``--help`` and click's own messages in the reader's language (简体, 繁體 or English).

One place does it, when the text is shown, so the language is the one of this invocation
(``--lang`` even before the subcommand, else the environment; see ``federation.cli.lang``):

- every command of ``tongban`` is a :class:`Command` or a :class:`Group` (groups make their
  subcommands of these classes), which says its docstring, its short help in the list of commands
  and each option's help through the ``cli`` catalogue; the English text stays the msgid, so
  ``tests/unit/test_cli_languages.py`` walks the command tree and requires each one in every
  ``cli.po``;
- click marks its own words (``Usage:``, ``Options``, ``Error: …``, ``Missing option``, ``No such
  option``, ``Try '…' for help.``) with gettext; :func:`speak_clicks_words` points click's modules
  at the ``click`` catalogue (``locale/<language>/LC_MESSAGES/click.po``, msgids as in click's
  source) instead of the process's gettext domain.

Exit codes, option names, metavars, JSON and CSV do not change with the language.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import click
from click.formatting import measure_table
from click.utils import _make_default_short_help

from federation.api.i18n import translations
from federation.cli import lang

# click's modules that say something to people through ``_``/``ngettext`` (click ≥ 8.0)
CLICK_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "types", "utils")
HELP_OPTION = "Show this message and exit."


def click_gettext(message: str) -> str:
    """One of click's own messages in the reader's language."""
    return translations(lang.current(), "click").gettext(message)


def click_ngettext(singular: str, plural: str, n: int) -> str:
    """One of click's own messages with a count, in the reader's language."""
    return translations(lang.current(), "click").ngettext(singular, plural, n)


def speak_clicks_words() -> None:
    """Have click's modules translate their messages through our ``click`` catalogues."""
    for name in CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = click_gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = click_ngettext  # type: ignore[attr-defined]


def said(text: str) -> str:
    """A help text in the reader's language: ours in ``cli``, click's own (--help, --version)
    in ``click``; the English text when neither catalogue has it."""
    language = lang.current()
    ours = translations(language, "cli").gettext(text)
    return ours if ours != text else translations(language, "click").gettext(text)


def help_text(command: click.Command) -> str:
    """The msgid of a command's help: its docstring as click shows it (up to a form feed)."""
    return inspect.cleandoc(command.help).partition("\f")[0] if command.help else ""


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: two for a Chinese character or full-width mark."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# A Chinese character or mark, a run of other non-space characters (a word, an option), a space
_TOKEN = re.compile(r"[\u2e80-\uffff]|[^\s\u2e80-\uffff]+|\s+")
_NO_LINE_START = frozenset("，。、；：）」』？！")


def wrap_wide(text: str, columns: int) -> list[str]:
    """``text`` (one paragraph) in lines of at most ``columns`` terminal columns, broken between
    Chinese characters or at spaces; a closing mark takes the character before it to the next
    line rather than start one."""
    lines: list[list[str]] = [[]]
    for token in _TOKEN.findall(text.replace("\n", " ")):
        line = lines[-1]
        if token.isspace():
            if line:
                line.append(" ")
            continue
        if line and width("".join(line) + token) > columns:
            carried: list[str] = []
            while (
                token in _NO_LINE_START
                and len(line) > 1
                and (not carried or carried[0] in _NO_LINE_START)
            ):
                carried.insert(0, line.pop())
            lines.append(carried)
        lines[-1].append(token)
    return ["".join(line).strip() for line in lines if "".join(line).strip()]


def _short(text: str, limit: int) -> str:
    """The short help of a command in the list of commands: click's for English; for Chinese the
    first sentence (to 。), cut to ``limit`` columns with …"""
    if text.isascii():
        return _make_default_short_help(text, limit)
    first = text.partition("\n\n")[0].replace("\n", "").split("。")[0]
    while width(first) > limit:
        first = first[:-2] + "…"
    return first


class Formatter(click.HelpFormatter):
    """click's help formatter, wrapping Chinese text by the columns it takes (click counts one a
    character and breaks only at spaces)."""

    def write_text(self, text: str) -> None:
        """Paragraphs indented and wrapped; English as click does it."""
        if text.isascii():
            super().write_text(text)
            return
        indent = " " * self.current_indent
        columns = max(self.width - self.current_indent, 20)
        paragraphs = [
            "\n".join(indent + line for line in wrap_wide(p, columns)) for p in text.split("\n\n")
        ]
        self.write("\n\n".join(paragraphs) + "\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        """Options and commands beside their help; Chinese help wrapped here, kept by click."""
        rows = list(rows)
        widths = measure_table(rows)
        first_col = min(widths[0], col_max) + col_spacing if widths else 0
        columns = max(self.width - first_col - 2, 10)
        kept = [
            (a, b if b.isascii() else "\b\n" + "\n".join(wrap_wide(b, columns))) for a, b in rows
        ]
        super().write_dl(kept, col_max, col_spacing)


class Context(click.Context):
    """A click context whose help is formatted by :class:`Formatter`."""

    formatter_class = Formatter


class Command(click.Command):
    """A ``tongban`` command whose help is said in the reader's language."""

    context_class = Context

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The docstring, translated."""
        text = help_text(self)
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(said(text))

    def get_short_help_str(self, limit: int = 45) -> str:
        """The line beside the command in its group's list, translated."""
        if self.short_help:
            return said(inspect.cleandoc(self.short_help))
        text = help_text(self)
        return _short(said(text), limit) if text else ""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        """click's --help, its help kept as the English msgid (said when shown)."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION
        return option

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each option's help translated (click adds its [default: …] in the same language)."""
        rows = []
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                continue
            shown = copy.copy(param)
            shown.help = said(inspect.cleandoc(param.help)) if param.help else param.help
            record = shown.get_help_record(ctx)
            if record is not None:
                rows.append(record)
        if rows:
            with formatter.section(click_gettext("Options")):
                formatter.write_dl(rows)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)


class Group(Command, click.Group):
    """A ``tongban`` group: its subcommands and subgroups are of these classes too."""

    command_class = Command
    group_class: type[click.Group | type] | None = type


class Root(Group):
    """``tongban`` itself: settles the language before click parses anything, so a usage error
    is said in the language ``--lang`` names too."""

    group_class = Group

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command with click's words and the help in the reader's language."""
        speak_clicks_words()
        given: Sequence[str] | None = kwargs.get("args", args[0] if args else None)
        token = lang.CHOSEN.set(
            lang.language_of(lang.given(sys.argv[1:] if given is None else given))
        )
        try:
            return super().main(*args, **kwargs)
        finally:
            lang.CHOSEN.reset(token)


def texts(command: click.Command) -> set[str]:
    """Every help text of ``command`` and of the commands under it (docstrings, short helps and
    options' help): the msgids the ``cli`` catalogues must translate."""
    found = {help_text(command)} if command.help else set()
    if command.short_help:
        found.add(inspect.cleandoc(command.short_help))
    for param in command.params:
        if isinstance(param, click.Option) and param.help and not param.hidden:
            found.add(inspect.cleandoc(param.help))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found |= texts(sub)
    return found
