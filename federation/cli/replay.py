"""``tongban replay``: send one exchange, or every exchange the filters match, again.

History is only appended to: each replay is a ``replayed`` event and a move back to work, guarded by
the state the plan saw (``replay.service``). A bulk replay needs --reason and --yes, or typing the
count at a terminal.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from federation.api.support import audited_target
from federation.cli.access import applicant_ref, with_journal
from federation.cli.actions import logged
from federation.cli.audit import cli_entry, os_user
from federation.cli.failures import Failure, Negative
from federation.cli.help import Command
from federation.cli.lang import _
from federation.cli.options import (
    config_option,
    filter_options,
    journal_option,
    params,
    query_of,
    storable,
)
from federation.cli.render import print_plan, print_result, print_skipped
from federation.cli.today import preview
from replay.service import Mode, Plan, ReplayService

PLAN_LIMIT = 100_000  # exchanges one replay command looks at


@click.command(cls=Command)
@click.argument("exchange_id", metavar="[ID]", required=False, callback=storable)
@filter_options(with_id=False)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    required=True,
    help="resend: the same mapped request again; remap: today's mapping of the original application.",
)
@click.option(
    "--reason",
    callback=storable,
    help="Why (kept in the journal with your name). Required unless --dry-run.",
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be replayed and skipped; change nothing."
)
@click.option("--yes", "-y", is_flag=True, help="Confirm a bulk replay without asking.")
@config_option
@journal_option
def replay(
    exchange_id: str | None,
    mode: str,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    root: Path,
    journal_path: str,
    **filters: Any,
) -> None:
    """Replay one exchange (ID) or every exchange the filters match; history is only appended to.

    The idempotency key never changes. The running broker delivers replayed exchanges on its next
    poll. A bulk replay needs --reason and --yes, or typing the count at a terminal.
    """
    asked = _asked(exchange_id, params(**filters), dry_run, reason)
    bulk = exchange_id is None
    # a plan needs no supplement_of (one read more per exchange)
    query = replace(query_of(asked, journal_path), with_supplement_of=False)
    chosen = Mode(mode)
    who = os_user()  # the OS account, never a name typed (the journal keeps it as `by`)

    plan = with_journal(
        journal_path, lambda j: ReplayService(j).plan(query, chosen, limit=PLAN_LIMIT)
    )
    refused = Refused(journal_path, asked)
    if not bulk and not plan.take and not plan.skip:
        refused.note("not-found")
        raise Negative(
            _("no exchange %(id)s in %(journal)s") % {"id": exchange_id, "journal": journal_path}
        )
    if len(plan.take) + len(plan.skip) >= PLAN_LIMIT:
        click.echo(
            _("(the first %(n)s matching exchanges only: run it again for the rest)")
            % {"n": f"{PLAN_LIMIT:,}"}
        )
    if _nothing_to_run(plan, chosen, dry_run, root, journal_path, refused):
        return
    if bulk and not yes:
        _confirm(plan, refused)
    # Each exchange is replayed only from the state the plan saw; one that moved since is skipped.
    result = with_journal(
        journal_path, lambda j: ReplayService(j).run(plan, reason=reason or "", by=who)
    )
    logged(
        "journal_replayed",
        mode=chosen.value,
        by=who,
        exchanges=len(result.replayed),
        skipped=len(result.skipped),
        batch=result.batch,
    )
    print_result(result, chosen)


def _asked(
    exchange_id: str | None, given: dict[str, str], dry_run: bool, reason: str | None
) -> dict[str, str]:
    """What the command asks to replay (the exchange as the ``id`` filter), or a usage error."""
    if exchange_id is not None and given:
        raise click.UsageError(_("give an exchange ID or filters, not both"))
    if exchange_id is None and not given:
        raise click.UsageError(
            _("give an exchange ID, or filters such as --state failed --partner mo")
        )
    if not dry_run and not (reason or "").strip():
        raise click.UsageError(_("--reason is required: say why (it is kept with the replay)"))
    return {"id": exchange_id} if exchange_id is not None else given


class Refused:
    """Keeps a refused replay in the audit trail as ``refused:replay``, by the OS user: what was
    asked (an exchange id, or the filters as ``support.audited_target`` keeps them: never an
    applicant's ID) and why, as the API's problem type or ``skipped``."""

    def __init__(self, journal_path: str, asked: dict[str, str]) -> None:
        self.journal_path, self.asked = journal_path, asked

    def note(self, outcome: str) -> None:
        """Append the entry (a journal that cannot take it is the command's Failure)."""
        target = audited_target(self.asked, lambda v: applicant_ref(self.journal_path, v))
        entry = replace(cli_entry("refused:replay", target), outcome=outcome)
        with_journal(self.journal_path, lambda j: j.note(entry))


def _nothing_to_run(
    plan: Plan, chosen: Mode, dry_run: bool, root: Path, journal_path: str, refused: Refused
) -> bool:
    """Print the plan of a dry run, or say there is nothing to replay; True if done then."""
    if dry_run:
        previewed, notes = preview(plan, root, journal_path) if chosen is Mode.REMAP else ({}, [])
        print_plan(plan, previewed)
        for note in notes:
            click.echo(note)
        return True
    if not plan.take:
        print_skipped([(ex.id, why) for ex, why in plan.skip])
        if plan.skip:
            refused.note("skipped")
            raise Negative(_("nothing to replay"))
        click.echo(_("no exchange matches: nothing to replay"))
        return True
    return False


def _confirm(plan: Plan, refused: Refused) -> None:
    """Ask at a terminal (type the count or 'yes'); refuse when nobody can answer."""
    n = len(plan.take)
    what = _("%(n)d exchange(s) (%(mode)s)") % {"n": n, "mode": plan.mode.value}
    if not sys.stdin.isatty():
        refused.note("confirmation-required")
        raise Failure(
            _(
                "refusing a bulk replay of %(what)s without confirmation: add --yes (or run it "
                "at a terminal); nothing was replayed"
            )
            % {"what": what}
        )
    for ex in plan.take[:10]:
        click.echo(f"  {ex.id}  {ex.state.value:<9}  {ex.target}  {ex.service}", err=True)
    if n > 10:
        click.echo(_("  … and %(n)d more (--dry-run lists them all)") % {"n": n - 10}, err=True)
    if plan.skip:
        skipped = {"n": len(plan.skip)}
        click.echo(_("  (%(n)d matching exchange(s) will be skipped)") % skipped, err=True)
    answer = click.prompt(
        _("Replay %(what)s? Type %(n)d or 'yes'") % {"what": what, "n": n},
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip().lower() not in {str(n), "yes"}:
        refused.note("confirmation-required")
        raise Negative(_("not confirmed: nothing was replayed"))
