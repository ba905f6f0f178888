"""``tongban journal …`` and ``tongban replay``: support staff find, read, prove and replay exchanges.

Every command works on the journal file itself, so it needs no running broker; one may be running
all the same (SQLite takes a second writer, the hash chain is read afresh in every transaction, and
the broker picks replayed exchanges up on its next poll). Filters mean what they mean in
``GET /v1/exchanges``: both build their :class:`replay.journal.Query` with
:func:`federation.api.support.query_from`.

Exit codes: 0 done; 1 the thing asked about is not so (no such exchange, a broken chain, a replay
not confirmed); 2 the command cannot run as given (bad option, missing file, no confirmation possible).
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from federation.domain.errors import ConfigError, FederationError, JournalError, MappingError
from federation.domain.models import Event, Exchange, iso, json_default
from replay.service import Mode, Plan, ReplayService

if TYPE_CHECKING:
    from replay.journal import Query
    from replay.sqlite import SQLiteJournal

T = TypeVar("T")

# The same option as federation.cli.main.config_option; not imported from there, since cli.py imports
# this module to register its commands.
config_option = click.option(
    "--config",
    "root",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory holding partners.yaml and mappings/ (or the partners.yaml file itself).",
)
journal_option = click.option(
    "--journal",
    "journal_path",
    default="tongban.sqlite",
    show_default=True,
    envvar="TONGBAN_JOURNAL",
    help="The journal `tongban serve --journal` writes: a SQLite file or a postgresql:// URL "
    "(?schema=NAME for a schema of its own).",
)

CSV_COLUMNS = (
    "id",
    "state",
    "partner",
    "service",
    "source",
    "idempotency_key",
    "attempts",
    "created_at",
    "updated_at",
    "receipt_number",
    "last_error",
)


class Failure(click.ClickException):
    """The command cannot run as given: a clear message on stderr, exit 2; never a traceback."""

    exit_code = 2


class Negative(Failure):
    """The answer is no: no such exchange, a broken chain, a replay not confirmed (exit 1)."""

    exit_code = 1


def _with_journal(spec: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work`` on the journal ``spec`` names; a SQLite file must exist (a typo must not make
    a new, empty journal)."""
    from replay.factory import journal_file, open_journal

    if (file := journal_file(spec)) is not None and not file.is_file():
        raise Failure(
            f"no journal at {spec}: give the file `tongban serve` writes with --journal FILE"
        )

    async def go() -> T:
        journal = open_journal(spec)
        await journal.open()
        try:
            return await work(journal)
        finally:
            await journal.close()

    try:
        return asyncio.run(go())
    except (JournalError, ConfigError) as exc:
        raise Failure(str(exc)) from exc  # names the journal already


# -- filters ----------------------------------------------------------------------------------


