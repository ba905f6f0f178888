"""``tongban journal …``: support staff find, read, prove, archive and migrate the journal.

Filters mean what they mean in ``GET /v1/exchanges`` (see ``federation.cli.options``); the journal
is reached through ``federation.cli.access``; what a person reads is made in ``federation.cli.render``
and today's mapping of an exchange in ``federation.cli.today``. ``tongban replay`` is in
``federation.cli.replay``. Exit codes: see ``federation.cli.failures``.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson
from click.core import ParameterSource

from federation.api.intake import exchange_view, masked
from federation.api.support import BadQuery, parse_time, summary
from federation.cli import archives
from federation.cli.access import run, with_journal
from federation.cli.actions import logged
from federation.cli.audit import cli_entry
from federation.cli.failures import Failure, Negative
from federation.cli.help import Group
from federation.cli.lang import N_, _
from federation.cli.options import (
    config_option,
    filter_options,
    journal_option,
    params,
    query_of,
    storable,
)
from federation.cli.problems import said_all
from federation.cli.render import CSV_COLUMNS, exchange_lines, table
from federation.cli.today import compare_with_today
from federation.domain.errors import ConfigError
from federation.domain.models import Exchange, iso, json_default
from federation.domain.words import shown_in
from federation.logging import MASK
from replay import instances, rekeyed, rekeyedadmin
from replay.chain import Break
from replay.factory import journal_file, open_journal
from replay.journal import Backend
from replay.rekeyed import Unsound
from replay.rekeyedadmin import Opened, Pruned


@click.group(cls=Group)
def journal() -> None:
    """Find, read, verify and archive what the journal holds."""


@journal.command()
@journal_option
def migrate(journal_path: str) -> None:
    """Create or upgrade the journal's schema (numbered SQL files) and list what was applied."""
    try:
        file = journal_file(journal_path)
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc
    if file is not None and not file.parent.is_dir():
        raise Failure(_("directory %(dir)s does not exist") % {"dir": file.parent})
    applied = run(open_journal(journal_path).migrate())
    logged("journal_migrated", applied=list(applied))
    for name in applied:
        click.echo(_("applied %(name)s") % {"name": name})
    if applied:
        click.echo(_("the journal schema is up to date"))
    else:
        click.echo(_("the journal schema is up to date (nothing to apply)"))


@journal.command()
@filter_options(with_id=True)
@click.option("--limit", type=int, default=50, show_default=True, help="Exchanges per page.")
@click.option("--before", metavar="ID", help="Page cursor: exchanges older than this id.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@journal_option
def search(journal_path: str, fmt: str, limit: int, before: str | None, **filters: Any) -> None:
    """Exchanges matching every given filter, newest first, one page at a time."""
    query = query_of(params(**filters, before=before, limit=limit), journal_path)
    found = with_journal(journal_path, lambda j: j.search(query))
    rows = [summary(ex) for ex in found]  # the partner's words masked: `show --reveal` has them
    cursor = found[-1].id if len(found) == query.limit else None
    if fmt == "json":
        body = {"exchanges": rows, "next": cursor}
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        out.writerows([row[c] for c in CSV_COLUMNS] for row in rows)
        if cursor:
            click.echo(_("more: add --before %(cursor)s") % {"cursor": cursor}, err=True)
    else:
        table(rows, cursor)


@journal.command()
@click.argument("exchange_id", metavar="ID", callback=storable)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@config_option
@journal_option
@click.option(
    "--reason", default="", callback=storable, help="Why you read it (kept in the audit trail)."
)
@click.option(
    "--reveal", is_flag=True, help="Show personal data in clear (needs --reason; audited)."
)
def show(
    exchange_id: str, fmt: str, root: Path, journal_path: str, reason: str, reveal: bool
) -> None:
    """Everything about one exchange: timeline, application, request sent, and today's mapping of it.

    Payloads and transcripts are masked (their shape kept) unless ``--reveal --reason …``; every
    read is recorded in the audit trail with the OS user and the reason."""
    if reveal and not reason.strip():
        raise click.UsageError(
            _("--reveal needs --reason: say why (it is kept in the audit trail)")
        )

    async def read(j: Backend) -> Exchange | None:
        found = await j.get(exchange_id)
        if found is not None:
            action = "journal-reveal" if reveal else "journal-show"
            await j.note(cli_entry(action, exchange_id, reason))
        return found

    ex = with_journal(journal_path, read)
    if ex is None:
        raise Negative(
            _("no exchange %(id)s in %(journal)s (an archived exchange is in its archive file)")
            % {"id": exchange_id, "journal": journal_path}
        )
    today = compare_with_today(ex, root)
    if not reveal:
        ex, today = masked_exchange(ex), today.masked()
    if fmt == "json":
        view = exchange_view(ex, payloads=True, clear=reveal)
        view["timeline"] = [
            {
                "seq": e.seq,
                "at": iso(e.at),
                "kind": e.kind,
                "data": shown_in(e.data, clear=reveal, mask=MASK),
            }
            for e in ex.events
        ]
        view["today"] = today.to_dict()
        click.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2, default=json_default).decode())
        return
    for line in exchange_lines(ex, today, clear=reveal):
        click.echo(line)


