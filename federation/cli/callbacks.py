"""``tongban callback resend``: tell a source system once more how its application ended.

A JSON callback (docs/delivery.md) that was abandoned while the source's system was down, or that
the source says it never got, is re-armed in the journal: a ``callback_replayed`` event says who
(the OS account) and why, and keeps the message it resends (the end's state, receipt, errors and
time); the running broker sends it on its next poll, signed as usual, under the same
``Idempotency-Key`` as before and with the same fields, even if the exchange is replayed to a new
end meanwhile (:mod:`federation.runtime.callbacks`).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from adapters.registry import protocols
from federation.cli.access import with_journal
from federation.cli.audit import os_user
from federation.cli.failures import Failure, Negative
from federation.cli.help import Group
from federation.cli.lang import _
from federation.cli.options import config_option, journal_option, storable
from federation.cli.problems import said_all, say
from federation.config import Config, load_config
from federation.domain.errors import ConfigError
from federation.runtime.callbacks import NotResent, resend_callback
from replay.journal import Backend


@click.group(cls=Group)
def callback() -> None:
    """JSON callbacks to the systems that filed applications (sources, partners)."""


@callback.command()
@click.argument("exchange_id", callback=storable)
@click.option(
    "--reason", required=True, callback=storable, help="Why (kept in the journal with your name)."
)
@config_option
@journal_option
def resend(exchange_id: str, reason: str, root: Path, journal_path: str) -> None:
    """Send the latest callback of ended exchange EXCHANGE_ID once more (the same key)."""
    if not reason.strip():
        raise click.UsageError(_("--reason must say why (it is kept with the resend)"))
    config = _config(root)
    who = os_user()  # the OS account, never a name typed

    async def work(journal: Backend) -> str:
        try:
            return await resend_callback(
                journal, config, exchange_id, reason=reason, by=who, clock=time.time
            )
        except NotResent as exc:  # no such exchange, not ended, no callback, still pending
            raise Negative(say(exc.text)) from exc

    mark = with_journal(journal_path, work)
    done = _("callback %(key)s queued again; the running broker sends it next")
    click.echo(done % {"key": f"{exchange_id}:{mark}"})


def _config(root: Path) -> Config:
    """partners.yaml at ``root`` (whose callbacks are declared there); its problems exit 2."""
    try:
        return load_config(root, protocols())
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc
