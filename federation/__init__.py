"""tongban: a journal-first broker for cross-region government service applications.

The package is built in layers; a lower layer never imports a higher one (import-linter checks it
in ``make lint``; the contracts are in pyproject.toml)::

    cli ─▶ sim ─▶ api ─▶ runtime ─▶ mapping │ adapters │ replay ─▶ config ─▶ domain ─▶ logging

``domain`` (models, states, lifecycle rules, retry decisions, errors, ids) imports nothing of ours;
``mapping``, ``adapters`` (a sibling package) and ``replay`` (the journal, a sibling package) are
independent of one another; ``runtime`` wires them; ``api``, ``sim`` and ``cli`` are the edges.
"""

from __future__ import annotations

__version__ = "0.1.0"
