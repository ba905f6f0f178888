"""How a ``tongban journal`` or ``tongban replay`` command says it cannot, or that the answer is no.

Exit codes: 0 done; 1 the thing asked about is not so (no such exchange, a broken chain, a replay
not confirmed); 2 the command cannot run as given (bad option, missing file, no confirmation possible);
3 only ``journal verify --archive``: the archive holds together, but with no key file and no journal
nothing proves who wrote it (``federation/cli/archives.py``).
"""

from __future__ import annotations

from typing import IO, Any

import click

from federation.cli.lang import _


class Failure(click.ClickException):
    """The command cannot run as given: a clear message on stderr, exit 2; never a traceback."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        """``Error: …`` in the reader's language (click's own prefix is English only)."""
        line = _("Error: %(message)s") % {"message": self.format_message()}
        click.echo(line, file=file, err=file is None)


class Negative(Failure):
    """The answer is no: no such exchange, a broken chain, a replay not confirmed (exit 1)."""

    exit_code = 1
