"""Messages people read, kept as an English template and its values, so that the language is
chosen when a message is shown rather than when it is made.

A configuration problem is found at load time, before anyone knows who will read it: the journal,
the logs and JSON keep its English message, and the CLI says it again in the reader's language
from the same template (a msgid of the ``cli`` catalogues) and values. Values are kept as they
are: names, keys and values quoted from a file are never translated, only the words around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Gettext = Callable[[str], str]


@dataclass(frozen=True)
class Text:
    """An English ``template`` (``%(name)s`` placeholders) and the ``values`` it is filled with;
    a value may itself be a Text, said in the same language."""

    template: str
    values: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.render(None)

    def render(self, gettext: Gettext | None) -> str:
        """The message through ``gettext`` (English with None, or when a translation's
        placeholders do not fit the values)."""
        english = self.template % {k: _in(v, None) for k, v in self.values}
        if gettext is None:
            return english
        try:
            return gettext(self.template) % {k: _in(v, gettext) for k, v in self.values}
        except (KeyError, TypeError, ValueError):
            return english


def said(template: str, /, **values: Any) -> Text:
    """A message to say in the reader's language: ``said("duplicate key %(key)r", key=key)``."""
    return Text(template, tuple(values.items()))


QUOTE = 40  # characters of a value from a file that a message quotes, at most


class Quoted(str):
    """A value as a message quotes it: its repr, on one line, cut to :data:`QUOTE` characters
    with ``…``; the same through ``%r`` and ``%s``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def quoted(value: Any) -> Quoted:
    """``value`` for a message that quotes it: a file given by mistake (a password file, an env
    file) must not come out whole on a terminal or in a CI log, so only its first characters do."""
    shown = repr(value)
    return Quoted(shown if len(shown) <= QUOTE else shown[: QUOTE - 1] + "…")


def N_(template: str) -> str:
    """Mark a template for the catalogues where it is written (a table of templates)."""
    return template


def _in(value: Any, gettext: Gettext | None) -> Any:
    return value.render(gettext) if isinstance(value, Text) else value
