"""tongban: a journal-first broker for cross-region government service applications."""

from __future__ import annotations

__version__ = "0.1.0"
