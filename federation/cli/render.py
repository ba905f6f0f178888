"""How the journal commands print: the search table, one exchange as text, a replay plan.

JSON and CSV come out as they are; everything a person reads at a terminal is made here.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from federation.cli.lang import _
from federation.cli.today import Today
from federation.domain.models import Event, Exchange, iso, json_default
from federation.domain.words import shown_error, shown_in
from federation.logging import MASK
from federation.runtime.delivery import standing_errors
from replay.rules import reason_in
from replay.service import Mode, Plan, Result

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
    "supplement_of",  # the exchange this one is a correction round (补正) of
)


def table(rows: list[dict[str, Any]], cursor: str | None) -> None:
    # Wide enough for ids and service codes when the output is a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    table = Table(box=None, pad_edge=False)
    headings = (_("id"), _("state"), _("partner"), _("service"), _("source"))
    for heading in headings:
        table.add_column(heading, no_wrap=True)
    table.add_column(_("attempts"), no_wrap=True, justify="right")
    table.add_column(_("created (UTC)"), no_wrap=True)
    # a column for the exchange a correction round (补正) is of, when a row is one
    rounds = any(row.get("supplement_of") for row in rows)
    if rounds:
        table.add_column(_("supplement of"), no_wrap=True)
    table.add_column(_("receipt / last error"), overflow="fold")
    for row in rows:
        cells = [
            row["id"],
            row["state"],
            row["partner"],
            row["service"],
            row["source"],
            str(row["attempts"]),
            (row["created_at"] or "").replace("T", " ").rstrip("Z"),
        ]
        if rounds:
            cells.append(row.get("supplement_of") or "")
        table.add_row(*cells, str(row["receipt_number"] or row["last_error"] or ""))
    console.print(table)
    line = _("%(n)d exchange(s), newest first") % {"n": len(rows)}
    if cursor:
        line += _("; more: add --before %(cursor)s") % {"cursor": cursor}
    console.print(line)


def print_plan(plan: Plan, preview: Mapping[str, str]) -> None:
    counts = {"n": len(plan.take), "mode": plan.mode.value, "skip": len(plan.skip)}
    click.echo(_("would replay %(n)d exchange(s) (%(mode)s):") % counts)
    for ex in plan.take:
        note = f"  {preview[ex.id]}" if ex.id in preview else ""
        click.echo(f"  {ex.id}  {ex.state.value:<9}  {ex.target}  {ex.service}{note}")
    print_skipped([(ex.id, why) for ex, why in plan.skip], would=True)
    click.echo(_("dry run: nothing replayed (%(n)d to replay, %(skip)d to skip)") % counts)


def print_result(result: Result, mode: Mode) -> None:
    """What a replay did: the batch, each exchange replayed, each skipped and why."""
    counts = {
        "batch": result.batch,
        "n": len(result.replayed),
        "mode": mode.value,
        "skip": len(result.skipped),
    }
    click.echo(_("batch %(batch)s: replayed %(n)d (%(mode)s), skipped %(skip)d") % counts)
    for xid in result.replayed:
        click.echo(_("  replayed %(id)s") % {"id": xid})
    print_skipped(result.skipped)
    if result.replayed:
        click.echo(_("the running broker delivers them on its next poll"))


def print_skipped(skipped: list[tuple[str, str]], *, would: bool = False) -> None:
    if skipped:
        head = _("would skip %(n)d:") if would else _("skipped %(n)d:")
        click.echo(head % {"n": len(skipped)})
    for xid, why in skipped:
        click.echo(f"  {xid}  {reason_in(why, _)}")


def exchange_lines(ex: Exchange, today: Today, *, clear: bool = False) -> list[str]:
    """One exchange for a person: summary, timeline, application, request sent, today's mapping
    (the partner's words in its errors masked unless ``clear``)."""
    key, updated = _("idempotency key"), _("updated")
    out = [
        _("exchange %(id)s  %(state)s") % {"id": ex.id, "state": ex.state.value},
        _field(_("partner"), f"{ex.target} / {ex.service}"),
        _field(_("source"), f"{ex.source}   {key} {ex.idempotency_key}"),
        _field(_("created"), f"{iso(ex.created_at)}   {updated} {iso(ex.updated_at)}"),
    ]
    if ex.receipt:
        out.append(_field(_("receipt"), _json(ex.receipt)))
    last_error, previous_error = (
        shown_error(error, clear=clear, mask=MASK) for error in standing_errors(ex)
    )
    if last_error:
        out.append(_field(_("last error"), _error_line(last_error)))
    if previous_error:
        superseded = _("(superseded by the delivery)")
        out.append(_field(_("previous"), f"{_error_line(previous_error)} {superseded}"))
    if ex.next_attempt_at is not None:
        out.append(_field(_("next try"), str(iso(ex.next_attempt_at))))
    out += ["", _("timeline")]
    for event in ex.events:
        head, *more = _describe(replace(event, data=shown_in(event.data, clear=clear, mask=MASK)))
        out.append(f"  {iso(event.at)}  {event.kind:<17} {head}".rstrip())
        out += [f"{'':30}{line}" for line in more]
    out += ["", _("application (as received)"), _indent(_json(ex.application, indent=True))]
    out += ["", _("mapped request (as last sent)")]
    never = "  " + _("none (never mapped)")
    out.append(_indent(_json(ex.mapped, indent=True)) if ex.mapped is not None else never)
    out += ["", _("today's mapping"), f"  {today.said()}"]
    if today.diff:
        out.append(_indent(today.diff))
    elif today.status == "not_sent" and today.mapped is not None:
        out.append(_indent(_json(today.mapped, indent=True)))
    for problem in today.problems_said or today.problems or ():
        out.append(f"  - {problem}")
    return out


def _field(label: str, value: str, width: int = 12) -> str:
    """``  label    value``: the value at ``width`` columns, as a terminal shows wide CJK labels."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label)
    return f"  {label}{' ' * max(width - shown, 1)}{value}"


def _error_line(error: Mapping[str, Any]) -> str:
    """An error's message, with the partner's own code and message when its reply rules read them."""
    line = str(error.get("message", _json(error)))
    if error.get("partner_code") is not None and str(error["partner_code"]) not in line:
        line += f" [partner code {error['partner_code']}]"
    return line


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