@journal.command()
@click.option(
    "--archive",
    "archive_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Verify this archive file instead of the journal: alone, or against the journal given "
    "with --journal (or TONGBAN_JOURNAL).",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --archive and no journal: check the archive's signature with this journal key file.",
)
@journal_option
@click.pass_context
def verify(
    ctx: click.Context, archive_file: Path | None, key_file: Path | None, journal_path: str
) -> None:
    """Check the chain, its signed head, the checkpoints, what readers are shown and the rekey
    records (PostgreSQL); name the first problem (exit 1) or say how many events hold. With
    --archive: an archive file (exit 1 broken, 2 unreadable, 3 holds together but unproven)."""
    if archive_file is not None:
        source = ctx.get_parameter_source("journal_path")
        given = source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        archives.verify(archive_file, key_file, journal_path if given else None)
        return
    count, broken = with_journal(journal_path, verified)
    if broken is not None:
        raise Negative(
            _("broken: %(break)s (checked %(n)d events)") % {"break": said(broken), "n": count}
        )
    click.echo(_("ok: %(n)d events") % {"n": count})


# Why a rekey record does not hold (``replay.rekeyed.Unsound``), as verify says it.
UNSOUND = {
    rekeyed.UNSIGNED: N_(
        "the rekey record of event %(seq)d (the rekey of %(at)s) is not signed with the journal's"
        " MAC key: forged or altered"
    ),
    rekeyed.NO_EVENT: N_(
        "the rekey record of event %(seq)d (the rekey of %(at)s) names an event the journal does"
        " not hold"
    ),
    rekeyed.NOWHERE: N_(
        "the rekey record of event %(seq)d (the rekey of %(at)s) leads neither to the event the"
        " journal holds nor to a later rekey's record: the event was rewritten by no rekey, or"
        " a later record was deleted"
    ),
}


async def verified(j: Backend) -> tuple[int, Break | Unsound | None]:
    """``j.verify()``, then the rekey records it keeps (``replay/rekeyedadmin.py``): the number of
    events checked and the first problem."""
    count, broken = await j.verify()
    if broken is not None:
        return count, broken
    return count, await rekeyedadmin.check(j)


def said(broken: Break | Unsound) -> str:
    """A problem verify found, in the reader's language where it is a rekey record's."""
    if isinstance(broken, Break):
        return str(broken)
    return _(UNSOUND[broken.why]) % {"seq": broken.seq, "at": iso(broken.at)}


BROKERS_RUNNING = N_(
    "brokers announced themselves on this journal in the last %(seconds)d s: %(ids)s. Stop them"
    " first: a running broker goes on sealing with the old key, which rekey retires, and what it"
    " writes afterwards could not be read again. If they were stopped without withdrawing"
    " (killed), wait %(seconds)d s or use --force"
)


UNVERIFIED = N_(
    "the journal does not verify (%(break)s): rekey would sign what is wrong; look first"
)


@journal.command()
@journal_option
@click.option(
    "--force",
    is_flag=True,
    help="Rekey even though brokers announced themselves lately (killed without withdrawing).",
)
def rekey(journal_path: str, force: bool) -> None:
    """Seal every payload again under a new data key (what is still in clear too); the chain stays
    whole. Stop the brokers on this journal first: they hold the old key until restarted."""

    async def work(j: Backend) -> tuple[int, int, Break | Unsound | None]:
        if not force:
            await refuse_while_brokers_run(j)
        flaw = await rekeyedadmin.check(j)  # the rekey verifies the rest itself
        if flaw is not None:
            raise Failure(_(UNVERIFIED) % {"break": said(flaw)})
        resealed = await j.rekey()
        count, broken = await verified(j)
        return resealed, count, broken

    resealed, count, broken = with_journal(journal_path, work)
    logged("journal_rekeyed", values=resealed, verified=broken is None)
    if broken is not None:
        raise Negative(
            _("rekeyed %(n)d values, but verify now says: broken: %(break)s")
            % {"n": resealed, "break": said(broken)}
        )
    click.echo(
        _(
            "rekeyed: %(n)d values sealed under a new data key, the old key retired; "
            "verify: ok: %(events)d events"
        )
        % {"n": resealed, "events": count}
    )