def _filter_options(*, with_id: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The search filters, shared by `journal search` and `replay`."""
    options = [
        click.option(
            "--state",
            "states",
            multiple=True,
            help="received, queued, delivering, delivered, retry_wait, failed or rejected. "
            "Repeatable, or comma-separated.",
        ),
        click.option(
            "--lifecycle",
            "lifecycle",
            multiple=True,
            help="Where it stands at the partner: submitted, accepted, not_accepted, "
            "correction_required, approved, refused or completed. Repeatable.",
        ),
        click.option("--partner", help="Partner id (hk, mo, gd …)."),
        click.option("--service", help="Service item code."),
        click.option("--source", help="Local system that submitted it."),
        click.option(
            "--since",
            metavar="TIME",
            help="Received at or after (ISO 8601; without a zone, Beijing time).",
        ),
        click.option("--until", metavar="TIME", help="Received before."),
        click.option("--error", metavar="TEXT", help="Text in the last error."),
        click.option("--key", help="Idempotency key."),
        click.option(
            "--applicant",
            metavar="VALUE",
            help="Applicant ID (e.g. an HKID, written any way), matched by its keyed hash; never "
            "printed. '-' reads it from stdin, keeping it out of shell history.",
        ),
    ]
    if with_id:
        options.append(click.option("--id", "exchange_id", help="Exchange id."))

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _params(
    *,
    states: tuple[str, ...],
    partner: str | None,
    lifecycle: tuple[str, ...] = (),
    service: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    error: str | None,
    key: str | None,
    applicant: str | None,
    exchange_id: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> dict[str, str]:
    """CLI options → the filter names of federation.api.support.FILTERS (unset ones left out)."""
    if applicant == "-":
        applicant = _read_applicant()
    given: dict[str, Any] = {
        "state": ",".join(states) if states else None,
        "lifecycle": ",".join(lifecycle) if lifecycle else None,
        "partner": partner,
        "service": service,
        "source": source,
        "since": since,
        "until": until,
        "error": error,
        "id": exchange_id,
        "key": key,
        "applicant": applicant,
        "before": before,
        "limit": limit,
    }
    return {name: str(value) for name, value in given.items() if value is not None}


def _read_applicant() -> str:
    if sys.stdin.isatty():
        value = str(click.prompt("Applicant ID", hide_input=True, err=True))
    else:
        value = sys.stdin.readline()
    if not value.strip():
        raise Failure("--applicant -: no value on stdin")
    return value.strip()


def _query(params: Mapping[str, str], journal_path: str) -> Query:
    # federation.api.support brings aiohttp.web: imported when used, so `tongban --help` stays quick.
    from federation.api.support import BadQuery, query_from

    try:
        return query_from(params, applicant_ref=lambda value: _applicant_ref(journal_path, value))
    except BadQuery as exc:
        raise Failure(str(exc)) from exc


def _applicant_ref(journal_path: str, value: str) -> bytes:
    """The keyed hash of ``value`` with the journal's search key (never the value itself)."""
    from replay.factory import key_path
    from replay.refs import ENV, load_key, reference

    beside = key_path(journal_path)
    key_file = beside.with_name(beside.name + ".key") if beside else Path(ENV)
    if not os.environ.get(ENV) and (beside is None or not key_file.is_file()):
        # load_key would make a new key, with which nothing already journalled could be found.
        raise Failure(
            f"cannot search by applicant: no search key ({key_file} or {ENV}); the broker makes "
            "the key file when partners.yaml sets search.applicant_fields"
        )
    try:
        return reference(load_key(beside), value)
    except (ConfigError, OSError, ValueError) as exc:
        raise Failure(f"cannot read the search key: {exc}") from None


# -- the commands -----------------------------------------------------------------------------


@click.group()
def journal() -> None:
    """Find, read, verify and archive what the journal holds."""


@journal.command()
@journal_option
def migrate(journal_path: str) -> None:
    """Create or upgrade the journal's schema (numbered SQL files) and list what was applied."""
    from replay.factory import journal_file, open_journal

    if (file := journal_file(journal_path)) is not None and not file.parent.is_dir():
        raise Failure(f"directory {file.parent} does not exist")

    async def go() -> list[str]:
        return await open_journal(journal_path).migrate()

    try:
        applied = asyncio.run(go())
    except (JournalError, ConfigError) as exc:
        raise Failure(str(exc)) from exc
    for name in applied:
        click.echo(f"applied {name}")
    click.echo("the journal schema is up to date" + ("" if applied else " (nothing to apply)"))


@journal.command()
@_filter_options(with_id=True)
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
    query = _query(_params(**filters, before=before, limit=limit), journal_path)

    from federation.api.support import summary

    found = _with_journal(journal_path, lambda j: j.search(query))
    rows = [summary(ex) for ex in found]
    cursor = found[-1].id if len(found) == query.limit else None
    if fmt == "json":
        body = {"exchanges": rows, "next": cursor}
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        out.writerows([row[c] for c in CSV_COLUMNS] for row in rows)
        if cursor:
            click.echo(f"more: add --before {cursor}", err=True)
    else:
        _table(rows, cursor)


def _table(rows: list[dict[str, Any]], cursor: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    # Wide enough for ids and service codes when the output is a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    table = Table(box=None, pad_edge=False)
    for name in ("id", "state", "partner", "service", "source", "attempts", "created (UTC)"):
        table.add_column(name, no_wrap=True, justify="right" if name == "attempts" else "left")
    table.add_column("receipt / last error", overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            row["state"],
            row["partner"],
            row["service"],
            row["source"],
            str(row["attempts"]),
            (row["created_at"] or "").replace("T", " ").rstrip("Z"),
            row["receipt_number"] or row["last_error"] or "",
        )
    console.print(table)
    more = f"; more: add --before {cursor}" if cursor else ""
    console.print(f"{len(rows)} exchange(s), newest first{more}")


@journal.command()
@click.argument("exchange_id", metavar="ID")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@config_option
@journal_option
def show(exchange_id: str, fmt: str, root: Path, journal_path: str) -> None:
    """Everything about one exchange: timeline, application, request sent, and today's mapping of it."""
    ex = _with_journal(journal_path, lambda j: j.get(exchange_id))
    if ex is None:
        raise Negative(
            f"no exchange {exchange_id} in {journal_path} (an archived exchange is in its "
            "archive file)"
        )
    today = compare_with_today(ex, root)
    if fmt == "json":
        from federation.api.intake import exchange_view

        view = exchange_view(ex, payloads=True)
        view["timeline"] = [
            {"seq": e.seq, "at": iso(e.at), "kind": e.kind, "data": e.data} for e in ex.events
        ]
        view["today"] = today.to_dict()
        click.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2, default=json_default).decode())
        return
    for line in _text(ex, today):
        click.echo(line)


