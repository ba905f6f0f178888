"""Configuration problems as people read them, in the reader's language.

A Problem keeps its English message for logs, the journal and JSON; here it is said again from its
template (``Problem.text``) with the ``cli`` catalogue of the chosen language. ``file:line``, key
paths and the values quoted from the file stay as they are; a message without a template, or one
whose template has no translation, is printed in English.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from federation.api.i18n import translations
from federation.cli import lang
from federation.cli.lang import _
from federation.domain.errors import ConfigError, Problem
from federation.domain.texts import Text


def shown(problem: Problem) -> str:
    """One problem in the reader's language (exactly ``str(problem)`` in English)."""
    language = lang.current()
    if language == lang.DEFAULT:
        return str(problem)
    gettext = translations(language, "cli").gettext
    return problem.shown(gettext, warning=_("warning: "))


def say(text: Text) -> str:
    """A message made with ``said(…)`` in the reader's language (English where untranslated)."""
    language = lang.current()
    return text.render(None if language == lang.DEFAULT else translations(language, "cli").gettext)


def said_all(exc: ConfigError) -> str:
    """Every problem of ``exc`` in the reader's language, one a line (``str(exc)`` in English)."""
    return "\n".join(shown(problem) for problem in exc.problems)


def echo_problems(problems: Iterable[Problem], *, err: bool = True) -> None:
    """Print each problem on its own line, then how many of them are errors."""
    listed = tuple(problems)
    for problem in listed:
        click.echo(shown(problem), err=err)
    errors = sum(1 for p in listed if p.severity == "error")
    click.echo(_("%(n)d error(s)") % {"n": errors}, err=err)
