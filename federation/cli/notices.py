"""``tongban notice resend``: send a partner the latest notice about what it filed, once more.

A notice in the partner's own dialect (docs/inbound.md) that was abandoned while the partner was
down, rejected before a fix on its side, or that the partner says it never got, is re-armed in the
journal: a ``notice_replayed`` event says who and why and records what the notice said that a
replay could change (the local system's receipt, the time), and the running broker sends the same
notice (mapped again from that record and the history before it, with the same idempotency key)
on its next poll, its retries timed from the resend.
"""

from __future__ import annotations

import time

import click

from federation.cli.access import with_journal
from federation.cli.audit import os_user
from federation.cli.failures import Negative
from federation.cli.help import Group
from federation.cli.lang import _
from federation.cli.options import journal_option, storable
from federation.cli.problems import say
from federation.runtime.callbacks import NotResent
from federation.runtime.notices import resend_notice
from replay.journal import Backend


@click.group(cls=Group)
def notice() -> None:
    """Notices to partners about what they filed with us, in their own dialect."""


@notice.command()
@click.argument("exchange_id", callback=storable)
@click.option(
    "--reason", required=True, callback=storable, help="Why (kept in the journal with your name)."
)
@journal_option
def resend(exchange_id: str, reason: str, journal_path: str) -> None:
    """Send the latest notice of application EXCHANGE_ID (one a partner filed) once more."""
    if not reason.strip():
        raise click.UsageError(_("--reason must say why (it is kept with the resend)"))
    who = os_user()  # the OS account, never a name typed

    async def work(journal: Backend) -> str:
        try:
            return await resend_notice(journal, exchange_id, reason=reason, by=who, clock=time.time)
        except NotResent as exc:  # no such application, nothing sent yet: the answer is no
            raise Negative(say(exc.text)) from exc

    mark = with_journal(journal_path, work)
    done = _("notice %(notice)s queued again; the running broker sends it next")
    click.echo(done % {"notice": f"{exchange_id}:{mark}"})