async def refuse_while_brokers_run(j: Backend) -> None:
    """A Failure naming the brokers that announced themselves on ``j`` lately (``Instance.running``):
    a rekey under them would leave what they write next sealed with a retired key."""
    now = time.time()
    window = instances.EVERY * instances.STALE
    running = [i for i in await j.instances(seen_since=now - window) if i.running(now)]
    if running:
        ids = ", ".join(sorted(i.id for i in running))
        raise Failure(_(BROKERS_RUNNING) % {"seconds": window, "ids": ids})


WAITING = N_(
    "instances this journal knows of started before the rekey of %(at)s and have not opened it"
    " since: %(ids)s. Their checkpoints may still name the chain before that rekey: without its"
    " records they would refuse the journal at their next start. Start each of them once first;"
    " for one gone for good, use --force"
)
UNOPENED = N_(
    "instances last opened this journal before the rekey of %(at)s (id, host, checkpoints file,"
    " last open): %(ids)s. Their checkpoints name the chain before that rekey: without its records"
    " they would refuse the journal at their next start. Start each of them once first; forget"
    " one gone for good with `tongban journal forget-instance ID`, or prune all the same with"
    " --force"
)


def _opened(o: Opened) -> str:
    """An instance known by its checkpoints, as prune-rekeyed and forget-instance name it."""
    return f"{o.id} ({o.host}, {o.checkpoints}, {iso(o.opened_at)})"


