"""``tongban audit search``: the audit trail in the journal (who read personal data, replayed,
reloaded or was refused), and what the CLI itself records there: its reads, by the OS user."""

from __future__ import annotations

import os
import pwd
import socket
import time

import click
import orjson

from federation.api.trail import entry_json, trail_query
from federation.cli.access import with_journal
from federation.cli.failures import Failure
from federation.cli.help import Group
from federation.cli.lang import _
from federation.cli.options import journal_option
from federation.domain.models import iso
from replay.journal import AuditEntry, Backend


def os_user() -> str:
    """Who runs the command: the operating system's account of this process's user id, never a
    value typed or an environment variable (USER and LOGNAME are anyone's to set)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no name for this uid (a container)
        return f"uid:{uid}"


def cli_entry(action: str, target: str, reason: str = "") -> AuditEntry:
    """An audit entry for an act of the CLI, by the OS user, from this host."""
    return AuditEntry(
        at=time.time(),
        who=os_user(),
        role="cli",
        action=action,
        target=target,
        remote=f"cli@{socket.gethostname()}",
        reason=reason,
    )


@click.group(cls=Group)
def audit() -> None:
    """The audit trail: reads of personal data, replays, reloads and refusals."""


@audit.command("search")
@click.option("--who", help="A principal id, or an OS user for the CLI's own entries.")
@click.option("--action", help="show, reveal, search, replay, reload, audit, refused:…")
@click.option("--target", help="Text in the target (an exchange id, a path).")
@click.option("--since", type=float, help="Epoch seconds.")
@click.option("--until", type=float, help="Epoch seconds.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@journal_option
def search(journal_path: str, fmt: str, **filters: object) -> None:
    """Audit entries, newest first (this search is itself recorded, by the OS user)."""
    given = {k: str(v) for k, v in filters.items() if v is not None}
    try:
        query = trail_query(given)
    except ValueError as exc:
        raise Failure(str(exc)) from exc

    async def work(j: Backend) -> list[AuditEntry]:
        found = await j.trail(query)
        await j.note(cli_entry("audit", " ".join(f"{k}={v}" for k, v in sorted(given.items()))))
        return found

    found = with_journal(journal_path, work)
    if fmt == "json":
        click.echo(orjson.dumps([entry_json(e) for e in found]).decode())
        return
    for e in found:
        line = _("%(at)s %(who)s (%(role)s) %(action)s %(target)s from %(remote)s -> %(outcome)s")
        values = {
            "at": iso(e.at),
            "who": e.who,
            "role": e.role or "-",
            "action": e.action,
            "target": e.target,
            "remote": e.remote or "-",
            "outcome": e.outcome,
        }
        why = _(" reason=%(reason)r") % {"reason": e.reason} if e.reason else ""
        click.echo(line % values + why)
    if not found:
        click.echo(_("no audit entry matches"), err=True)
