"""``python -m federation`` is the ``tongban`` command."""

from __future__ import annotations

from federation.cli import main

main(prog_name="tongban")