def _time(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """An ISO 8601 time (without a zone, Beijing time) or epoch seconds → epoch seconds."""
    try:
        return parse_time(value.strip())
    except BadQuery:
        raise click.BadParameter(
            _("%(value)r is not a time: write e.g. 2026-12-01 or 2026-12-01T09:00+08:00")
            % {"value": value}
        ) from None


@journal.command("prune-rekeyed")
@click.option(
    "--before",
    callback=_time,
    required=True,
    metavar="TIME",
    help="Prune the records of the rekeys made before this time (ISO 8601; without a zone, "
    "Beijing time).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Prune even though an instance this journal knows of has not started since (one gone "
    "for good).",
)
@journal_option
def prune_rekeyed(before: float, force: bool, journal_path: str) -> None:
    """Delete the records rekeys left for the other instances' checkpoints (PostgreSQL). Start
    every instance once after a rekey first: one that had not can no longer follow it."""

    async def work(j: Backend) -> Pruned | None:
        pg = rekeyedadmin.keeps(j)
        return None if pg is None else await rekeyedadmin.prune(pg, before, force=force)

    pruned = with_journal(journal_path, work)
    cutoff = iso(before)
    if pruned is None:
        raise Failure(
            _("only a PostgreSQL journal keeps rekey records: %(journal)s has none to prune")
            % {"journal": journal_path}
        )
    if pruned.held and not pruned.done:
        at = iso(pruned.rekeys[-1][0])
        said = []
        if pruned.unopened:
            said.append(_(UNOPENED) % {"at": at, "ids": ", ".join(map(_opened, pruned.unopened))})
        if pruned.waiting:
            ids = ", ".join(f"{i.id} ({iso(i.started_at)})" for i in pruned.waiting)
            said.append(_(WAITING) % {"at": at, "ids": ids})
        raise Failure("\n".join(said))
    if not pruned.rekeys:
        click.echo(
            _("no rekey made before %(cutoff)s left records: nothing pruned") % {"cutoff": cutoff}
        )
        return
    logged(
        "journal_rekeyed_pruned",
        rekeys=len(pruned.rekeys),
        records=pruned.statements,
        forced_past=[i.id for i in pruned.waiting] + [o.id for o in pruned.unopened],
    )
    counts = {"records": pruned.statements, "rekeys": len(pruned.rekeys), "cutoff": cutoff}
    click.echo(_("pruned %(records)d records of %(rekeys)d rekeys made before %(cutoff)s") % counts)


@journal.command("forget-instance")
@click.argument("ident", metavar="ID")
@journal_option
def forget_instance(ident: str, journal_path: str) -> None:
    """Forget an instance gone for good (ID as prune-rekeyed names it), so that it no longer holds
    back a prune of rekey records (PostgreSQL). One that opens again is known again."""

    async def work(j: Backend) -> tuple[Opened | None, list[Opened]] | None:
        pg = rekeyedadmin.keeps(j)
        return None if pg is None else await rekeyedadmin.forget(pg, ident)

    found = with_journal(journal_path, work)
    if found is None:
        raise Failure(
            _("only a PostgreSQL journal keeps the instances that opened it: %(journal)s has none")
            % {"journal": journal_path}
        )
    gone, known = found
    if gone is None:
        ids = ", ".join(map(_opened, known)) or "-"
        raise Failure(
            _("this journal knows no instance %(id)s; those it knows: %(ids)s")
            % {"id": ident, "ids": ids}
        )
    logged("journal_instance_forgotten", instance=gone.id, host=gone.host)
    click.echo(_("forgot instance %(instance)s") % {"instance": _opened(gone)})


EXISTS = N_("%(file)s exists: an archive is never overwritten; name a new file")
DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` → seconds."""
    m = DURATION_RE.fullmatch(value.strip())
    if m is None:
        raise click.BadParameter(
            _("%(value)r is not a duration: write e.g. 90d, 12h or 30m") % {"value": value}
        )
    return float(m.group(1)) * UNITS[m.group(2)]


@journal.command()
@click.option(
    "--older-than",
    "age",
    callback=_duration,
    required=True,
    metavar="DURATION",
    help="Archive closed exchanges last changed longer ago than this (90d, 12h, 30m).",
)
@click.argument("out", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@journal_option
def archive(age: float, out: Path, journal_path: str) -> None:
    """Move closed exchanges to a compressed archive FILE (never overwritten) that verifies alone."""
    if out.exists():
        raise Failure(_(EXISTS) % {"file": out})
    if not out.parent.is_dir():
        raise Failure(_("directory %(dir)s does not exist") % {"dir": out.parent})
    cutoff = time.time() - age
    try:
        exchanges, events, unsigned = with_journal(
            journal_path, lambda j: archives.archived(j, cutoff, out)
        )
    except FileExistsError:
        raise Failure(_(EXISTS) % {"file": out}) from None
    except OSError as exc:
        raise Failure(_("cannot write %(file)s: %(error)s") % {"file": out, "error": exc}) from exc
    logged(
        "journal_archived",
        exchanges=exchanges,
        events=events,
        older_than_s=age,
        unsigned=unsigned is not None,
    )
    if exchanges == 0:
        out.unlink()
        click.echo(
            _("nothing to archive: no closed exchange last changed before %(cutoff)s")
            % {"cutoff": iso(cutoff)}
        )
        return
    done = {"exchanges": exchanges, "events": events, "cutoff": iso(cutoff), "file": out}
    click.echo(
        _(
            "archived %(exchanges)d exchanges (%(events)d events) last changed before %(cutoff)s "
            "to %(file)s; check it with: tongban journal verify --archive %(file)s --journal "
            "%(journal)s"
        )
        % {**done, "journal": journal_path}
    )
    if unsigned is not None:
        raise Negative(
            _("the archive %(file)s does not verify, so it was not signed: %(problem)s")
            % {"file": out, "problem": unsigned}
        )


# Event keys that say what happened, not to whom: kept when an exchange is shown masked.
EVENT_KEPT = frozenset(
    {
        "number",
        "attempt",
        "outcome",
        "status",
        "duration_ms",
        "started_at",
        "finished_at",
        "error",
        "message",
        "mode",
        "by",
        "reason",
        "batch",
        "state",
        "lifecycle",
        "via",
        "kind",
        "delay_s",
        "versions",
    }
)


def masked_exchange(ex: Exchange) -> Exchange:
    """``ex`` with the application, the mapped request and every event's payload masked (their
    shape kept), as the API shows an exchange to a role that may not reveal."""
    return replace(
        ex,
        application=masked(ex.application),
        mapped=masked(ex.mapped) if ex.mapped is not None else None,
        receipt=masked(ex.receipt, keep=EVENT_KEPT) if ex.receipt else ex.receipt,
        events=[replace(e, data=masked(e.data, keep=EVENT_KEPT)) for e in ex.events],
    )