@journal.command()
@click.option(
    "--archive",
    "archive_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Verify this archive file on its own instead of the journal.",
)
@journal_option
def verify(archive_file: Path | None, journal_path: str) -> None:
    """Walk the hash chain; name the first broken link (exit 1) or say how many events hold."""
    if archive_file is not None:
        from replay.archive import verify_archive

        if not archive_file.is_file():
            raise Failure(f"no archive file {archive_file}")
        exchanges, events, problem = verify_archive(archive_file)
        if problem is not None:
            raise Negative(f"broken: {archive_file}: {problem}")
        click.echo(f"ok: {archive_file}: {exchanges} exchanges, {events} events")
        return
    count, broken = _with_journal(journal_path, lambda j: j.verify())
    if broken is not None:
        raise Negative(f"broken: {broken} (checked {count} events)")
    click.echo(f"ok: {count} events")


DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` → seconds."""
    m = DURATION_RE.fullmatch(value.strip())
    if m is None:
        raise click.BadParameter(f"{value!r} is not a duration: write e.g. 90d, 12h or 30m")
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
        raise Failure(f"{out} exists: an archive is never overwritten; name a new file")
    if not out.parent.is_dir():
        raise Failure(f"directory {out.parent} does not exist")
    cutoff = time.time() - age
    try:
        exchanges, events = _with_journal(
            journal_path, lambda j: j.archive(older_than=cutoff, out=out)
        )
    except FileExistsError:
        raise Failure(f"{out} exists: an archive is never overwritten; name a new file") from None
    except OSError as exc:
        raise Failure(f"cannot write {out}: {exc}") from exc
    if exchanges == 0:
        out.unlink()
        click.echo(f"nothing to archive: no closed exchange last changed before {iso(cutoff)}")
        return
    click.echo(
        f"archived {exchanges} exchanges ({events} events) last changed before {iso(cutoff)} "
        f"to {out}; check it with: tongban journal verify --archive {out}"
    )


@click.command()
@click.argument("exchange_id", metavar="[ID]", required=False)
@_filter_options(with_id=False)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    required=True,
    help="resend: the same mapped request again; remap: today's mapping of the original application.",
)
@click.option(
    "--reason", help="Why (kept in the journal with your name). Required unless --dry-run."
)
@click.option("--by", help="Who replays  [default: $USER]")
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
    by: str | None,
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
    params = _params(**filters)
    if exchange_id is not None and params:
        raise click.UsageError("give an exchange ID or filters, not both")
    if exchange_id is None and not params:
        raise click.UsageError(
            "give an exchange ID, or filters such as --state failed --partner mo"
        )
    if not dry_run and not (reason or "").strip():
        raise click.UsageError("--reason is required: say why (it is kept with the replay)")
    bulk = exchange_id is None
    query = _query({"id": exchange_id} if exchange_id else params, journal_path)
    chosen = Mode(mode)
    who = by or os.environ.get("USER") or os.environ.get("LOGNAME") or "cli"

    plan = _with_journal(
        journal_path, lambda j: ReplayService(j).plan(query, chosen, limit=PLAN_LIMIT)
    )
    if not bulk and not plan.take and not plan.skip:
        raise Negative(f"no exchange {exchange_id} in {journal_path}")
    if len(plan.take) + len(plan.skip) >= PLAN_LIMIT:
        click.echo(f"(the first {PLAN_LIMIT:,} matching exchanges only: run it again for the rest)")
    if dry_run:
        preview, notes = _preview(plan, root, journal_path) if chosen is Mode.REMAP else ({}, [])
        _print_plan(plan, preview)
        for note in notes:
            click.echo(note)
        return
    if not plan.take:
        _print_skipped([(ex.id, why) for ex, why in plan.skip])
        if plan.skip:
            raise Negative("nothing to replay")
        click.echo("no exchange matches: nothing to replay")
        return
    if bulk and not yes:
        _confirm(plan)
    # Each exchange is replayed only from the state the plan saw; one that moved since is skipped.
    result = _with_journal(
        journal_path, lambda j: ReplayService(j).run(plan, reason=reason or "", by=who)
    )
    click.echo(
        f"batch {result.batch}: replayed {len(result.replayed)} ({chosen.value}), "
        f"skipped {len(result.skipped)}"
    )
    for xid in result.replayed:
        click.echo(f"  replayed {xid}")
    _print_skipped(result.skipped)
    if result.replayed:
        click.echo("the running broker delivers them on its next poll")


def _confirm(plan: Plan) -> None:
    """Ask at a terminal (type the count or 'yes'); refuse when nobody can answer."""
    n = len(plan.take)
    what = f"{n} exchange(s) ({plan.mode.value})"
    if not sys.stdin.isatty():
        raise Failure(
            f"refusing a bulk replay of {what} without confirmation: add --yes (or run it at a "
            "terminal); nothing was replayed"
        )
    for ex in plan.take[:10]:
        click.echo(f"  {ex.id}  {ex.state.value:<9}  {ex.target}  {ex.service}", err=True)
    if n > 10:
        click.echo(f"  … and {n - 10} more (--dry-run lists them all)", err=True)
    if plan.skip:
        click.echo(f"  ({len(plan.skip)} matching exchange(s) will be skipped)", err=True)
    answer = click.prompt(
        f"Replay {what}? Type {n} or 'yes'", default="", show_default=False, err=True
    )
    if answer.strip().lower() not in {str(n), "yes"}:
        raise Negative("not confirmed: nothing was replayed")


def _print_plan(plan: Plan, preview: Mapping[str, str]) -> None:
    click.echo(f"would replay {len(plan.take)} exchange(s) ({plan.mode.value}):")
    for ex in plan.take:
        note = f"  {preview[ex.id]}" if ex.id in preview else ""
        click.echo(f"  {ex.id}  {ex.state.value:<9}  {ex.target}  {ex.service}{note}")
    _print_skipped([(ex.id, why) for ex, why in plan.skip], would=True)
    click.echo(f"dry run: nothing replayed ({len(plan.take)} to replay, {len(plan.skip)} to skip)")


def _print_skipped(skipped: list[tuple[str, str]], *, would: bool = False) -> None:
    if skipped:
        click.echo(f"{'would skip' if would else 'skipped'} {len(skipped)}:")
    for xid, why in skipped:
        click.echo(f"  {xid}  {why}")


PLAN_LIMIT = 100_000  # exchanges one replay command looks at
PREVIEW_LIMIT = 1000


def _preview(plan: Plan, root: Path, journal_path: str) -> tuple[dict[str, str], list[str]]:
    """For a remap dry run: what today's mapping (--config) makes of each application, and notes."""
    from federation.runtime.catalogue import load_catalogue

    try:
        catalogue = load_catalogue(root)
    except (FederationError, OSError):
        return {}, [f"(today's mapping not previewed: no valid catalogue at --config {root})"]
    ids = [ex.id for ex in plan.take[:PREVIEW_LIMIT]]

    async def full(journal: SQLiteJournal) -> list[Exchange]:
        # The plan's exchanges come from a search, without history: the application is in it.
        found = [await journal.get(xid) for xid in ids]
        return [ex for ex in found if ex is not None]

    out = {}
    for ex in _with_journal(journal_path, full):
        today = _map_today(ex, catalogue)
        out[ex.id] = (
            "today's mapping: ok"
            if today.problems is None
            else f"today's mapping still rejects it: {today.problems[0]}"
        )
    notes = [
        f"(previewed with the mapping files in {root}; the broker remaps with the ones it has "
        "loaded: after a fix, reload it first with SIGHUP or POST /v1/admin/reload)"
    ]
    if len(plan.take) > PREVIEW_LIMIT:
        notes.append(f"(today's mapping previewed for the first {PREVIEW_LIMIT} only)")
    return out, notes


# -- show: today's mapping and the text form ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Today:
    """What the mapping in force today makes of the exchange's application, against what was sent."""

    status: str  # same | different | rejected | not_sent | unavailable
    note: str
    diff: str = ""
    mapped: Mapping[str, Any] | None = None
    problems: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "diff": self.diff,
            "mapped": self.mapped,
            "problems": list(self.problems) if self.problems is not None else None,
        }


def compare_with_today(ex: Exchange, root: Path) -> Today:
    """Map the original application with today's catalogue and diff it with the request sent."""
    from federation.runtime.catalogue import load_catalogue

    try:
        catalogue = load_catalogue(root)
    except ConfigError as exc:
        first = "; ".join(str(p) for p in exc.problems[:3])
        return Today(
            status="unavailable",
            note=f"cannot load the catalogue at --config {root}: {first}",
            problems=tuple(str(p) for p in exc.problems),
        )
    except (FederationError, OSError) as exc:
        return Today(status="unavailable", note=f"cannot load the catalogue at {root}: {exc}")
    today = _map_today(ex, catalogue)
    if today.problems is not None:
        return replace(
            today,
            status="rejected",
            note=f"today's mapping rejects this application ({len(today.problems)} problem(s))",
        )
    if ex.mapped is None:
        return replace(
            today,
            status="not_sent",
            note="nothing was sent (never mapped); today's mapping accepts it: remap would send",
        )
    from federation.mapping.examples import diff_text

    diff = diff_text(ex.mapped, today.mapped)
    if not diff:
        return replace(today, status="same", note="no difference from today's mapping")
    # diff_text labels its sides for golden examples; here they are the sent and today's request.
    lines = diff.splitlines()
    lines[:2] = ["--- sent", "+++ today's mapping"]
    return replace(
        today,
        status="different",
        note="today's mapping would send something else",
        diff="\n".join(lines),
    )


def _map_today(ex: Exchange, catalogue: Any) -> Today:
    mapping = catalogue.mapping(ex.target, ex.service)
    if mapping is None:
        return Today(
            status="rejected",
            note="",
            problems=(f"today's catalogue has no mapping for {ex.target} / {ex.service}",),
        )
    try:
        mapped, _ = mapping.map_request_checked(ex.application)
    except MappingError as exc:
        return Today(status="rejected", note="", problems=tuple(str(p) for p in exc.problems))
    schema = catalogue.schema(ex.target, ex.service)
    if schema is not None and (broken := schema.problems(mapped, file=schema.file)):
        return Today(status="rejected", note="", mapped=mapped, problems=tuple(map(str, broken)))
    return Today(status="", note="", mapped=mapped)


def _text(ex: Exchange, today: Today) -> list[str]:
    out = [
        f"exchange {ex.id}  {ex.state.value}",
        f"  partner     {ex.target} / {ex.service}",
        f"  source      {ex.source}   idempotency key {ex.idempotency_key}",
        f"  created     {iso(ex.created_at)}   updated {iso(ex.updated_at)}",
    ]
    if ex.receipt:
        out.append(f"  receipt     {_json(ex.receipt)}")
    if ex.last_error:
        out.append(f"  last error  {ex.last_error.get('message', _json(ex.last_error))}")
    if ex.next_attempt_at is not None:
        out.append(f"  next try    {iso(ex.next_attempt_at)}")
    out += ["", "timeline"]
    for event in ex.events:
        head, *more = _describe(event)
        out.append(f"  {iso(event.at)}  {event.kind:<17} {head}".rstrip())
        out += [f"{'':30}{line}" for line in more]
    out += ["", "application (as received)", _indent(_json(ex.application, indent=True))]
    out += ["", "mapped request (as last sent)"]
    out.append(
        _indent(_json(ex.mapped, indent=True)) if ex.mapped is not None else "  none (never mapped)"
    )
    out += ["", "today's mapping", f"  {today.note}"]
    if today.diff:
        out.append(_indent(today.diff))
    elif today.status == "not_sent" and today.mapped is not None:
        out.append(_indent(_json(today.mapped, indent=True)))
    for problem in today.problems or ():
        out.append(f"  - {problem}")
    return out


def _describe(event: Event) -> list[str]:
    """One event as a headline and optional detail lines."""
    d = event.data
    kind = event.kind
    if kind == "received":
        return [f"request {d.get('request_hash', '')}"]
    if kind == "mapped":
        warnings = len(d.get("warnings", []))
        return ["mapped" + (f" with {warnings} warning(s)" if warnings else "")]
    if kind == "attempt_started":
        return [f"attempt {d.get('attempt')}"]
    if kind == "attempt_finished":
        response = d.get("response") or {}
        error = d.get("error") or {}
        status = response.get("status") or error.get("status")
        parts = [f"attempt {d.get('attempt')}: {d.get('outcome')}"]
        if status:
            parts.append(f"HTTP {status}")
        if d.get("duration_ms") is not None:
            parts.append(f"{d['duration_ms']} ms")
        lines = [", ".join(parts)]
        request = d.get("request") or {}
        if request.get("url"):
            lines.append(f"→ {request.get('method', '')} {request['url']}".replace("  ", " "))
        if response.get("body"):
            lines.append(f"← {_clip(str(response['body']))}")
        if error:
            lines.append(f"error: {error.get('message', _json(error))}")
        return lines
    if kind == "replayed":
        return [
            f"{d.get('mode')} by {d.get('by')}: {d.get('reason')!r} "
            f"(was {d.get('from_state')}, batch {d.get('batch')})"
        ]
    if kind in ("mapping_failed", "rejected", "receipt_invalid"):
        error = d.get("error") or {}
        problems = error.get("problems") or []
        return [str(error.get("message", "")), *(_problem(p) for p in problems)]
    if kind == "retries_exhausted":
        return [f"after {d.get('attempts')} attempt(s)"]
    scalars = {k: v for k, v in d.items() if isinstance(v, (str, int, float, bool))}
    return [" ".join(f"{k}={v}" for k, v in scalars.items())]


def _problem(p: Mapping[str, Any]) -> str:
    where = f"{p['file']}:{p['line']}: " if p.get("file") and p.get("line") else ""
    path = f"{p['path']}: " if p.get("path") else ""
    return f"- {where}{path}{p.get('message', '')}"


def _json(value: Any, *, indent: bool = False) -> str:
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS if indent else orjson.OPT_SORT_KEYS
    return orjson.dumps(value, option=option, default=json_default).decode()


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _clip(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
