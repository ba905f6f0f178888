"""The transform registry: how a step is declared, checked at load time and run at mapping time.

A factory takes the step's arguments as written (``None`` when only the name is given), the load
``Context`` and the key path; it records problems on the Reader and returns ``None``, or returns the
``Step`` that runs for every value. Families of steps live beside this module and register themselves
with ``@step(name)`` when the package is imported.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.texts import N_, Text, said
from federation.mapping.tables import CodeTable

# (value, warnings) → value; a warning is English text or a Text said in the reader's language
Step = Callable[[Any, list[Any]], Any]


class TransformError(ValueError):
    """A value could not pass a step; the message says why (never the whole personal value).

    Made with a Text (``said(…)``) it keeps the template as ``text``, for the CLI and the console
    to say in the reader's language; ``str(error)`` is the English message. Only a failing value
    pays for the template: the step builds it where it raises.
    """

    def __init__(self, message: Text | str) -> None:
        super().__init__(str(message))
        self.text = message if isinstance(message, Text) else None

    @property
    def reason(self) -> Text | str:
        """The template when there is one, else the English message."""
        return self.text if self.text is not None else str(self)


@dataclass(frozen=True, kw_only=True)
class Context:
    """What step factories may consult while a mapping loads."""

    reader: Reader
    tables: Mapping[str, CodeTable]
    allow: Mapping[str, frozenset[str]]
    is_name: bool  # the field carries a person's name: no script conversion
    unloaded: frozenset[str] = frozenset()  # declared tables whose file failed (already reported)


Factory = Callable[[Any, Context, PathKey], Step | None]
REGISTRY: dict[str, Factory] = {}


def step(name: str) -> Callable[[Factory], Factory]:
    """Register the decorated factory under ``name`` (the word a mapping writes)."""

    def register(factory: Factory) -> Factory:
        REGISTRY[name] = factory
        return factory

    return register


def arguments(
    ctx: Context,
    path: PathKey,
    raw: Any,
    *,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """A step's arguments as a mapping (none given reads as empty), or None if they are wrong."""
    if raw is None:
        raw = {}
    return ctx.reader.mapping(path, raw, required=required, optional=optional)


def no_arguments(ctx: Context, path: PathKey, raw: Any, name: str) -> bool:
    """Whether a step that takes no arguments was given none (else the problem is recorded)."""
    if raw is not None:
        ctx.reader.error(path, said("%(name)r takes no arguments", name=name))
        return False
    return True


def as_text(value: Any, what: str) -> str:
    """The value as text (numbers are written out); anything else fails the step ``what``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TransformError(
            said("%(what)s needs text, got %(kind)s", what=what, kind=a_kind(value))
        )
    return str(value)


def needs_a_list(step: str, value: Any) -> TransformError:
    """The error of a step that takes a list and was given something else."""
    return TransformError(
        said("%(step)s needs a list, got %(kind)s", step=step, kind=a_kind(value))
    )


def kind(value: Any) -> str:
    """What a value is, in words for an error message (never the value itself)."""
    if isinstance(value, str):
        return N_("text")
    if isinstance(value, bool):
        return N_("a boolean")
    if isinstance(value, dict):
        return N_("an object")
    if isinstance(value, list):
        return N_("a list")
    if isinstance(value, (int, float, Decimal)):
        return N_("a number")
    return type(value).__name__


def a_kind(value: Any) -> Text:
    """:func:`kind` as a Text, for a message said in the reader's language (a type's own name,
    which no catalogue holds, stays as it is)."""
    return Text(kind(value))


def build_steps(raw: Any, ctx: Context, path: PathKey) -> list[tuple[str, Step]] | None:
    """Parse a ``transform:`` value (one step or a list) into named step functions."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, Step]] = []
    ok = True
    for i, item in enumerate(items):
        spath = (*path, i) if isinstance(raw, list) else path
        if isinstance(item, str):
            name, args = item, None
        elif isinstance(item, dict) and len(item) == 1:
            name, args = next(iter(item.items()))
        else:
            ctx.reader.error(
                spath,
                said("a step is a name (upper) or one name with its arguments ({table: gender})"),
            )
            ok = False
            continue
        factory = REGISTRY.get(name)
        if factory is None:
            hint = difflib.get_close_matches(name, REGISTRY, n=1)
            known = ", ".join(sorted(REGISTRY))
            ctx.reader.error(
                spath,
                said(
                    "unknown transform %(name)r (did you mean %(hint)r?); known: %(known)s",
                    name=name,
                    hint=hint[0],
                    known=known,
                )
                if hint
                else said("unknown transform %(name)r; known: %(known)s", name=name, known=known),
            )
            ok = False
            continue
        fn = factory(args, ctx, (*spath, name) if isinstance(item, dict) else spath)
        if fn is None:
            ok = False
            continue
        out.append((name, fn))
    return out if ok else None
