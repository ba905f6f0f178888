"""Files an operator deploys beside the broker, shipped in the wheel as package data.

``prometheus-rules.yml`` holds the alert rules and ``grafana-dashboard.json`` the dashboard; both
are written against the metric names of ``federation/runtime/metrics.py`` and tested against them
(docs/observability.md). :func:`path` finds them in an installed package.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

RULES = "prometheus-rules.yml"
DASHBOARD = "grafana-dashboard.json"


def path(name: str) -> Traversable:
    """One of the shipped files (``RULES`` or ``DASHBOARD``)."""
    return files(__name__).joinpath(name)
