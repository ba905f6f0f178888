"""The declarative mapping engine: YAML mapping files compiled into plain Python callables."""

from __future__ import annotations

from federation.mapping.engine import CompiledMapping, Section, load_mapping

__all__ = ["CompiledMapping", "Section", "load_mapping"]
