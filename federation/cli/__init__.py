"""The ``tongban`` command line: serve, check, mapping, journal, replay."""

from __future__ import annotations

from federation.cli.main import main

__all__ = ["main"]
