"""Limits on what a YAML document may grow into while it is composed ("billion laughs").

Every alias is expanded into a copy when the data is built (:mod:`federation.config.yamlsrc` gives
each copy its own path and line), so a few lines of aliases of aliases, nine of the one before
on each line, would grow into billions of values and take the memory of whoever reads the file:
the console's mapping playground (open to viewers), a reload, ``tongban check``. :class:`Guarded`
counts what each alias adds as the composer meets it and refuses the document at that alias's line
once aliases add more than :data:`ALIAS_VALUES`, far above the few dozen a real partners.yaml or
mapping adds (a file written out in full costs what its length costs, so only aliases are counted).
An alias inside its own anchor and nesting deeper than :data:`DEPTH` are refused the same way: both
would exhaust the stack instead of saying where the file went wrong.
"""

from __future__ import annotations

from typing import Any

import yaml

from federation.domain.texts import Text, said

ALIAS_VALUES = 100_000  # values aliases may add to one document
DEPTH = 100  # levels of nesting, aliases expanded: real files nest under ten


class Refused(yaml.YAMLError):
    """A document refused while composing it, at the line of the event that crossed a limit."""

    def __init__(self, text: Text, event: yaml.Event) -> None:
        super().__init__(str(text))
        self.text = text
        self.line = event.start_mark.line + 1 if event.start_mark is not None else None


class Guarded(yaml.composer.Composer):
    """PyYAML's composer, counting what aliases add and how deep the document goes (a mixin
    placed before ``Composer`` in a loader's bases; call ``Guarded.__init__`` from the loader's)."""

    def __init__(self) -> None:
        self.added = 0  # values the aliases met so far add to the document
        self.depth = 0  # of the node being composed
        self.shapes: dict[int, tuple[int, int]] = {}  # id(node) → (values, levels) once composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # a sibling base: the Parser
        if isinstance(event, yaml.AliasEvent):
            anchored = self.anchors.get(event.anchor)
            if anchored is not None:  # else PyYAML says "found undefined alias"
                self._count_alias(event, anchored)
            return super().compose_node(parent, index)
        if self.depth >= DEPTH:
            raise Refused(said("nested more than %(limit)s levels deep", limit=DEPTH), event)
        self.depth += 1
        node = super().compose_node(parent, index)
        self.depth -= 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [c for pair in node.value for c in pair]
        shapes = [self.shapes[id(c)] for c in children]
        self.shapes[id(node)] = (
            1 + sum(size for size, _ in shapes),
            1 + max((levels for _, levels in shapes), default=0),
        )
        return node

    def _count_alias(self, event: yaml.AliasEvent, anchored: yaml.Node) -> None:
        shape = self.shapes.get(id(anchored))
        if shape is None:  # not composed yet: the alias is inside its own anchor
            name = event.anchor
            raise Refused(said("alias *%(name)s is inside its own anchor", name=name), event)
        size, levels = shape
        self.added += size
        if self.added > ALIAS_VALUES:
            message = said(
                "aliases expand this file past %(limit)s values; write the repeated part out once",
                limit=ALIAS_VALUES,
            )
            raise Refused(message, event)
        if self.depth + levels > DEPTH:
            raise Refused(said("nested more than %(limit)s levels deep", limit=DEPTH), event)


class _FragmentLoader(Guarded, yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        Guarded.__init__(self)


def safe_fragment(text: str) -> Any:
    """``yaml.safe_load`` of a short piece of YAML inside a file (an argument in a mapping's
    format text), under the same limits; :class:`Refused` (a ``yaml.YAMLError``) past them."""
    loader = _FragmentLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
